import type { Db } from "./pool.js";

/** Rows one purge statement deletes at most: each batch finishes well within the statement timeout. */
export const PURGE_BATCH = 5_000;

/**
 * Runs `sql` — a DELETE of at most `$1` rows, the other parameters from `$2` — until a batch comes
 * back short or `signal` aborts; returns how many rows went. Batches select their rows `for update
 * skip locked`, so two purges never wait for each other, and the API keeps answering meanwhile.
 */
export async function purgeInBatches(db: Db, sql: string, params: unknown[], signal?: AbortSignal): Promise<number> {
  let total = 0;
  while (!signal?.aborted) {
    const { rowCount } = await db.query(sql, [PURGE_BATCH, ...params]);
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < PURGE_BATCH) break;
  }
  return total;
}
