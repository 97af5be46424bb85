import type { Config } from "../config.js";
import { findRunningEmbeddedPostgres, startEmbeddedPostgres } from "../db/embedded.js";
import { migrate } from "../db/migrate.js";
import { createPool, type Pool } from "../db/pool.js";

/** The CLI's own messages go to stderr, so `--json` output on stdout stays parseable. */
const log = { info: (msg: string) => console.error(msg), warn: (msg: string) => console.error(msg) };

/**
 * Runs `fn` with a small pool on the database a server with the same configuration uses:
 * DATABASE_URL, else the embedded PostgreSQL already running in `config.dataDir`, else that
 * embedded PostgreSQL started for the duration of the command. The schema is migrated first, so
 * commands work on a fresh data directory before the server has ever run.
 */
export async function withDatabase<T>(config: Config, fn: (pool: Pool, migrationsApplied: string[]) => Promise<T>): Promise<T> {
  let url = config.databaseUrl;
  let stop: (() => Promise<void>) | undefined;
  if (!url) {
    url = await findRunningEmbeddedPostgres(config.dataDir);
    if (!url) {
      log.info(`Starting the embedded PostgreSQL in ${config.dataDir} for this command…`);
      ({ url, stop } = await startEmbeddedPostgres({ dataDir: config.dataDir, log }));
    }
  }
  const pool = createPool(url, { ...config.db, poolMin: 0, poolMax: 2 });
  try {
    return await fn(pool, await migrate(pool));
  } finally {
    await pool.end();
    await stop?.();
  }
}
