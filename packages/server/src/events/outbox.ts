import type { Db } from "../db/pool.js";
import { newId } from "../ids.js";
import { API_VERSION, type EventEnvelope, type EventType } from "./types.js";

/** SQL: whether an event of type `type` goes to a subscriber of `enabledEvents` (types, or "*" for all). */
export const subscribes = (type: string, enabledEvents: string) => `(${type} = any (${enabledEvents}) or '*' = any (${enabledEvents}))`;

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
  /**
   * True when a delivery was queued for an enabled endpoint: once the transaction commits, the
   * caller wakes the delivery workers (webhooks/wakeup.ts).
   */
  queued: boolean;
}

/**
 * The outbox statement: `source` is a CTE body that inserts events and returns their ids; one
 * delivery row per subscribed endpoint follows each. Disabled endpoints still get a row, parked as
 * `endpoint_disabled`, so the event can be recovered once the merchant fixes the endpoint.
 * Endpoints are read, not locked; the inserts' foreign-key checks take key-share locks, which
 * webhook paths never block (webhooks/queue.ts). `p` names the parameters holding the merchant id,
 * the event type and its time; `p.before` are CTEs the source reads (the state change itself, so
 * that it and its event are one statement).
 *
 * Selects `created`, whether an event was written, and `queued`, whether a delivery is due (not
 * parked); or `p.select`, which may read the CTEs `event` and `deliveries` (with its `event_id`), e.g.
 * for `queued` per event. It sends no NOTIFY: a NOTIFY holds a database-wide lock from pre-commit
 * through the commit, so transactions that notify cannot share a WAL flush. The caller wakes the workers once
 * it has committed, when `queued` (webhooks/wakeup.ts).
 */
export function outboxStatement(source: string, p: { merchant: string; type: string; now: string; before?: string; select?: string }): string {
  return `with ${p.before ? `${p.before}, ` : ""}event as (${source}),
     deliveries as (
       insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, status, next_attempt_at, event_created_at)
       select 'del_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 22), event.id, e.id, e.merchant_id,
              case when e.disabled then 'endpoint_disabled' else 'pending' end, ${p.now}, ${p.now}
       from event, webhook_endpoints e
       where e.merchant_id = ${p.merchant} and e.deleted_at is null
         and ${subscribes(p.type, "e.enabled_events")}
       returning event_id, status
     )
     ${p.select ?? "select exists (select 1 from event) as created, exists (select 1 from deliveries where status = 'pending') as queued"}`;
}

const INSERT_EVENT = `insert into events (id, merchant_id, type, payment_id, sequence, body, created_at)
  values ($1, $2, $3, $4, $5, $6, $7) on conflict (id) do nothing`;
const RECORD_EVENT = outboxStatement(`${INSERT_EVENT} returning id`, { merchant: "$2", type: "$3", now: "$7" });

/**
 * Writes an event and its deliveries in the caller's transaction (the outbox): the state change,
 * its event and the queue rows commit or roll back together, so a notification is never lost.
 * One round trip on the API's hot path. When it returns `queued`, wake the workers after the commit.
 */
export async function recordEvent(tx: Db, e: NewEvent): Promise<RecordedEvent> {
  const { id, body } = envelopeOf(e);
  const { rows } = await tx.query<{ created: boolean; queued: boolean }>(RECORD_EVENT, eventParams(id, body, e));
  return { id, body, created: rows[0]!.created, queued: rows[0]!.queued };
}

/** Writes the event alone, delivered to nobody (a test event is then queued for one endpoint). */
export async function insertEvent(tx: Db, e: NewEvent): Promise<RecordedEvent> {
  const { id, body } = envelopeOf(e);
  const inserted = await tx.query(INSERT_EVENT, eventParams(id, body, e));
  return { id, body, created: inserted.rowCount !== 0, queued: false };
}

const eventParams = (id: string, body: string, e: NewEvent) => [id, e.merchantId, e.type, e.payment?.id ?? null, e.payment?.sequence ?? null, body, e.now];

/** The event's id and the exact bytes every delivery of it sends. */
export function envelopeOf(e: NewEvent): { id: string; body: string } {
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
  return { id, body: JSON.stringify(envelope) };
}

/**
 * Queues `event` for one endpoint whatever it subscribes to (a test event); returns the delivery id.
 * Wake the workers once the transaction commits.
 */
export async function deliverToEndpoint(tx: Db, event: { id: string; merchantId: string; createdAt: Date }, endpointId: string): Promise<string> {
  const id = newId("del");
  await tx.query(
    `insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, next_attempt_at, event_created_at, created_at)
     values ($1, $2, $3, $4, $5, $5, $5)`,
    [id, event.id, endpointId, event.merchantId, event.createdAt],
  );
  return id;
}
