import type { Db } from "../db/pool.js";

/**
 * The delivery queue is the webhook_deliveries table. A worker claims due rows with
 * `for update skip locked` and holds a lease (`locked_until`); completing or failing is fenced by
 * `locked_by`, so a worker whose lease expired (and whose rows another worker re-claimed) cannot
 * overwrite the newer result. Rows of a dead worker return to the queue when the lease expires.
 */

export interface ClaimedDelivery {
  id: string;
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

export async function claimDeliveries(
  db: Db,
  args: { workerId: string; now: Date; leaseMs: number; limit: number; skipEndpoints: string[] },
): Promise<ClaimedDelivery[]> {
  const { rows } = await db.query<ClaimRow>(
    `with due as (
       select id from webhook_deliveries
       where status = 'pending' and next_attempt_at <= $2
         and (locked_until is null or locked_until < $2)
         and not (endpoint_id = any ($5::text[]))
       order by next_attempt_at
       limit $4
       for update skip locked
     ), claimed as (
       update webhook_deliveries d
       set locked_by = $1, locked_until = $2::timestamptz + make_interval(secs => $3::float8 / 1000), attempts = d.attempts + 1
       from due where d.id = due.id
       returning d.id, d.event_id, d.endpoint_id, d.attempts, d.event_created_at
     )
     select c.*, ev.body, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at
     from claimed c
     join events ev on ev.id = c.event_id
     join webhook_endpoints e on e.id = c.endpoint_id`,
    [args.workerId, args.now, args.leaseMs, args.limit, args.skipEndpoints],
  );
  return rows.map((r) => ({
    id: r.id,
    eventId: r.event_id,
    endpointId: r.endpoint_id,
    attempt: r.attempts,
    eventCreatedAt: r.event_created_at,
    body: r.body,
    url: r.url,
    secret: r.secret,
    previousSecret: r.previous_secret,
    previousSecretExpiresAt: r.previous_secret_expires_at,
  }));
}

/** Hands claimed rows back untouched (the worker took more than an endpoint's fair share). */
export async function releaseDeliveries(db: Db, ids: string[], workerId: string): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `update webhook_deliveries set locked_by = null, locked_until = null, attempts = attempts - 1
     where id = any ($1::text[]) and locked_by = $2`,
    [ids, workerId],
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

async function logAttempt(db: Db, deliveryId: string, a: AttemptRecord): Promise<void> {
  await db.query(
    `insert into webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error_class, response_body)
     values ($1, $2, $3, $4, $5, $6, $7)`,
    [deliveryId, a.attempt, a.startedAt, a.durationMs, a.statusCode, a.errorClass, a.responseBody],
  );
}

export interface Completion {
  id: string;
  now: Date;
  attempt: AttemptRecord;
}

/**
 * Marks deliveries succeeded, logs their attempts and clears `failing_since` of their endpoints,
 * all in one statement (one round trip and one commit for a whole batch). Returns the ids recorded:
 * a delivery whose lease `workerId` no longer holds is left alone and gets no attempt log.
 */
export async function completeDeliveries(db: Db, workerId: string, completions: Completion[]): Promise<Set<string>> {
  if (completions.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `with input as (
       select * from unnest($2::text[], $3::timestamptz[], $4::int[], $5::timestamptz[], $6::int[], $7::int[], $8::text[], $9::text[])
         as t(id, completed_at, attempt, started_at, duration_ms, status_code, error_class, response_body)
     ), done as (
       update webhook_deliveries d
       set status = 'succeeded', locked_by = null, locked_until = null, completed_at = i.completed_at,
           last_status = i.status_code, last_error = null
       from input i
       where d.id = i.id and d.locked_by = $1
       returning d.id, d.endpoint_id
     ), logged as (
       insert into webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error_class, response_body)
       select i.id, i.attempt, i.started_at, i.duration_ms, i.status_code, i.error_class, i.response_body
       from input i join done using (id)
     ), healing as (
       -- Locked in id order, so two batches sharing endpoints cannot deadlock.
       select id from webhook_endpoints
       where id in (select endpoint_id from done) and failing_since is not null
       order by id for update
     ), healed as (
       update webhook_endpoints e set failing_since = null from healing h where e.id = h.id
     )
     select id from done`,
    [
      workerId,
      completions.map((c) => c.id),
      completions.map((c) => c.now),
      completions.map((c) => c.attempt.attempt),
      completions.map((c) => c.attempt.startedAt),
      completions.map((c) => c.attempt.durationMs),
      completions.map((c) => c.attempt.statusCode),
      completions.map((c) => c.attempt.errorClass),
      completions.map((c) => c.attempt.responseBody),
    ],
  );
  return new Set(rows.map((r) => r.id));
}

/** Schedules the next attempt, or marks the delivery failed when `nextAttemptAt` is null. */
export async function failDelivery(
  db: Db,
  args: { id: string; workerId: string; now: Date; nextAttemptAt: Date | null; attempt: AttemptRecord },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `update webhook_deliveries
     set status = case when $3::timestamptz is null then 'failed' else 'pending' end,
         next_attempt_at = coalesce($3, next_attempt_at), completed_at = case when $3::timestamptz is null then $4::timestamptz end,
         locked_by = null, locked_until = null, last_status = $5, last_error = $6
     where id = $1 and locked_by = $2`,
    [args.id, args.workerId, args.nextAttemptAt, args.now, args.attempt.statusCode, args.attempt.errorClass],
  );
  if (rowCount === 0) return false;
  await logAttempt(db, args.id, args.attempt);
  return true;
}
