import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Clock } from "../clock.js";
import { statement, transaction, type Db, type Pool } from "../db/pool.js";
import { purgeInBatches } from "../db/purge.js";
import { badRequest, HttpError } from "./errors.js";

/** How long a key's result is replayed; older records count as absent. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;

/** What a handler answers: `status` and `body` are stored and replayed for a repeated key. */
export interface HandlerResult<T> {
  status: number;
  body: T;
  /** Runs once the transaction has committed, never on a replay (metrics, waking a worker). */
  afterCommit?: () => void;
}

/** Request headers of every POST route, so OpenAPI documents the header. */
export const idempotencyHeadersSchema = {
  type: "object",
  properties: {
    "idempotency-key": {
      type: "string",
      maxLength: 255,
      description:
        "1–255 printable ASCII characters. A retry with the same key and body within 24 h returns the first response " +
        "(with `Idempotent-Replayed: true`) instead of acting twice.",
    },
  },
} as const;
export interface IdempotencyHeaders {
  "idempotency-key"?: string;
}

const KEY = /^[\x20-\x7e]{1,255}$/;

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` count as the same request body. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Identifies a request for key reuse: the same key on another path or with another body is an error. */
export function requestHash(method: string, url: string, body: unknown): Buffer {
  // A POST without a body and one with `{}` carry the same parameters.
  return createHash("sha256").update(`${method} ${url}\n${canonicalJson(body ?? {})}`).digest();
}

export interface IdempotencyScope {
  merchantId: string;
  key: string;
  requestHash: Buffer;
  now: Date;
}

/**
 * Runs `run` at most once per (merchant, key) within 24 h, crash-safely: the key is claimed with a
 * transaction-scoped advisory lock and the response is stored in the same transaction as the
 * handler's writes, so either both commit or neither does. A thrown error (validation, conflict,
 * crash) rolls everything back and stores nothing, like Stripe, so the client may retry with the key.
 */
export async function idempotently<T>(
  pool: Pool,
  scope: IdempotencyScope,
  run: (tx: Db) => Promise<HandlerResult<T>>,
): Promise<HandlerResult<T> & { replayed: boolean }> {
  try {
    return await transaction(pool, async (tx) => {
      const { rows: locks } = await tx.query<{ locked: boolean }>(
        "select pg_try_advisory_xact_lock(hashtextextended($1, 0)) as locked",
        [`${scope.merchantId}:${scope.key}`],
      );
      if (!locks[0]?.locked) throw keyInUse();
      const stored = await storedResponse<T>(tx, scope, false);
      if (stored) return replay(stored, scope);
      const result = await run(tx);
      // An expired record was deleted by the read; one there now was written meanwhile by a
      // one-statement handler, which takes no lock, and the insert is refused (keyTaken).
      await tx.query(
        `insert into idempotency_keys (merchant_id, key, request_hash, response_status, response_body, created_at)
         values ($1, $2, $3, $4, $5, $6)`,
        [scope.merchantId, scope.key, scope.requestHash, result.status, JSON.stringify(result.body), scope.now],
      );
      return { ...result, replayed: false };
    });
  } catch (error) {
    throw keyTaken(error) ? keyInUse() : error;
  }
}

interface StoredResponse<T> {
  request_hash: Buffer;
  response_status: number;
  response_body: T;
}

/** The response stored for the key within 24 h, if any; an expired record is deleted. Named when `prepared`. */
async function storedResponse<T>(db: Db, scope: IdempotencyScope, prepared: boolean): Promise<StoredResponse<T> | undefined> {
  const { rows } = await db.query<StoredResponse<T>>(
    statement(
      "lumenpay_idempotency_record",
      prepared,
      `with expired as (delete from idempotency_keys where merchant_id = $1 and key = $2 and created_at <= $3)
       select request_hash, response_status, response_body from idempotency_keys
       where merchant_id = $1 and key = $2 and created_at > $3`,
      [scope.merchantId, scope.key, new Date(scope.now.getTime() - IDEMPOTENCY_KEY_TTL_MS)],
    ),
  );
  return rows[0];
}

function replay<T>(stored: StoredResponse<T>, scope: IdempotencyScope) {
  if (!stored.request_hash.equals(scope.requestHash)) {
    throw new HttpError(422, "idempotency_key_reused", "This Idempotency-Key was already used with a different request; use a new key for a new request.");
  }
  return { status: stored.response_status, body: stored.response_body, replayed: true };
}

/** PostgreSQL refused to record the key because another request recorded it first. */
const keyTaken = (error: unknown) =>
  (error as { code?: unknown; constraint?: unknown } | null)?.code === "23505" && (error as { constraint?: unknown }).constraint === "idempotency_keys_pkey";

/**
 * `idempotently` for a handler that writes with one statement, in two round trips and no
 * transaction: the stored response is read (an expired record deleted), then `run` writes its rows
 * and the key's record together in its statement (it gets `scope` for that). When another request
 * recorded the key in between, PostgreSQL refuses that statement whole, after waiting for the other
 * to commit, and its response is replayed. So a duplicate sent while the first runs gets the first's
 * response once it is done, where `idempotently` answers 409 at once.
 */
async function idempotentlyInOneStatement<T>(
  pool: Pool,
  scope: IdempotencyScope,
  run: (db: Db, scope: IdempotencyScope) => Promise<HandlerResult<T>>,
  prepared: boolean,
): Promise<HandlerResult<T> & { replayed: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const stored = await storedResponse<T>(pool, scope, prepared);
    if (stored) return replay(stored, scope);
    try {
      return { ...(await run(pool, scope)), replayed: false };
    } catch (error) {
      if (!keyTaken(error)) throw error;
      // The other request committed before the refusal, so the next read finds its record, unless it
      // was purged meanwhile.
      if (attempt === 2) throw keyInUse();
    }
  }
}

const keyInUse = () => new HttpError(409, "idempotency_key_in_use", "A request with this Idempotency-Key is still being processed; retry later.");

/**
 * The route-facing form: runs `run` in a transaction, idempotently when the request carries an
 * `Idempotency-Key`, sets the status (and `Idempotent-Replayed` on a replay) and returns the body.
 * `oneStatement`: `run` writes with a single statement (retrying it only when it wrote nothing), so
 * it runs on the pool in that statement's implicit transaction: no BEGIN and COMMIT round trips. With
 * a key, `run` also gets its `scope` and must write the key's record in that statement
 * (`idempotentlyInOneStatement`); `deps.prepared` names the statement reading the record.
 */
export async function replyIdempotently<T>(
  deps: { pool: Pool; clock: Clock; prepared?: boolean },
  request: FastifyRequest,
  reply: FastifyReply,
  run: (db: Db, scope?: IdempotencyScope) => Promise<HandlerResult<T>>,
  { oneStatement = false } = {},
): Promise<T> {
  const header = request.headers["idempotency-key"];
  if (header === undefined) {
    const result = oneStatement ? await run(deps.pool) : await transaction(deps.pool, run);
    result.afterCommit?.();
    reply.status(result.status);
    return result.body;
  }
  if (typeof header !== "string" || !KEY.test(header)) {
    throw badRequest("invalid_idempotency_key", "Idempotency-Key must be 1–255 printable ASCII characters.", "Idempotency-Key");
  }
  const scope = { merchantId: request.merchant.id, key: header, requestHash: requestHash(request.method, request.url, request.body), now: deps.clock.now() };
  const result = oneStatement ? await idempotentlyInOneStatement(deps.pool, scope, run, deps.prepared ?? false) : await idempotently(deps.pool, scope, run);
  if (result.replayed) reply.header("idempotent-replayed", "true");
  result.afterCommit?.();
  reply.status(result.status);
  return result.body;
}

/** Deletes records past their 24 h; for a background job. Returns how many were deleted. */
export function purgeExpiredIdempotencyKeys(db: Db, now: Date, signal?: AbortSignal): Promise<number> {
  return purgeInBatches(
    db,
    `delete from idempotency_keys where (merchant_id, key) in (
       select merchant_id, key from idempotency_keys where created_at <= $2 limit $1 for update skip locked)`,
    [new Date(now.getTime() - IDEMPOTENCY_KEY_TTL_MS)],
    signal,
  );
}
