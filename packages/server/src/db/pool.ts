import pg from "pg";
import type { Config } from "../config.js";

export type Pool = pg.Pool;
/** A pool or a client inside a transaction: store functions accept either, so callers compose transactions. */
export type Db = pg.Pool | pg.PoolClient;

// int8 and numeric arrive as strings; money and ids must never pass through a float.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => value);

export function createPool(connectionString: string, db: Config["db"], log?: { warn(obj: object, msg: string): void }): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: db.poolMax,
    min: db.poolMin,
    idleTimeoutMillis: db.idleTimeoutMs,
    connectionTimeoutMillis: db.connectionTimeoutMs,
    // A transaction pooler refuses startup parameters: there the timeout is set on the database role.
    ...(db.pooler === "none" && { statement_timeout: db.statementTimeoutMs }),
    application_name: "lumenpay",
  });
  // An idle client can die under us (database restart, admin termination). Without a listener
  // that would crash the process; the pool discards the client and the next query reconnects.
  pool.on("error", (error) => log?.warn({ err: error }, "idle database connection lost"));
  // pg-pool listens to a client only while it is idle or running pool.query: one lent out between
  // queries, or being ended after a failed query, reports its session's end (a database restart sends
  // every session a FATAL) as an 'error' event nobody would hear, which kills the process (found by
  // `npm run chaos`). A query that needed the connection fails on its own.
  pool.on("connect", (client) => client.on("error", () => undefined));
  return pool;
}

/**
 * `text` as a named statement when `prepared`: each connection then parses it once, and PostgreSQL
 * may keep its plan, instead of parsing and planning it on every call (for the delivery worker's
 * claim, 0.4 of its 1.1 ms in PostgreSQL). Not through a transaction pooler
 * (DATABASE_POOLER=transaction), which runs each statement on whichever server connection is free:
 * one that never saw the name.
 */
export function statement(name: string, prepared: boolean, text: string, values: unknown[]): pg.QueryConfig {
  return prepared ? { name, text, values } : { text, values };
}

/** Whether `statement` may name statements: not through a transaction pooler. */
export const namedStatements = (db: { pooler: "none" | "transaction" }) => db.pooler === "none";

/** A serialization failure or a deadlock: PostgreSQL aborted the transaction, and running it again can succeed. */
export function isConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "40001" || code === "40P01";
}

export interface TransactionOptions {
  /**
   * Runs `fn` once more, in a fresh transaction, when PostgreSQL aborts the first run with a
   * serialization failure or a deadlock. Only for callbacks whose every effect is inside the
   * transaction: one that sent a request, bumped a metric or changed outside state would do it twice.
   */
  retryOnConflict?: boolean;
  /** Told about the conflict before the retry. */
  log?: { warn(obj: object, msg: string): void };
}

/** Runs `fn` in one transaction; rolls back on any error. */
export async function transaction<T>(pool: pg.Pool, fn: (tx: pg.PoolClient) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  try {
    return await runTransaction(pool, fn);
  } catch (error) {
    if (!options.retryOnConflict || !isConflict(error)) throw error;
    options.log?.warn({ err: error }, "transaction aborted by a conflict; retrying it once");
    return runTransaction(pool, fn);
  }
}

async function runTransaction<T>(pool: pg.Pool, fn: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  // A connection dropped during the transaction rejects its query; createPool keeps the client's
  // 'error' event from killing the process.
  const client = await pool.connect();
  let failed = false;
  try {
    await client.query("begin");
    const result = await fn(client);
    await client.query("commit");
    return result;
  } catch (error) {
    failed = true;
    await client.query("rollback").catch(() => undefined);
    throw error;
  } finally {
    // A client whose transaction failed may be broken: discard it rather than pool it.
    client.release(failed);
  }
}
