import type { Db } from "../db/pool.js";
import { exactCreatedAt, type Position } from "../http/pagination.js";

/** Queries behind the merchant-facing delivery log, retries and recoveries (the worker's are in queue.ts). */

export const DELIVERY_STATUSES = ["pending", "succeeded", "failed", "endpoint_disabled"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

interface DeliveryRow {
  id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  completed_at: Date | null;
  position_at: string;
}

export interface DeliveryOut {
  id: string;
  object: "webhook_delivery";
  event_id: string;
  event_type: string;
  endpoint_id: string;
  status: DeliveryStatus;
  /** Attempts made so far. */
  attempt_count: number;
  /** When the next attempt is due; null unless pending. */
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  completed_at: string | null;
}

export function deliveryOut(r: DeliveryRow): DeliveryOut {
  return {
    id: r.id,
    object: "webhook_delivery",
    event_id: r.event_id,
    event_type: r.event_type,
    endpoint_id: r.endpoint_id,
    status: r.status,
    attempt_count: r.attempts,
    next_attempt_at: r.status === "pending" ? r.next_attempt_at.toISOString() : null,
    last_status_code: r.last_status,
    last_error: r.last_error,
    created_at: r.created_at.toISOString(),
    completed_at: r.completed_at?.toISOString() ?? null,
  };
}

export const deliveryPosition = (r: DeliveryRow): Position => ({ createdAt: r.position_at, id: r.id });

const DELIVERY_COLUMNS = `d.id, d.event_id, ev.type as event_type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
  d.last_status, d.last_error, d.created_at, d.completed_at, ${exactCreatedAt("d.created_at")} as position_at`;

/** One merchant's delivery; another merchant's id reads as absent. */
export async function getDelivery(db: Db, merchantId: string, id: string): Promise<DeliveryRow | undefined> {
  const { rows } = await db.query<DeliveryRow>(
    `select ${DELIVERY_COLUMNS} from webhook_deliveries d join events ev on ev.id = d.event_id
     where d.id = $1 and d.merchant_id = $2`,
    [id, merchantId],
  );
  return rows[0];
}

/** An endpoint's deliveries, newest first (webhook_deliveries_endpoint_idx). */
export async function listDeliveries(
  db: Db,
  f: { merchantId: string; endpointId: string; status?: DeliveryStatus; after: Position | undefined; limit: number },
): Promise<DeliveryRow[]> {
  const { rows } = await db.query<DeliveryRow>(
    `select ${DELIVERY_COLUMNS} from webhook_deliveries d join events ev on ev.id = d.event_id
     where d.endpoint_id = $1 and d.merchant_id = $2
       and ($3::text is null or d.status = $3)
       and ($4::timestamptz is null or (d.created_at, d.id) < ($4, $5::text))
     order by d.created_at desc, d.id desc
     limit $6`,
    [f.endpointId, f.merchantId, f.status ?? null, f.after?.createdAt ?? null, f.after?.id ?? null, f.limit],
  );
  return rows;
}

/**
 * Sends a delivery again as soon as a worker is free, keeping its attempt count: a pending one
 * jumps the wait, a finished one gets one more attempt (a fresh schedule is what a recovery gives).
 * An attempt in flight loses its lease, so its outcome cannot undo the retry (queue.ts fences on it).
 * Call it holding the endpoint's lock (the lock order in queue.ts).
 */
export async function requeueDelivery(db: Db, id: string, now: Date): Promise<void> {
  await db.query(
    "update webhook_deliveries set status = 'pending', next_attempt_at = $2, completed_at = null, locked_by = null, locked_until = null where id = $1",
    [id, now],
  );
}

interface AttemptRow {
  attempt: number;
  started_at: Date;
  duration_ms: number;
  status_code: number | null;
  error_class: string | null;
  response_body: string | null;
}

export interface AttemptOut {
  attempt: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  /** Why it failed without (or despite) a response, e.g. `timeout`, `connection`, `unreachable`, `tls`, `http_status`. */
  error_class: string | null;
  /** The first 4 KB of the response body. */
  response_body: string | null;
}

/** The attempt log of a delivery, oldest first; entries past the retention period are gone. */
export async function listAttempts(db: Db, deliveryId: string): Promise<AttemptOut[]> {
  return (await attemptsOf(db, [deliveryId])).get(deliveryId) ?? [];
}

/** The attempt logs of several deliveries in one query, by delivery id. */
export async function attemptsOf(db: Db, deliveryIds: string[]): Promise<Map<string, AttemptOut[]>> {
  const { rows } = await db.query<AttemptRow & { delivery_id: string }>(
    `select delivery_id, attempt, started_at, duration_ms, status_code, error_class, response_body
     from webhook_attempts where delivery_id = any ($1::text[]) order by delivery_id, attempt, id`,
    [deliveryIds],
  );
  const byDelivery = new Map<string, AttemptOut[]>();
  for (const { delivery_id, ...r } of rows) {
    const list = byDelivery.get(delivery_id) ?? [];
    list.push({ ...r, started_at: r.started_at.toISOString() });
    byDelivery.set(delivery_id, list);
  }
  return byDelivery;
}

/** The deliveries of a payment's events, oldest first, with the URL of their endpoint (at most `limit`). */
export async function listPaymentDeliveries(db: Db, merchantId: string, paymentId: string, limit: number): Promise<Array<DeliveryRow & { url: string }>> {
  const { rows } = await db.query<DeliveryRow & { url: string }>(
    `select ${DELIVERY_COLUMNS}, e.url from events ev
     join webhook_deliveries d on d.event_id = ev.id
     join webhook_endpoints e on e.id = d.endpoint_id
     where ev.payment_id = $1 and ev.merchant_id = $2
     order by d.created_at, d.id limit $3`,
    [paymentId, merchantId, limit],
  );
  return rows;
}

export interface RecoveryRow {
  id: string;
  endpoint_id: string;
  since: Date;
  until: Date;
  requeued: number;
  status: "running" | "done";
  created_at: Date;
  finished_at: Date | null;
}

export interface RecoveryOut {
  id: string;
  object: "webhook_recovery";
  endpoint_id: string;
  since: string;
  until: string;
  status: "running" | "done";
  /** Deliveries put back in the queue so far. */
  requeued: number;
  created_at: string;
  finished_at: string | null;
}

export function recoveryOut(r: RecoveryRow): RecoveryOut {
  return {
    id: r.id,
    object: "webhook_recovery",
    endpoint_id: r.endpoint_id,
    since: r.since.toISOString(),
    until: r.until.toISOString(),
    status: r.status,
    requeued: r.requeued,
    created_at: r.created_at.toISOString(),
    finished_at: r.finished_at?.toISOString() ?? null,
  };
}

/** Queues a recovery; the maintenance loop (processRecoveries) carries it out. */
export async function insertRecovery(
  db: Db,
  r: { id: string; endpointId: string; since: Date; until: Date; now: Date },
): Promise<RecoveryRow> {
  const { rows } = await db.query<RecoveryRow>(
    "insert into webhook_recoveries (id, endpoint_id, since, until, created_at) values ($1, $2, $3, $4, $5) returning *",
    [r.id, r.endpointId, r.since, r.until, r.now],
  );
  return rows[0]!;
}

/** A recovery of one of the merchant's endpoints (deleted ones included); otherwise absent. */
export async function getRecovery(db: Db, merchantId: string, id: string): Promise<RecoveryRow | undefined> {
  const { rows } = await db.query<RecoveryRow>(
    `select r.* from webhook_recoveries r join webhook_endpoints e on e.id = r.endpoint_id
     where r.id = $1 and e.merchant_id = $2`,
    [id, merchantId],
  );
  return rows[0];
}
