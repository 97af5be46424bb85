-- Claiming walks the endpoints that have pending deliveries, then each one's due rows: its cost
-- follows the number of active endpoints, not the size of any one endpoint's backlog. It replaces
-- the index on due time alone, which let a claim read a skipped endpoint's whole backlog first.
create index webhook_deliveries_endpoint_due_idx on webhook_deliveries (endpoint_id, next_attempt_at) where status = 'pending';
drop index webhook_deliveries_due_idx;
-- Every instance polls for running recoveries every second.
create index webhook_recoveries_running_idx on webhook_recoveries (created_at) where status = 'running';
