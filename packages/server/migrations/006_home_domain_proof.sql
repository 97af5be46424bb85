-- A merchant's home_domain serves its stellar.toml only once the merchant proves control of the
-- domain with a DNS TXT record `lumenpay-verification=<token>`. Several merchants may claim a domain;
-- one at most may hold it proven.

alter table merchants
  add column home_domain_token       text,         -- random, per merchant and domain: the TXT record's value
  add column home_domain_verified_at timestamptz;  -- null while the claim is pending

-- Existing home domains were never proven: each gets a token and starts pending.
update merchants set home_domain_token = left(encode(sha256(gen_random_uuid()::text::bytea), 'hex'), 32)
where home_domain is not null;

alter table merchants
  add constraint merchants_home_domain_token_check check ((home_domain is null) = (home_domain_token is null)),
  add constraint merchants_home_domain_verified_check check (home_domain is not null or home_domain_verified_at is null),
  drop constraint merchants_home_domain_key;

-- The uniqueness that matters: one merchant per proven domain. Also the index that serves stellar.toml.
create unique index merchants_verified_home_domain_idx on merchants (home_domain) where home_domain_verified_at is not null;
