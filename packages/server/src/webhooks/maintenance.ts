import type { Db } from "../db/pool.js";
import { DELIVERIES_CHANNEL } from "../events/outbox.js";

const BATCH = 1000;

/**
 * Works through running recoveries (POST /v1/webhook_endpoints/:id/recover) a batch at a time:
 * failed and parked deliveries in the window go back to the queue with a fresh retry schedule.
 * There is no cap; batching only keeps each transaction short.
 */
export async function processRecoveries(db: Db, now: Date): Promise<void> {
  const { rows } = await db.query<{ id: string; endpoint_id: string; since: Date; until: Date }>(
    "select id, endpoint_id, since, until from webhook_recoveries where status = 'running' order by created_at limit 10",
  );
  for (const r of rows) {
    for (;;) {
      const { rowCount } = await db.query(
        `with batch as (
           select id from webhook_deliveries
           where endpoint_id = $1 and status in ('failed', 'endpoint_disabled')
             and event_created_at >= $2 and event_created_at < $3
           limit ${BATCH} for update skip locked
         )
         update webhook_deliveries d
         set status = 'pending', attempts = 0, next_attempt_at = $4, completed_at = null
         from batch where d.id = batch.id`,
        [r.endpoint_id, r.since, r.until, now],
      );
      const n = rowCount ?? 0;
      await db.query("update webhook_recoveries set requeued = requeued + $2 where id = $1", [r.id, n]);
      if (n > 0) await db.query(`select pg_notify('${DELIVERIES_CHANNEL}', '')`);
      if (n < BATCH) break;
    }
    await db.query("update webhook_recoveries set status = 'done', finished_at = $2 where id = $1", [r.id, now]);
  }
}

/** Deletes attempt logs older than the retention period, in batches so no statement runs long. */
export async function purgeOldAttempts(db: Db, now: Date, retentionDays: number, signal: AbortSignal): Promise<number> {
  const cutoff = new Date(now.getTime() - retentionDays * 86_400_000);
  let total = 0;
  while (!signal.aborted) {
    const { rowCount } = await db.query(
      `delete from webhook_attempts where id in (select id from webhook_attempts where started_at < $1 limit 5000)`,
      [cutoff],
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < 5000) break;
  }
  return total;
}
