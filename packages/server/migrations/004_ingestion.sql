-- Ingestion of each merchant account's payments from Horizon: how far it has been processed.

create table stellar_cursors (
  network_passphrase text not null,
  account            text not null,                    -- G… address
  -- Paging token (a TOID) of the last record whose effects are committed. Written in the same
  -- transaction as those effects and never lowered, so a restart resumes exactly after it.
  paging_token       bigint not null check (paging_token >= 0),
  updated_at         timestamptz not null default now(),
  primary key (network_passphrase, account)
);
