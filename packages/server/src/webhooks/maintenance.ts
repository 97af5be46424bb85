import { transaction, type Db, type Pool } from "../db/pool.js";
import { notifyDeliveryWorkers } from "../events/outbox.js";
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
 * failed and parked deliveries in the window go back to the queue with a fresh retry schedule.
 * There is no cap; batching only keeps each transaction short.
 */
export async function processRecoveries(pool: Pool, now: Date): Promise<void> {
  const { rows } = await pool.query<RunningRecovery>(
    "select id, endpoint_id, since, until from webhook_recoveries where status = 'running' order by created_at limit 10",
  );
  for (const recovery of rows) {
    let more = true;
    // A batch only writes rows of this database, so a conflict can run it again.
    while (more) more = await transaction(pool, (tx) => requeueBatch(tx, recovery, now), { retryOnConflict: true });
  }
}

/**
 * Re-queues one batch of a recovery; true while more may be left. The endpoint's row is locked
 * first (the lock order in queue.ts), so it cannot be disabled or deleted meanwhile; a recovery
 * whose endpoint was disabled or deleted since it was asked for ends there, since workers would
 * send what it re-queued regardless.
 */
async function requeueBatch(tx: Db, r: RunningRecovery, now: Date): Promise<boolean> {
  const endpoint = await lockEndpointRow(tx, r.endpoint_id);
  const live = endpoint !== undefined && !endpoint.disabled && endpoint.deleted_at === null;
  const requeued = live ? await requeueDeliveries(tx, r, now) : 0;
  if (requeued > 0) {
    await tx.query("update webhook_recoveries set requeued = requeued + $2 where id = $1", [r.id, requeued]);
    await notifyDeliveryWorkers(tx);
  }
  if (requeued === BATCH) return true;
  await tx.query("update webhook_recoveries set status = 'done', finished_at = $2 where id = $1", [r.id, now]);
  return false;
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

/** Deletes attempt logs older than the retention period, in batches so no statement runs long. */
export async function purgeOldAttempts(db: Db, now: Date, retentionDays: number, signal: AbortSignal): Promise<number> {
  const cutoff = new Date(now.getTime() - retentionDays * 86_400_000);
  let total = 0;
  while (!signal.aborted) {
    const { rowCount } = await db.query(
      // Skipping rows another process is purging: two purges never wait for each other.
      `delete from webhook_attempts where id in (select id from webhook_attempts where started_at < $1 limit 5000 for update skip locked)`,
      [cutoff],
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < 5000) break;
  }
  return total;
}
