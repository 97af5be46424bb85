import pg from "pg";
import { inject } from "vitest";
import { randomToken } from "../../src/ids.js";
import { createPool } from "../../src/db/pool.js";
import { loadConfig } from "../../src/config.js";
import { waitFor } from "./wait.js";

export interface TestDatabase {
  /** Connection URL of this test file's own database. */
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: inject("testDatabaseUrl") });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/**
 * A fresh, migrated database of its own (cloned from the template), so test files run in
 * parallel without seeing each other's rows. `migrated: false` gives an empty database; `copyOf`, a copy
 * of another test database as it stands (its connections are closed for the copy).
 */
export async function createTestDatabase({ migrated = true, copyOf }: { migrated?: boolean; copyOf?: TestDatabase } = {}): Promise<TestDatabase> {
  const name = `lumenpay_test_${randomToken(10).toLowerCase()}`;
  if (copyOf) {
    // A template must have no sessions: the source's pool reconnects when next used.
    const source = new URL(copyOf.url).pathname.slice(1);
    // Terminated sessions take a moment to end: PostgreSQL refuses the copy while any remains.
    for (let attempt = 1; ; attempt++) {
      await adminQuery(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${source}'`);
      try {
        await adminQuery(`create database ${name} template ${source}`);
        break;
      } catch (error) {
        if ((error as { code?: string }).code !== "55006" || attempt === 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } else {
    await adminQuery(migrated ? `create database ${name} template ${inject("testTemplateDatabase")}` : `create database ${name}`);
  }
  const url = withDatabase(inject("testDatabaseUrl"), name);
  const pool = createPool(url, { ...loadConfig({}).db, poolMin: 0, poolMax: 10 });
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}

/** Returns once `count` connections of this database LISTEN on `channel`, idle: a notification sent now reaches them. */
export async function listenersUp(db: TestDatabase, channel: string, count: number): Promise<void> {
  await waitFor(async () => {
    const { rows } = await db.pool.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and application_name = 'lumenpay-listener' and query = $1 and state = 'idle'`,
      [`listen "${channel}"`],
    );
    return rows[0]!.n === count;
  }, `${count} listeners on ${channel}`);
}
