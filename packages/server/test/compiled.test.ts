import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMerchant } from "../src/merchants/service.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startServerProcess, type ServerProcess } from "./support/process.js";

/** The build that `npm start` and the published package run: plain node over dist/, no TypeScript at run time. */

let db: TestDatabase;
let server: ServerProcess | undefined;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  server?.child.kill("SIGKILL");
  await db.drop();
});

describe("the compiled server", () => {
  it("starts from dist/ with plain node and serves a payment", async () => {
    expect(existsSync(new URL("../dist/cli.js", import.meta.url)), "packages/server/dist is missing: run npm run build (npm test does)").toBe(true);
    const { secret } = await createMerchant(db.pool, { name: "Built", email: "built@acme.test", accounts: [randomAccount()] }, new Date());
    server = startServerProcess({ DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: "info", LUMENPAY_ROLES: "api" });
    const ready = await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number");
    const url = ready.url as string;
    const headers = { authorization: `Bearer ${secret}`, "content-type": "application/json" };

    const created = await fetch(`${url}/v1/payments`, { method: "POST", headers, body: JSON.stringify({ amount: "12.5", asset: "XLM" }) });
    expect(created.status).toBe(201);
    const payment = (await created.json()) as { id: string; amount: string; status: string };
    expect(payment).toMatchObject({ amount: "12.5", status: "pending" });
    const read = await fetch(`${url}/v1/payments/${payment.id}`, { headers });
    expect(await read.json()).toMatchObject({ id: payment.id, amount: "12.5" });

    server.child.kill("SIGTERM");
    expect(await server.exited, server.problems()).toEqual({ code: 0, signal: null });
    // Nothing in the process ran through a TypeScript loader.
    expect(server.problems()).toBe("");
  });
});
