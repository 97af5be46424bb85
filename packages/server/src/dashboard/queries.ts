import type { Db } from "../db/pool.js";
import type { PaymentStatus } from "../payments/store.js";
import type { Asset } from "../stellar/assets.js";

/**
 * Read-only views the dashboard adds to the API's: counts for the overview, a payment's timeline and the
 * deliveries of its events, the health of webhook endpoints. Everything a page changes goes through the
 * domains' services; these only read.
 */

/** Payments created per UTC day and status, since `since`. */
export async function paymentsPerDay(db: Db, merchantId: string, since: Date): Promise<Array<{ day: string; status: PaymentStatus; count: number }>> {
  const { rows } = await db.query<{ day: string; status: PaymentStatus; count: number }>(
    `select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day, status, count(*)::int as count
     from payments where merchant_id = $1 and created_at >= $2 group by 1, 2`,
    [merchantId, since],
  );
  return rows;
}

/** What on-time settlements brought in per asset, since `today` and since `since` (stroops; sums can exceed int64). */
export async function receivedPerAsset(db: Db, merchantId: string, { today, since }: { today: Date; since: Date }) {
  const { rows } = await db.query<{ code: string; issuer: string | null; today: string; total: string }>(
    `select p.asset_code as code, p.asset_issuer as issuer,
            coalesce(sum(s.amount_stroops) filter (where s.closed_at >= $2), 0)::text as today, sum(s.amount_stroops)::text as total
     from payment_settlements s join payments p on p.id = s.payment_id
     where p.merchant_id = $1 and s.closed_at >= $3 and not s.late
     group by 1, 2 order by 1, 2`,
    [merchantId, today, since],
  );
  return rows.map((r) => ({ asset: { code: r.code, issuer: r.issuer } satisfies Asset, today: BigInt(r.today), total: BigInt(r.total) }));
}

export interface DeliveryHealth {
  /** Attempts since the start of the window, and how many got a 2xx. */
  attempts: number;
  succeeded: number;
  /** Deliveries waiting to be sent (or retried), and the oldest of their due times. */
  queued: number;
  oldestDueAt: Date | null;
}

/** Webhook health per endpoint of the merchant (live endpoints), over attempts since `since`. */
export async function endpointHealth(db: Db, merchantId: string, since: Date): Promise<Map<string, DeliveryHealth>> {
  const { rows } = await db.query<{ endpoint_id: string; attempts: number; succeeded: number; queued: number; oldest_due_at: Date | null }>(
    `select e.id as endpoint_id,
       (select count(*)::int from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id
        where d.endpoint_id = e.id and a.started_at >= $2) as attempts,
       (select count(*)::int from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id
        where d.endpoint_id = e.id and a.started_at >= $2 and a.status_code between 200 and 299) as succeeded,
       (select count(*)::int from webhook_deliveries d where d.endpoint_id = e.id and d.status = 'pending') as queued,
       (select min(d.next_attempt_at) from webhook_deliveries d where d.endpoint_id = e.id and d.status = 'pending') as oldest_due_at
     from webhook_endpoints e where e.merchant_id = $1 and e.deleted_at is null`,
    [merchantId, since],
  );
  return new Map(rows.map((r) => [r.endpoint_id, { attempts: r.attempts, succeeded: r.succeeded, queued: r.queued, oldestDueAt: r.oldest_due_at }]));
}

/** The same figures over all the merchant's endpoints. */
export async function merchantDeliveryHealth(db: Db, merchantId: string, since: Date): Promise<DeliveryHealth> {
  const health = [...(await endpointHealth(db, merchantId, since)).values()];
  const oldest = health.map((h) => h.oldestDueAt).filter((d): d is Date => d !== null).sort((a, b) => a.getTime() - b.getTime())[0];
  return {
    attempts: health.reduce((n, h) => n + h.attempts, 0),
    succeeded: health.reduce((n, h) => n + h.succeeded, 0),
    queued: health.reduce((n, h) => n + h.queued, 0),
    oldestDueAt: oldest ?? null,
  };
}

export interface TimelineEvent {
  id: string;
  type: string;
  sequence: number | null;
  createdAt: Date;
}

/** A payment's events in the order they happened (its sequence). */
export async function paymentEvents(db: Db, merchantId: string, paymentId: string): Promise<TimelineEvent[]> {
  const { rows } = await db.query<{ id: string; type: string; sequence: number | null; created_at: Date }>(
    "select id, type, sequence, created_at from events where payment_id = $1 and merchant_id = $2 order by sequence, created_at, id",
    [paymentId, merchantId],
  );
  return rows.map((r) => ({ id: r.id, type: r.type, sequence: r.sequence, createdAt: r.created_at }));
}

/** Deliveries shown on a payment's page, at most: a payment has a few events, each sent to a few endpoints. */
export const MAX_PAYMENT_DELIVERIES = 50;
