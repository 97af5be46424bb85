-- Requests per API key per minute, shared by every instance, so the per-key rate limit holds across a
-- deployment. UNLOGGED: counting writes no WAL (a request commits without an extra flush), and a crash
-- that empties the table only forgives a minute of traffic.
create unlogged table api_key_usage (
  key_id       text not null,
  window_start timestamptz not null,
  requests     integer not null,
  primary key (key_id, window_start)
);
