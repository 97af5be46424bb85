-- Matching on-chain payments to payment requests: muxed destinations, amounts received, and the
-- operations that settled each payment.

-- A muxed payment is matched by its M address's id instead of a memo, so it has no memo.
alter table payments
  alter column memo_type drop not null,
  alter column memo drop not null,
  -- uint64 as a canonical decimal: it does not fit a (signed) bigint.
  add column muxed_id text check (muxed_id ~ '^(0|[1-9][0-9]{0,19})$'),
  add constraint payments_memo_or_muxed_check check (
    (memo_type is null) = (memo is null) and (memo_type is null) = (muxed_id is not null)),
  -- Sum of the operations that counted towards the payment; numeric, as a sum can exceed int64.
  add column amount_received_stroops numeric(40, 0) not null default 0,
  add column confirmed_at timestamptz(3),
  add column expired_at timestamptz(3);

-- Muxed ids are generated, so unlike memos they stay unique for good: a late payment to an
-- M address always finds the one payment it was meant for.
create unique index payments_muxed_idx on payments (destination, muxed_id) where muxed_id is not null;
-- Matching looks at closed payments too (a late payment still finds its payment).
create index payments_destination_memo_idx on payments (destination, memo_type, memo);
-- What the expiry job scans.
create index payments_open_expires_idx on payments (expires_at) where status in ('pending', 'partially_paid');

create table payment_settlements (
  -- Horizon's operation id (a TOID). Unique, so an operation settles at most one payment however
  -- often it is replayed and however many instances apply it.
  operation_id     bigint primary key,
  payment_id       text not null references payments (id),
  transaction_hash text not null,
  ledger           integer not null,
  closed_at        timestamptz not null,
  amount_stroops   bigint not null check (amount_stroops > 0),
  from_account     text not null,
  -- Arrived once the payment was no longer open (expired, canceled or already confirmed).
  late             boolean not null,
  created_at       timestamptz not null
);
create index payment_settlements_payment_idx on payment_settlements (payment_id, operation_id);
