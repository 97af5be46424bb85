import type { Db } from "../db/pool.js";
import { newId } from "../ids.js";
import { API_VERSION, type EventEnvelope, type EventType } from "./types.js";

/** NOTIFY channel that wakes delivery workers; PostgreSQL delivers it only when the transaction commits. */
export const DELIVERIES_CHANNEL = "lumenpay_webhook_deliveries";

export interface NewEvent {
  merchantId: string;
  type: EventType;
  object: unknown;
  now: Date;
  /** The payment this event is about, with its sequence number after this change. */
  payment?: { id: string; sequence: number };
  /** Deterministic id for chain-derived events, so re-ingestion cannot create a second event. */
  id?: string;
}

export interface RecordedEvent {
  id: string;
  body: string;
  /** False when an event with this id already existed (nothing was written). */
  created: boolean;
}

/**
 * Writes an event and its deliveries in the caller's transaction (the outbox): the state change,
 * its event and the queue rows commit or roll back together, so a notification is never lost.
 */
export async function recordEvent(tx: Db, e: NewEvent): Promise<RecordedEvent> {
  const recorded = await insertEvent(tx, e);
  if (recorded.created) await fanOut(tx, { id: recorded.id, merchantId: e.merchantId, type: e.type, createdAt: e.now });
  return recorded;
}

/** Writes the event alone, delivered to nobody; `recordEvent` also fans it out. */
export async function insertEvent(tx: Db, e: NewEvent): Promise<RecordedEvent> {
  const id = e.id ?? newId("evt");
  const envelope: EventEnvelope = {
    id,
    type: e.type,
    created_at: e.now.toISOString(),
    api_version: API_VERSION,
    ...(e.payment ? { sequence: e.payment.sequence } : {}),
    data: { object: e.object },
  };
  // Serialized once: every attempt to every endpoint sends these exact bytes.
  const body = JSON.stringify(envelope);
  const inserted = await tx.query(
    `insert into events (id, merchant_id, type, payment_id, sequence, body, created_at)
     values ($1, $2, $3, $4, $5, $6, $7) on conflict (id) do nothing`,
    [id, e.merchantId, e.type, e.payment?.id ?? null, e.payment?.sequence ?? null, body, e.now],
  );
  return { id, body, created: inserted.rowCount !== 0 };
}

/**
 * One delivery row per subscribed endpoint. Disabled endpoints still get a row, parked as
 * `endpoint_disabled`, so the event can be recovered once the merchant fixes the endpoint.
 */
export async function fanOut(tx: Db, event: { id: string; merchantId: string; type: string; createdAt: Date }, endpointIds?: string[]): Promise<number> {
  const { rowCount } = await tx.query(
    `insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, status, next_attempt_at, event_created_at)
     select 'del_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 22), $1, e.id, e.merchant_id,
            case when e.disabled then 'endpoint_disabled' else 'pending' end, $4, $4
     from webhook_endpoints e
     where e.merchant_id = $2 and e.deleted_at is null
       and ($3 = any (e.enabled_events) or '*' = any (e.enabled_events))
       and ($5::text[] is null or e.id = any ($5::text[]))`,
    [event.id, event.merchantId, event.type, event.createdAt, endpointIds ?? null],
  );
  if ((rowCount ?? 0) > 0) await notifyDeliveryWorkers(tx);
  return rowCount ?? 0;
}

/** Queues `event` for one endpoint whatever it subscribes to (a test event); returns the delivery id. */
export async function deliverToEndpoint(tx: Db, event: { id: string; merchantId: string; createdAt: Date }, endpointId: string): Promise<string> {
  const id = newId("del");
  await tx.query(
    `insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, next_attempt_at, event_created_at, created_at)
     values ($1, $2, $3, $4, $5, $5, $5)`,
    [id, event.id, endpointId, event.merchantId, event.createdAt],
  );
  await notifyDeliveryWorkers(tx);
  return id;
}

/** Wakes delivery workers once the caller's transaction commits. */
export async function notifyDeliveryWorkers(tx: Db): Promise<void> {
  await tx.query(`select pg_notify('${DELIVERIES_CHANNEL}', '')`);
}
