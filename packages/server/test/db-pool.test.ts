import Fastify from "fastify";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createPool } from "../src/db/pool.js";
import { registerErrorHandler } from "../src/http/errors.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
});
afterAll(() => db?.drop());

/** Ends the server session of `client` (as a restart does) and waits until the client has seen it. */
async function endSession(client: pg.PoolClient): Promise<void> {
  const ended = new Promise((resolve) => client.once("end", resolve));
  await db.pool.query("select pg_terminate_backend($1)", [(client as unknown as { processID: number }).processID]);
  await ended;
}

describe("createPool", () => {
  // A database restart ends every session; a client that is lent out (or being ended by pg-pool) with no
  // query running reports that as an 'error' event, which would kill the process were nobody listening.
  it("survives the server ending the session of a lent client that runs no query", async () => {
    const pool = createPool(db.url, { ...loadConfig({}).db, poolMin: 0, poolMax: 2 });
    try {
      const client = await pool.connect();
      await endSession(client);
      client.release(true);
      expect((await pool.query<{ one: number }>("select 1 as one")).rows[0]!.one).toBe(1);
    } finally {
      await pool.end();
    }
  });

  // Found by the chaos run: a request whose client lost its session between two queries answered 500.
  it("answers 503 database_unavailable to a request whose client lost its session between two queries", async () => {
    const pool = createPool(db.url, { ...loadConfig({}).db, poolMin: 0, poolMax: 2 });
    const app = Fastify();
    registerErrorHandler(app);
    app.get("/", async () => {
      const client = await pool.connect();
      try {
        await client.query("select 1");
        await endSession(client);
        return (await client.query("select 2")).rows;
      } finally {
        client.release(true);
      }
    });
    try {
      const res = await app.inject({ method: "GET", url: "/" });
      expect(res.statusCode).toBe(503);
      expect(res.headers["retry-after"]).toBe("1");
      expect(res.json().error.code).toBe("database_unavailable");
    } finally {
      await app.close();
      await pool.end();
    }
  });
});
