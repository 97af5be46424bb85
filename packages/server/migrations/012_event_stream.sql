-- The event stream (GET /v1/events/stream) resumes after an event in the order events commit. Ids are
-- random and created_at is the writer's clock, so neither tells which event committed first. The id
-- of the inserting transaction does, read below the oldest transaction still running: no event can
-- appear there any more (events/store.ts).
-- A constant first, so existing rows are not rewritten: they read as 0, before every later event.
alter table events add column tx_id xid8 not null default '0';
alter table events alter column tx_id set default pg_current_xact_id();
create index events_merchant_stream_idx on events (merchant_id, tx_id, created_at, id);
