import { purgeInBatches } from "../db/purge.js";
import { transaction, type Db, type Pool } from "../db/pool.js";
import { lockEndpointRow } from "./endpoints-store.js";

const BATCH = 1000;

interface RunningRecovery {
  id: string;
  endpoint_id: string;
  since: Date;
  until: Date;
}

/**
 * Works through running recoveries (POST /v1/webhook_endpoints/:id/recover) a batch at a time:
 * failed and parked deliveries in the window go back to the queue with a fresh retry schedule, and
 * `wake` is called after each batch that re-queued some has committed. There is no cap; batching
 * only keeps each transaction short.
 */
export async function processRecoveries(pool: Pool, now: Date, wake: () => void): Promise<void> {
  const { rows } = await pool.query<RunningRecovery>(
    "select id, endpoint_id, since, until from webhook_recoveries where status = 'running' order by created_at limit 10",
  );
  for (const recovery of rows) {
    let more = true;
    while (more) {
      // A batch only writes rows of this database, so a conflict can run it again.
      const batch = await transaction(pool, (tx) => requeueBatch(tx, recovery, now), { retryOnConflict: true });
      if (batch.requeued > 0) wake();
      more = batch.more;
    }
  }
}

/**
 * Re-queues one batch of a recovery; `more` while more may be left. The endpoint's row is locked
 * first (the lock order in queue.ts), so it cannot be disabled or deleted meanwhile; a recovery
 * whose endpoint was disabled or deleted since it was asked for ends there, since workers would
 * send what it re-queued regardless.
 */
async function requeueBatch(tx: Db, r: RunningRecovery, now: Date): Promise<{ requeued: number; more: boolean }> {
  const endpoint = await lockEndpointRow(tx, r.endpoint_id);
  const live = endpoint !== undefined && !endpoint.disabled && endpoint.deleted_at === null;
  const requeued = live ? await requeueDeliveries(tx, r, now) : 0;
  if (requeued > 0) await tx.query("update webhook_recoveries set requeued = requeued + $2 where id = $1", [r.id, requeued]);
  if (requeued === BATCH) return { requeued, more: true };
  await tx.query("update webhook_recoveries set status = 'done', finished_at = $2 where id = $1", [r.id, now]);
  return { requeued, more: false };
}

/** Puts up to BATCH failed or parked deliveries of the window back in the queue; returns how many. */
async function requeueDeliveries(tx: Db, r: RunningRecovery, now: Date): Promise<number> {
  const { rowCount } = await tx.query(
    `with batch as (
       select id from webhook_deliveries
       where endpoint_id = $1 and status in ('failed', 'endpoint_disabled')
         and event_created_at >= $2 and event_created_at < $3
       limit ${BATCH} for no key update skip locked
     )
     update webhook_deliveries d
     set status = 'pending', attempts = 0, next_attempt_at = $4, completed_at = null
     from batch where d.id = batch.id`,
    [r.endpoint_id, r.since, r.until, now],
  );
  return rowCount ?? 0;
}

const daysBefore = (now: Date, days: number) => new Date(now.getTime() - days * 86_400_000);

/** Deletes attempt logs older than the retention period, in batches so no statement runs long. */
export function purgeOldAttempts(db: Db, now: Date, retentionDays: number, signal: AbortSignal): Promise<number> {
  return purgeInBatches(
    db,
    "delete from webhook_attempts where id in (select id from webhook_attempts where started_at < $2 limit $1 for update skip locked)",
    [daysBefore(now, retentionDays)],
    signal,
  );
}

/**
 * Deletes what is older than `retentionDays`, in foreign-key order: finished deliveries with their
 * attempt logs (pending ones are still owed), then events no delivery refers to, then finished
 * recoveries. Returns the rows deleted per table.
 */
export async function purgeOldWebhookData(db: Db, now: Date, retentionDays: number, signal: AbortSignal) {
  const cutoff = daysBefore(now, retentionDays);
  const deliveries = await purgeInBatches(
    db,
    `with doomed as (
       select id from webhook_deliveries where created_at < $2 and status <> 'pending' order by id limit $1 for update skip locked
     ), attempts as (
       delete from webhook_attempts where delivery_id in (select id from doomed)
     )
     delete from webhook_deliveries where id in (select id from doomed)`,
    [cutoff],
    signal,
  );
  const events = await purgeInBatches(
    db,
    `delete from events where id in (
       select id from events e where created_at < $2 and not exists (select 1 from webhook_deliveries d where d.event_id = e.id)
       limit $1 for update skip locked)`,
    [cutoff],
    signal,
  );
  const recoveries = await purgeInBatches(
    db,
    "delete from webhook_recoveries where id in (select id from webhook_recoveries where status = 'done' and created_at < $2 limit $1 for update skip locked)",
    [cutoff],
    signal,
  );
  return { deliveries, events, recoveries };
}

/**
 * Fails the deliveries still queued for a deleted endpoint: the ones an event committed while the
 * endpoint was being deleted (deleting fails those it sees). Claiming never picks them either.
 */
export async function dropDeletedEndpointDeliveries(db: Db, now: Date): Promise<number> {
  return purgeInBatches(
    db,
    `update webhook_deliveries d set status = 'failed', last_error = 'The endpoint was deleted.', completed_at = $2, locked_by = null, locked_until = null
     where d.id in (
       select d.id from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id
       where d.status = 'pending' and e.deleted_at is not null and d.locked_by is null
       order by d.id limit $1 for no key update of d skip locked)`,
    [now],
  );
}
