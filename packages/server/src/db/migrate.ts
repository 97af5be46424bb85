import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Pool } from "./pool.js";
import { transaction } from "./pool.js";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

// Any constant shared by every Lumenpay instance: concurrent starts queue on it.
const MIGRATION_LOCK_ID = 7_264_519_002;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 3)),
      name: path.basename(file, ".sql"),
      sql: await readFile(path.join(dir, file), "utf8"),
    })),
  );
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so several instances
 * starting at once apply each migration exactly once. Returns the names applied now.
 */
export async function migrate(pool: Pool, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await readMigrations(dir);
  return transaction(pool, async (tx) => {
    await tx.query("select pg_advisory_xact_lock($1)", [MIGRATION_LOCK_ID]);
    await tx.query(`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now())`);
    const { rows } = await tx.query<{ version: number }>("select version from schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx.query(m.sql);
      await tx.query("insert into schema_migrations (version, name) values ($1, $2)", [m.version, m.name]);
      applied.push(m.name);
    }
    return applied;
  });
}

/** True when every migration version given (those shipped with this build) has been applied (used by /ready). */
export async function migrationsApplied(pool: Pool, versions: number[]): Promise<boolean> {
  const { rows } = await pool.query<{ n: string }>(
    "select count(*)::int8 as n from schema_migrations where version = any($1::int[])",
    [versions],
  );
  return Number(rows[0]?.n) === versions.length;
}
