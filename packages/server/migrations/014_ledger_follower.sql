-- Ingestion by one follower per network (stellar/follower.ts, reading Stellar RPC or Horizon): it scans
-- each range of ledgers once for every account it covers; an account added while the follower is ahead first
-- catches up on its own, then joins it. Positions are ledgers, written in the same transaction as the
-- effects of the operations up to them.
create table ledger_followers (
  network_passphrase text primary key,
  ledger             integer not null check (ledger >= 0),  -- every ledger up to it is applied
  updated_at         timestamptz not null
);

create table followed_accounts (
  network_passphrase text not null,
  account            text not null,                        -- G… address
  -- Operations closed before `since` are none of the merchant's (payments/matching.ts), and those at or
  -- before the TOID `after_operation` were applied by Horizon ingestion before the switch to RPC.
  since              timestamptz not null,
  after_operation    bigint not null default 0 check (after_operation >= 0),
  -- While the account catches up on its own: the last ledger applied for it. Null once the follower covers it.
  catch_up_ledger    integer check (catch_up_ledger >= 0),
  primary key (network_passphrase, account)
);
