-- Payment states that follow the ledger: one owner per Stellar account, a monitoring window after
-- expiry, unmatched incoming operations, and proof-of-control challenges.

-- Each account belongs to at most one merchant: matching an operation by its destination must name
-- one merchant. The primary key is the guarantee; `merchants.accounts` moves here.
create table merchant_accounts (
  account     text primary key,                          -- G…
  merchant_id text not null references merchants (id),
  position    integer not null,                          -- the merchant's order; the first is the default destination
  -- When the merchant proved control with a signed challenge; null when attached without proof.
  verified_at timestamptz,
  created_at  timestamptz not null default now()
);
create index merchant_accounts_merchant_idx on merchant_accounts (merchant_id, position);

-- Existing merchants keep their accounts in order; an account several merchants listed stays with
-- the one that listed it first (the oldest merchant), as the others could not have proved control.
insert into merchant_accounts (account, merchant_id, position, created_at)
select a.account, m.id, a.position, m.created_at
from merchants m, unnest(m.accounts) with ordinality as a(account, position)
order by m.created_at, m.id, a.position
on conflict (account) do nothing;

alter table merchants drop column accounts;

-- Operations that close after expires_at + monitor_for no longer match the payment.
alter table payments add column monitor_for_s integer not null default 86400 check (monitor_for_s >= 0);
alter table payments alter column monitor_for_s drop default;

-- Incoming operations to a merchant account that settle no payment, so the merchant can refund or
-- reconcile them (a customer who forgot the memo is the usual case).
create table unmatched_payments (
  id               text primary key,                      -- unm_…
  merchant_id      text not null references merchants (id),
  -- Horizon's operation id; each operation is recorded once.
  operation_id     bigint not null unique,
  transaction_hash text not null,
  ledger           integer not null,
  closed_at        timestamptz not null,
  account          text not null,                         -- the merchant's G account that received it
  muxed_id         text,                                  -- set when it was paid to an M address
  memo_type        text not null check (memo_type in ('none', 'text', 'id', 'hash', 'return')),
  memo             text,                                  -- as the payment API writes memos; null for none
  asset_code       text not null,
  asset_issuer     text,
  amount_stroops   bigint not null check (amount_stroops > 0),
  from_account     text not null,
  reason           text not null
                   check (reason in ('no_memo', 'unknown_memo', 'wrong_asset', 'before_payment', 'after_monitoring_window')),
  -- The payment its memo or muxed id named, when there was one (wrong asset, too early, too late).
  payment_id       text references payments (id),
  created_at       timestamptz(3) not null
);
create index unmatched_payments_merchant_created_idx on unmatched_payments (merchant_id, created_at desc, id desc);

-- Challenges handed out by POST /v1/merchant/accounts/challenge, each usable once before expires_at.
create table account_challenges (
  nonce       text primary key,                          -- the challenge's manage_data value, base64
  merchant_id text not null references merchants (id),
  account     text not null,
  server_key  text not null,                             -- G… key that signed the challenge
  expires_at  timestamptz not null,
  created_at  timestamptz not null
);
create index account_challenges_expires_idx on account_challenges (expires_at);
