import path from "node:path";
import pg from "pg";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../packages/server/src/config.js";
import { createPool } from "../../packages/server/src/db/pool.js";
import { migrate } from "../../packages/server/src/db/migrate.js";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../packages/server/src/db/embedded.js";

export interface BenchDatabase {
  url: string;
  pool: pg.Pool;
  close(): Promise<void>;
}

/**
 * The embedded server, when neither BENCH_DATABASE_URL nor TEST_DATABASE_URL is set: one per process,
 * shared by the databases open at once (bench/ingest holds two), and stopped with the last of them.
 */
let embedded: { server: Promise<EmbeddedPostgres>; users: number } | undefined;

async function useEmbedded(): Promise<{ url: string; release(): Promise<void> }> {
  const root = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
  embedded ??= {
    server: startEmbeddedPostgres({ dataDir: path.join(root, ".lumenpay", "bench-postgres"), log: { info: () => undefined, warn: (m) => console.warn(m) } }),
    users: 0,
  };
  const shared = embedded;
  shared.users++;
  const { url, stop } = await shared.server;
  return {
    url,
    async release() {
      if (--shared.users > 0) return;
      embedded = undefined;
      await stop();
    },
  };
}

let created = 0;

/** A fresh, migrated database for one benchmark, dropped afterwards. */
export async function createBenchDatabase(poolMax = 20): Promise<BenchDatabase> {
  const configured = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  const server = configured ? { url: configured, release: async () => undefined } : await useEmbedded();
  const adminUrl = server.url;
  const name = `lumenpay_bench_${process.pid}_${Date.now()}_${++created}`;
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
      await server.release();
    },
  };
}
