-- Merchants, their API keys, payments, and idempotency records.

create table merchants (
  id              text primary key,                      -- mer_…
  name            text not null,
  email           text not null,
  accounts        text[] not null check (cardinality(accounts) > 0),
  home_domain     text unique,
  org             jsonb not null default '{}',            -- SEP-1 ORG_* fields, keyed by SEP-1 name
  accepted_assets jsonb not null default '[]',            -- [{code, issuer?}]; "XLM" has no issuer
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now()
);

create table api_keys (
  id           text primary key,                         -- key_…
  merchant_id  text not null references merchants (id),
  hash         bytea not null unique,                    -- sha256 of the secret; the secret is never stored
  prefix       text not null,                            -- first characters, to recognise a key in listings
  created_at   timestamptz not null default now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz
);
create index api_keys_merchant_idx on api_keys (merchant_id);

create table payments (
  id                text primary key,                    -- pay_…
  merchant_id       text not null references merchants (id),
  status            text not null default 'pending'
                    check (status in ('pending', 'partially_paid', 'confirmed', 'expired', 'canceled')),
  amount_stroops    bigint not null check (amount_stroops > 0),
  asset_code        text not null,                       -- 'XLM' for the native asset
  asset_issuer      text,                                -- null for the native asset
  destination       text not null,
  memo_type         text not null check (memo_type in ('text', 'id', 'hash')),
  memo              text not null,                       -- text as given, id as plain decimal, hash as lower-case hex
  description       text,
  metadata          jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
  expires_at        timestamptz not null,
  canceled_at       timestamptz,
  -- Millisecond precision, like the JavaScript Date the API writes and list cursors carry.
  created_at        timestamptz(3) not null default now(),
  updated_at        timestamptz(3) not null default now()
);
create index payments_merchant_created_idx on payments (merchant_id, created_at desc, id desc);
-- An incoming Stellar payment is matched by destination and memo: two open payments must never share them.
create unique index payments_open_memo_idx on payments (destination, memo_type, memo)
  where status in ('pending', 'partially_paid');

-- Stripe-style Idempotency-Key records, written in the same transaction as the request's own
-- writes; rows older than 24 h count as absent and are purged by a background job.
create table idempotency_keys (
  merchant_id     text not null references merchants (id),
  key             text not null check (char_length(key) between 1 and 255),
  request_hash    bytea not null,                      -- sha256 of method, path and canonical JSON body
  response_status integer not null,
  response_body   jsonb not null,
  created_at      timestamptz not null default now(),
  primary key (merchant_id, key)
);
create index idempotency_keys_created_idx on idempotency_keys (created_at);
