import { copyFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { migrate, MIGRATIONS_DIR, migrationsApplied, readMigrations } from "../src/db/migrate.js";
import { createPool, type Pool } from "../src/db/pool.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

let db: TestDatabase;
let pools: Pool[];
beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
  // Five separate pools stand in for five instances starting at once.
  pools = Array.from({ length: 5 }, () => createPool(db.url, { ...loadConfig({}).db, poolMin: 0, poolMax: 2 }));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await db.drop();
});

describe("migrate", () => {
  it("applies each migration exactly once when five instances migrate an empty database together", async () => {
    const shipped = await readMigrations();
    expect(shipped.length).toBeGreaterThan(0);
    const versions = shipped.map((m) => m.version);
    expect(await migrationsApplied(db.pool, versions).catch(() => false)).toBe(false);

    const results = await Promise.allSettled(pools.map((pool) => migrate(pool)));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    const applied = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    // Whichever instance got the lock first did all the work; the others found nothing to do.
    expect(applied.sort()).toEqual(shipped.map((m) => m.name).sort());
    expect(results.filter((r) => r.status === "fulfilled" && r.value.length > 0)).toHaveLength(1);

    const { rows } = await db.pool.query<{ version: number; name: string }>("select version, name from schema_migrations order by version");
    expect(rows).toEqual(shipped.map((m) => ({ version: m.version, name: m.name })));
    expect(await migrationsApplied(db.pool, versions)).toBe(true);
    const { rows: tables } = await db.pool.query<{ name: string }>(
      "select table_name as name from information_schema.tables where table_schema = 'public' and table_name in ('merchants', 'api_keys')",
    );
    expect(tables.map((t) => t.name).sort()).toEqual(["api_keys", "merchants"]);
  });

  it("does nothing when run again", async () => {
    const before = await db.pool.query("select version, applied_at from schema_migrations order by version");
    const again = await Promise.all(pools.map((pool) => migrate(pool)));
    expect(again).toEqual(pools.map(() => []));
    const after = await db.pool.query("select version, applied_at from schema_migrations order by version");
    expect(after.rows).toEqual(before.rows);
  });
});

describe("005_payment_states", () => {
  it("moves merchant accounts to merchant_accounts in order, giving an account several merchants listed to the oldest", async () => {
    const old = await createTestDatabase({ migrated: false });
    const before = await mkdtemp(path.join(os.tmpdir(), "lumenpay-migrations-"));
    try {
      for (const m of (await readMigrations()).filter((m) => m.version < 5)) await copyFile(path.join(MIGRATIONS_DIR, `${m.name}.sql`), path.join(before, `${m.name}.sql`));
      await migrate(old.pool, before);
      await old.pool.query(
        `insert into merchants (id, name, email, accounts, created_at) values
           ('mer_a', 'A', 'a@x.test', array['GA1', 'GSHARED'], '2026-01-01'),
           ('mer_b', 'B', 'b@x.test', array['GSHARED', 'GB1', 'GB2'], '2026-02-01')`,
      );
      await old.pool.query(
        `insert into payments (id, merchant_id, amount_stroops, asset_code, destination, memo_type, memo, expires_at)
         values ('pay_1', 'mer_a', 1, 'XLM', 'GA1', 'id', '1', now())`,
      );
      expect(await migrate(old.pool)).toContain("005_payment_states");
      const { rows } = await old.pool.query("select merchant_id, account from merchant_accounts order by merchant_id, position");
      expect(rows).toEqual([
        { merchant_id: "mer_a", account: "GA1" },
        { merchant_id: "mer_a", account: "GSHARED" },
        { merchant_id: "mer_b", account: "GB1" },
        { merchant_id: "mer_b", account: "GB2" },
      ]);
      const { rows: payments } = await old.pool.query("select monitor_for_s from payments");
      expect(payments).toEqual([{ monitor_for_s: 86_400 }]);
    } finally {
      await rm(before, { recursive: true, force: true });
      await old.drop();
    }
  });
});
