import path from "node:path";
import pg from "pg";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../packages/server/src/config.js";
import { createPool } from "../../packages/server/src/db/pool.js";
import { migrate } from "../../packages/server/src/db/migrate.js";
import { startEmbeddedPostgres } from "../../packages/server/src/db/embedded.js";

export interface BenchDatabase {
  url: string;
  pool: pg.Pool;
  close(): Promise<void>;
}

/** A fresh, migrated database for one benchmark, dropped afterwards. */
export async function createBenchDatabase(poolMax = 20): Promise<BenchDatabase> {
  let adminUrl = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!adminUrl) {
    const root = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
    const embedded = await startEmbeddedPostgres({
      dataDir: path.join(root, ".lumenpay", "bench-postgres"),
      log: { info: () => undefined, warn: (m) => console.warn(m) },
    });
    adminUrl = embedded.url;
    stopEmbedded = embedded.stop;
  }
  const name = `lumenpay_bench_${process.pid}_${Date.now()}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, { ...loadConfig({}).db, poolMax });
  await migrate(pool);
  return {
    url,
    pool,
    async close() {
      await pool.end();
      await admin(`drop database if exists ${name} with (force)`);
      await stopEmbedded?.();
    },
  };
}
