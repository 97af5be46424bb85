import { statement, type Db } from "../db/pool.js";
import { randomToken } from "../ids.js";
import type { DeliveryStatus } from "./deliveries-store.js";
import { lockEndpointRow } from "./endpoints-store.js";

/**
 * The delivery queue is the webhook_deliveries table. A worker claims due rows with
 * `for no key update skip locked` and holds a lease (`locked_until`); completing or failing is fenced by
 * the claim's own token in `locked_by` (the worker's id and a per-claim suffix), so an attempt whose
 * lease expired, or whose row a manual retry put back in the queue, cannot overwrite a newer claim's
 * result, even one by the same worker. Rows of a dead worker return to the queue when the lease expires.
 *
 * Lock order, for every transaction in webhooks/ (API routes, this worker, maintenance): an
 * endpoint's row before any of its delivery rows; several endpoints in id order; several
 * deliveries in id order (`select … order by id for no key update`, then update); attempt and
 * recovery rows last. Endpoint and delivery rows are locked `for no key update`, never `for update`,
 * so the key-share locks of foreign-key checks (the outbox inserting deliveries, attempts being
 * logged) never wait for them.
 * Statements that skip locked rows (claim, purge) never wait and so cannot take part in a deadlock.
 *
 * A claim commits without waiting for its WAL to reach the disk (`synchronous_commit` off for its own
 * transaction only): that flush was on every delivery's path from commit to receipt. A PostgreSQL crash
 * can forget only claims of the last moments, whose rows are then claimed and sent again (delivery is
 * at least once); any later synchronous commit, such as the attempt's recording, flushes them first.
 * docs/operations.md ("Webhook delivery") says the same for operators.
 */

export interface ClaimedDelivery {
  id: string;
  /** This claim's token in `locked_by`: recording the attempt requires it still to be there. */
  lease: string;
  eventId: string;
  endpointId: string;
  /** Attempt number of the attempt about to be made (1 for the first). */
  attempt: number;
  eventCreatedAt: Date;
  body: string;
  url: string;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
}

interface ClaimRow {
  id: string;
  event_id: string;
  endpoint_id: string;
  attempts: number;
  event_created_at: Date;
  body: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
}

/**
 * Claims up to `limit` due deliveries, oldest first, and no more of an endpoint's than it has room for:
 * `maxPerEndpoint` less its requests already `inFlight` (so a claim never takes rows the worker would
 * have to hand back, and an endpoint at its cap is not read at all).
 */
