import type { Db } from "../db/pool.js";
import { exactCreatedAt, type Position } from "../http/pagination.js";
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
