-- Which instance ingests which account, when the database is reached through a transaction pooler
-- (session advisory locks need a direct connection): a lease renewed on every poll, taken over once
-- it has expired by the database's clock.
create table ingest_leases (
  network_passphrase text not null,
  account            text not null,
  holder             text not null,                     -- host:pid:random of the instance
  expires_at         timestamptz not null,
  primary key (network_passphrase, account)
);
create index ingest_leases_holder_idx on ingest_leases (holder);