export async function claimDeliveries(
  db: Db,
  args: {
    workerId: string;
    now: Date;
    leaseMs: number;
    limit: number;
    maxPerEndpoint: number;
    inFlight: ReadonlyMap<string, number>;
    /** Named, parsed and planned once per connection: not through a transaction pooler (db/pool.ts `statement`). */
    prepared: boolean;
  },
): Promise<ClaimedDelivery[]> {
  const lease = `${args.workerId}/${randomToken(8)}`;
  const { rows } = await db.query<ClaimRow>(
    statement(
      "lumenpay_claim_deliveries",
      args.prepared,
      `with recursive active (endpoint_id) as (
       -- The endpoints with pending deliveries, one index probe each (a loose index scan).
       (select endpoint_id from webhook_deliveries where status = 'pending' order by endpoint_id limit 1)
       union all
       select (select d.endpoint_id from webhook_deliveries d where d.status = 'pending' and d.endpoint_id > a.endpoint_id order by d.endpoint_id limit 1)
       from active a where a.endpoint_id is not null
     ), candidates as (
       -- Each active endpoint's oldest due rows it has room for, then the oldest of all: a full endpoint's backlog is never read.
       select c.id, c.next_attempt_at
       from active a
       join webhook_endpoints e on e.id = a.endpoint_id
       left join unnest($5::text[], $6::int[]) as busy (endpoint_id, in_flight) on busy.endpoint_id = a.endpoint_id
       cross join lateral (
         select d.id, d.next_attempt_at from webhook_deliveries d
         where d.endpoint_id = a.endpoint_id and d.status = 'pending' and d.next_attempt_at <= $2
           and (d.locked_until is null or d.locked_until < $2)
         order by d.next_attempt_at
         limit least($4, greatest(0, $7 - coalesce(busy.in_flight, 0)))
       ) c
       -- Never to an endpoint removed or switched off meanwhile: its rows wait (disabled) or are dropped (deleted).
       where not e.disabled and e.deleted_at is null
       order by c.next_attempt_at
       limit $4
     ), due as (
       select d.id from webhook_deliveries d join candidates using (id)
       where d.status = 'pending' and (d.locked_until is null or d.locked_until < $2)
       order by d.id
       for no key update of d skip locked
     ), claimed as (
       update webhook_deliveries d
       -- attempts counts attempts made: it grows when one is recorded, so a crash mid-attempt (the lease
       -- expires, the row is claimed again) does not use up a step of the retry schedule.
       set locked_by = $1, locked_until = $2::timestamptz + make_interval(secs => $3::float8 / 1000)
       from due where d.id = due.id
       returning d.id, d.event_id, d.endpoint_id, d.attempts, d.event_created_at
     ), relaxed as (
       -- For this statement's transaction only (is_local): a pooled connection goes back unchanged.
       select set_config('synchronous_commit', 'off', true)
     )
     select c.*, ev.body, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at
     from claimed c
     join events ev on ev.id = c.event_id
     join webhook_endpoints e on e.id = c.endpoint_id
     cross join relaxed`,
      [lease, args.now, args.leaseMs, args.limit, [...args.inFlight.keys()], [...args.inFlight.values()], args.maxPerEndpoint],
    ),
  );
  return rows.map((r) => ({
    id: r.id,
    lease,
    eventId: r.event_id,
    endpointId: r.endpoint_id,
    attempt: r.attempts + 1,
    eventCreatedAt: r.event_created_at,
    body: r.body,
    url: r.url,
    secret: r.secret,
    previousSecret: r.previous_secret,
    previousSecretExpiresAt: r.previous_secret_expires_at,
  }));
}

/** Hands claimed rows back untouched (the worker took more than an endpoint's fair share). */
export async function releaseDeliveries(db: Db, claimed: Array<Pick<ClaimedDelivery, "id" | "lease">>): Promise<void> {
  if (claimed.length === 0) return;
  await db.query(
    `with released as (
       select d.id from webhook_deliveries d join unnest($1::text[], $2::text[]) as c(id, lease) using (id)
       where d.locked_by = c.lease order by d.id for no key update of d
     )
     update webhook_deliveries d set locked_by = null, locked_until = null
     from released where d.id = released.id`,
    [claimed.map((c) => c.id), claimed.map((c) => c.lease)],
  );
}

export interface AttemptRecord {
  attempt: number;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  responseBody: string | null;
}

/** Logs an attempt of a delivery that still exists (purged rows take their log with them). */
async function logAttempt(db: Db, deliveryId: string, a: AttemptRecord): Promise<void> {
  await db.query(
    `insert into webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error_class, response_body)
     select $1, $2, $3, $4, $5, $6, $7 where exists (select 1 from webhook_deliveries where id = $1)`,
    [deliveryId, a.attempt, a.startedAt, a.durationMs, a.statusCode, a.errorClass, a.responseBody],
  );
}

export interface Completion {
  id: string;
  lease: string;
  endpointId: string;
  now: Date;
  attempt: AttemptRecord;
}

/**
 * A completion as one JSON record of the statement's input. One JSON text costs a third of nine
 * array parameters to write (pg quotes each element of an array, and formats each Date), and times
 * travel as milliseconds since the epoch, exact to the millisecond they were taken with.
 */
const completionRecord = (c: Completion) => ({
  id: c.id,
  lease: c.lease,
  completed_at_ms: c.now.getTime(),
  attempt: c.attempt.attempt,
  started_at_ms: c.attempt.startedAt.getTime(),
  duration_ms: c.attempt.durationMs,
  status_code: c.attempt.statusCode,
  error_class: c.attempt.errorClass,
  response_body: c.attempt.responseBody,
});

