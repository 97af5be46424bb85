import type { Db } from "../db/pool.js";
import { exactCreatedAt, type Position } from "../http/pagination.js";

export interface EndpointRow {
  id: string;
  merchant_id: string;
  url: string;
  description: string | null;
  enabled_events: string[];
  disabled: boolean;
  disabled_reason: string | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  failing_since: Date | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

export interface EndpointOut {
  id: string;
  object: "webhook_endpoint";
  url: string;
  description: string | null;
  enabled_events: string[];
  disabled: boolean;
  disabled_reason: string | null;
  /** Until then, deliveries are also signed with the previous secret. */
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

export function endpointOut(r: EndpointRow): EndpointOut {
  return {
    id: r.id,
    object: "webhook_endpoint",
    url: r.url,
    description: r.description,
    enabled_events: r.enabled_events,
    disabled: r.disabled,
    disabled_reason: r.disabled_reason,
    previous_secret_expires_at: r.previous_secret_expires_at?.toISOString() ?? null,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

export async function insertEndpoint(
  db: Db,
  e: { id: string; merchantId: string; url: string; description: string | null; enabledEvents: string[]; disabled: boolean; secret: string; now: Date },
): Promise<EndpointRow> {
  const { rows } = await db.query<EndpointRow>(
    `insert into webhook_endpoints (id, merchant_id, url, description, enabled_events, disabled, secret, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $8) returning *`,
    [e.id, e.merchantId, e.url, e.description, e.enabledEvents, e.disabled, e.secret, e.now],
  );
  return rows[0]!;
}

/** The merchant's live endpoint, or undefined (another merchant's id looks exactly like a missing one). */
export async function getEndpoint(db: Db, merchantId: string, id: string): Promise<EndpointRow | undefined> {
  const { rows } = await db.query<EndpointRow>(
    "select * from webhook_endpoints where id = $1 and merchant_id = $2 and deleted_at is null",
    [id, merchantId],
  );
  return rows[0];
}

export async function updateEndpoint(
  db: Db,
  id: string,
  e: { url: string; description: string | null; enabledEvents: string[]; disabled: boolean; now: Date },
): Promise<EndpointRow> {
  const { rows } = await db.query<EndpointRow>(
    `update webhook_endpoints
     set url = $2, description = $3, enabled_events = $4, disabled = $5, updated_at = $6,
         disabled_reason = case when $5 then coalesce(disabled_reason, 'Disabled by the merchant.') end,
         failing_since = case when $5 then failing_since end
     where id = $1 returning *`,
    [id, e.url, e.description, e.enabledEvents, e.disabled, e.now],
  );
  return rows[0]!;
}

/**
 * Soft delete: deliveries and events keep referring to it, and its queue stops. Call it holding the
 * endpoint's lock (`lockEndpoint`); the deliveries are locked after it, in id order (queue.ts).
 * One in flight is ended too; its worker still logs the attempt and retries it no more.
 */
export async function deleteEndpoint(tx: Db, id: string, now: Date): Promise<void> {
  await tx.query("update webhook_endpoints set deleted_at = $2, updated_at = $2 where id = $1", [id, now]);
  await tx.query(
    `with queued as (
       select id from webhook_deliveries where endpoint_id = $1 and status = 'pending' order by id for no key update
     )
     update webhook_deliveries d set status = 'failed', last_error = 'endpoint_deleted', completed_at = $2
     from queued where d.id = queued.id`,
    [id, now],
  );
}

export async function rotateEndpointSecret(db: Db, id: string, newSecret: string, previousExpiresAt: Date, now: Date): Promise<EndpointRow> {
  const { rows } = await db.query<EndpointRow>(
    `update webhook_endpoints
     set previous_secret = secret, previous_secret_expires_at = $3, secret = $2, updated_at = $4
     where id = $1 returning *`,
    [id, newSecret, previousExpiresAt, now],
  );
  return rows[0]!;
}

/** Live endpoints of a merchant, counted for the per-merchant limit. */
export async function countEndpoints(db: Db, merchantId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "select count(*)::int as n from webhook_endpoints where merchant_id = $1 and deleted_at is null",
    [merchantId],
  );
  return rows[0]!.n;
}

/** Serializes endpoint creation per merchant (until the transaction ends), so concurrent creates cannot pass the limit together. */
export async function lockMerchantEndpoints(tx: Db, merchantId: string): Promise<void> {
  await tx.query("select pg_advisory_xact_lock(hashtextextended($1, 0))", [`webhook_endpoints:${merchantId}`]);
}

/**
 * Like `getEndpoint`, locking the row so a concurrent change cannot be lost. The lock is the one an
 * UPDATE takes (`for no key update`), never `for update`: the outbox's inserts of delivery rows
 * check their foreign key with a key-share lock, which then never waits for an endpoint's lock.
 */
export async function lockEndpoint(tx: Db, merchantId: string, id: string): Promise<EndpointRow | undefined> {
  const { rows } = await tx.query<EndpointRow>(
    "select * from webhook_endpoints where id = $1 and merchant_id = $2 and deleted_at is null for no key update",
    [id, merchantId],
  );
  return rows[0];
}

/** Any endpoint row, deleted or not, locked like `lockEndpoint`: for the worker and maintenance, which act for no merchant. */
export async function lockEndpointRow(tx: Db, id: string): Promise<EndpointRow | undefined> {
  const { rows } = await tx.query<EndpointRow>("select * from webhook_endpoints where id = $1 for no key update", [id]);
  return rows[0];
}

/** A page of live endpoints, newest first; `position_at` is `created_at` to the microsecond. */
export async function listEndpointsPage(
  db: Db,
  f: { merchantId: string; after: Position | undefined; limit: number },
): Promise<Array<EndpointRow & { position_at: string }>> {
  const { rows } = await db.query<EndpointRow & { position_at: string }>(
    `select *, ${exactCreatedAt()} as position_at from webhook_endpoints
     where merchant_id = $1 and deleted_at is null
       and ($2::timestamptz is null or (created_at, id) < ($2, $3::text))
     order by created_at desc, id desc
     limit $4`,
    [f.merchantId, f.after?.createdAt ?? null, f.after?.id ?? null, f.limit],
  );
  return rows;
}

export async function endpointPosition(db: Db, merchantId: string, id: string): Promise<Position | undefined> {
  const { rows } = await db.query<{ id: string; position_at: string }>(
    `select id, ${exactCreatedAt()} as position_at from webhook_endpoints where id = $1 and merchant_id = $2 and deleted_at is null`,
    [id, merchantId],
  );
  return rows[0] && { createdAt: rows[0].position_at, id: rows[0].id };
}

/**
 * Parks what is queued (and not in flight) for an endpoint being turned off; a recovery re-queues it.
 * Call it holding the endpoint's lock; the deliveries are locked after it, in id order (queue.ts).
 */
export async function parkPendingDeliveries(tx: Db, endpointId: string): Promise<void> {
  await tx.query(
    `with queued as (
       select id from webhook_deliveries where endpoint_id = $1 and status = 'pending' and locked_by is null
       order by id for no key update
     )
     update webhook_deliveries d set status = 'endpoint_disabled' from queued where d.id = queued.id`,
    [endpointId],
  );
}

/** Starts (or continues) the endpoint's run of failures; undefined when it is disabled or deleted. */
export async function markEndpointFailing(tx: Db, id: string, now: Date): Promise<EndpointRow | undefined> {
  const { rows } = await tx.query<EndpointRow>(
    `update webhook_endpoints set failing_since = coalesce(failing_since, $2)
     where id = $1 and not disabled and deleted_at is null returning *`,
    [id, now],
  );
  return rows[0];
}

export async function setEndpointDisabled(tx: Db, id: string, reason: string, now: Date): Promise<EndpointRow> {
  const { rows } = await tx.query<EndpointRow>(
    "update webhook_endpoints set disabled = true, disabled_reason = $2, updated_at = $3 where id = $1 returning *",
    [id, reason, now],
  );
  return rows[0]!;
}
