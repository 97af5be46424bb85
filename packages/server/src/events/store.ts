import type { Db } from "../db/pool.js";
import { exactCreatedAt, type Position } from "../http/pagination.js";
import { subscribes } from "./outbox.js";
import type { EventEnvelope, EventType } from "./types.js";

interface EventRow {
  id: string;
  body: string;
  position_at: string;
}

/** The envelope exactly as it was delivered, tagged as an API object. */
export type EventOut = EventEnvelope & { object: "event" };

export function eventOut(r: EventRow): EventOut {
  const envelope = JSON.parse(r.body) as EventEnvelope;
  return { ...envelope, object: "event" };
}

export const eventPosition = (r: EventRow): Position => ({ createdAt: r.position_at, id: r.id });

/** One merchant's event; another merchant's id reads as absent. */
export async function getEvent(db: Db, merchantId: string, id: string): Promise<EventRow | undefined> {
  const { rows } = await db.query<EventRow>(
    `select id, body, ${exactCreatedAt()} as position_at from events where id = $1 and merchant_id = $2`,
    [id, merchantId],
  );
  return rows[0];
}

/** Newest first, served by events_merchant_created_idx or, filtered by type, events_merchant_type_created_idx. */
export async function listEvents(
  db: Db,
  f: { merchantId: string; type?: EventType; after: Position | undefined; limit: number },
): Promise<EventRow[]> {
  const { rows } = await db.query<EventRow>(
    `select id, body, ${exactCreatedAt()} as position_at from events
     where merchant_id = $1
       and ($2::text is null or type = $2)
       and ($3::timestamptz is null or (created_at, id) < ($3, $4::text))
     order by created_at desc, id desc
     limit $5`,
    [f.merchantId, f.type ?? null, f.after?.createdAt ?? null, f.after?.id ?? null, f.limit],
  );
  return rows;
}

/**
 * A place in the event stream: after this event, in commit order. Events are ordered by the id of
 * the transaction that wrote them (`tx_id`, migration 012), then by time and id within one.
 */
export interface StreamPosition {
  txId: string;
  createdAt: string;
  id: string;
}

/** Before every event (those written before migration 012 have tx_id 0). */
export const STREAM_START: StreamPosition = { txId: "0", createdAt: "-infinity", id: "" };

/** An event as the stream reads it; `body` is null when the stream's filter leaves it out. */
export interface StreamRow {
  id: string;
  type: string;
  body: string | null;
  tx_id: string;
  position_at: string;
}

export const streamPosition = (r: { id: string; tx_id: string; position_at: string }): StreamPosition => ({
  txId: r.tx_id,
  createdAt: r.position_at,
  id: r.id,
});

/**
 * Only events below the oldest transaction still running (this statement's snapshot): every
 * transaction there has ended, so no event can still commit before the last one read. Newer ones wait
 * until the transactions before them end, however long that is: late, never skipped.
 */
const SETTLED = "tx_id < (select pg_snapshot_xmin(pg_current_snapshot()))";
// Queries order by `events.tx_id`: a bare tx_id would name this text column, where "10" sorts before "9".
const STREAM_COLUMNS = `id, type, tx_id::text, ${exactCreatedAt()} as position_at`;

/** Where one of the merchant's events stands; another merchant's id reads as absent. */
export async function getStreamPosition(db: Db, merchantId: string, id: string): Promise<StreamPosition | undefined> {
  const { rows } = await db.query<Omit<StreamRow, "body">>(`select ${STREAM_COLUMNS} from events where id = $1 and merchant_id = $2`, [id, merchantId]);
  return rows[0] && streamPosition(rows[0]);
}

/** The merchant's last settled event: a stream that starts "now" starts after it. */
export async function lastSettledPosition(db: Db, merchantId: string): Promise<StreamPosition | undefined> {
  const { rows } = await db.query<Omit<StreamRow, "body">>(
    `select ${STREAM_COLUMNS} from events where merchant_id = $1 and ${SETTLED}
     order by events.tx_id desc, created_at desc, id desc limit 1`,
    [merchantId],
  );
  return rows[0] && streamPosition(rows[0]);
}

/**
 * The merchant's settled events after `after`, oldest first, served by events_merchant_stream_idx.
 * Events of other types come back without their body, so that a filtered stream still moves past them.
 */
export async function streamEventsAfter(
  db: Db,
  f: { merchantId: string; after: StreamPosition; enabledEvents: string[]; limit: number },
): Promise<StreamRow[]> {
  const { rows } = await db.query<StreamRow>(
    `select ${STREAM_COLUMNS}, case when ${subscribes("type", "$5::text[]")} then body end as body
     from events
     where merchant_id = $1 and (tx_id, created_at, id) > ($2::xid8, $3::timestamptz, $4::text) and ${SETTLED}
     order by events.tx_id, created_at, id
     limit $6`,
    [f.merchantId, f.after.txId, f.after.createdAt, f.after.id, f.enabledEvents, f.limit],
  );
  return rows;
}