/**
 * Marks deliveries succeeded, logs their attempts and clears `failing_since` of their endpoints, in
 * one statement (no BEGIN and COMMIT round trips; named when `prepared`, db/pool.ts `statement`). It
 * keeps the lock order: the endpoints with a run of failures are locked first (in id order; a healthy
 * endpoint's row is not locked at all), then the deliveries (in id order) — the deliveries' scan waits
 * on a condition about the endpoints that does not depend on its rows, which PostgreSQL evaluates
 * once, before the scan starts (a one-time filter).
 * Returns the ids recorded: a delivery whose claim no longer holds its lease is left alone, but its
 * attempt is logged all the same: the receiver did get that request.
 */
export async function completeDeliveries(db: Db, completions: Completion[], prepared: boolean): Promise<Set<string>> {
  if (completions.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    statement(
      "lumenpay_complete_deliveries",
      prepared,
      `with input as (
       select t.id, t.lease, to_timestamp(t.completed_at_ms / 1000) as completed_at, t.attempt, to_timestamp(t.started_at_ms / 1000) as started_at,
              t.duration_ms, t.status_code, t.error_class, t.response_body
       from json_to_recordset($1::json) as t(id text, lease text, completed_at_ms float8, attempt int, started_at_ms float8,
                                            duration_ms int, status_code int, error_class text, response_body text)
     ), failing as (
       select id from webhook_endpoints where id = any ($2::text[]) and failing_since is not null order by id for no key update
     ), leased as (
       select d.id from webhook_deliveries d join input i using (id)
       where d.locked_by = i.lease and (select count(*) from failing) >= 0
       order by d.id for no key update of d
     ), done as (
       update webhook_deliveries d
       set status = 'succeeded', locked_by = null, locked_until = null, completed_at = i.completed_at,
           last_status = i.status_code, last_error = null, attempts = d.attempts + 1
       from leased l join input i using (id)
       where d.id = l.id
       returning d.id, d.endpoint_id
     ), logged as (
       insert into webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error_class, response_body)
       select i.id, i.attempt, i.started_at, i.duration_ms, i.status_code, i.error_class, i.response_body
       from input i where exists (select 1 from webhook_deliveries d where d.id = i.id)
     ), healed as (
       update webhook_endpoints e set failing_since = null
       where e.id in (select id from failing) and e.id in (select endpoint_id from done)
     )
     select id from done`,
      [JSON.stringify(completions.map(completionRecord)), [...new Set(completions.map((c) => c.endpointId))]],
    ),
  );
  return new Set(rows.map((r) => r.id));
}

/** Where a delivery goes after a failed attempt: its endpoint's state decides as much as the schedule. */
function statusAfterFailure(endpoint: { disabled: boolean; deleted_at: Date | null } | undefined, nextAttemptAt: Date | null): DeliveryStatus {
  if (nextAttemptAt === null || !endpoint || endpoint.deleted_at !== null) return "failed";
  // Disabled while the attempt was in flight: park it with the rest of the endpoint's queue.
  return endpoint.disabled ? "endpoint_disabled" : "pending";
}

/**
 * Logs a failed attempt and schedules the next one; marks the delivery failed when `nextAttemptAt`
 * is null or its endpoint was deleted meanwhile, and parks it when the endpoint was disabled
 * meanwhile. Run it in a transaction: it locks the endpoint's row first, as every path does.
 * Returns the delivery's new status, or undefined when the claim `lease` no longer holds the row (the
 * attempt is logged then too, and changes nothing else).
 */
export async function failDelivery(
  tx: Db,
  args: { id: string; lease: string; endpointId: string; now: Date; nextAttemptAt: Date | null; attempt: AttemptRecord },
): Promise<DeliveryStatus | undefined> {
  const status = statusAfterFailure(await lockEndpointRow(tx, args.endpointId), args.nextAttemptAt);
  const { rowCount } = await tx.query(
    `update webhook_deliveries
     set status = $3, next_attempt_at = coalesce($4, next_attempt_at), completed_at = case when $3 = 'failed' then $5::timestamptz end,
         locked_by = null, locked_until = null, last_status = $6, last_error = $7, attempts = attempts + 1
     where id = $1 and locked_by = $2`,
    [
      args.id,
      args.lease,
      status,
      status === "pending" ? args.nextAttemptAt : null,
      args.now,
      args.attempt.statusCode,
      args.attempt.errorClass,
    ],
  );
  await logAttempt(tx, args.id, args.attempt);
  return rowCount === 0 ? undefined : status;
}
