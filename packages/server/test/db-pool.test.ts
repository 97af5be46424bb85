import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createPool } from "../src/db/pool.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
});
afterAll(() => db?.drop());

describe("createPool", () => {
  // A database restart ends every session; a client that is lent out (or being ended by pg-pool) with no
  // query running reports that as an 'error' event, which would kill the process were nobody listening.
  it("survives the server ending the session of a lent client that runs no query", async () => {
    const pool = createPool(db.url, { ...loadConfig({}).db, poolMin: 0, poolMax: 2 });
    try {
      const client = await pool.connect();
      const ended = new Promise((resolve) => client.once("end", resolve));
      await db.pool.query("select pg_terminate_backend($1)", [(client as unknown as { processID: number }).processID]);
      await ended;
      client.release(true);
      expect((await pool.query<{ one: number }>("select 1 as one")).rows[0]!.one).toBe(1);
    } finally {
      await pool.end();
    }
  });
});
