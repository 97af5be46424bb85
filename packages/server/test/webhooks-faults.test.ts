import http from "node:http";
import type { AddressInfo } from "node:net";
import { Keypair } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { newId } from "../src/ids.js";
import { createMerchant } from "../src/merchants/service.js";
import { insertEndpoint } from "../src/webhooks/endpoints-store.js";
import { claimDeliveries, completeDeliveries, type AttemptRecord, type ClaimedDelivery } from "../src/webhooks/queue.js";
import { generateSecret } from "../src/webhooks/secrets.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startServerProcess, type ServerProcess } from "./support/process.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A receiver that holds every request for `delayMs` before answering 200, so a batch stays in flight. */
async function startSlowReceiver(delayMs: number) {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      requests.push(String(req.headers["webhook-id"]));
      setTimeout(() => res.writeHead(200).end("ok"), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, requests, distinct: () => new Set(requests) };
}

async function seedEndpoint(url: string) {
  const { merchant } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [Keypair.random().publicKey()] }, new Date());
  const endpoint = await insertEndpoint(db.pool, {
    id: newId("we"),
    merchantId: merchant.id,
    url,
    description: null,
    enabledEvents: ["*"],
    disabled: false,
    secret: generateSecret(),
    now: new Date(),
  });
  return { merchantId: merchant.id, endpointId: endpoint.id };
}

/** Commits `count` events in one transaction, through the outbox. */
const emitMany = (merchantId: string, count: number) =>
  transaction(db.pool, async (tx) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      ids.push((await recordEvent(tx, { merchantId, type: "payment.created", object: { id: `pay_${i}`, amount: "1" }, now: new Date() })).id);
    }
    return ids;
  });

/** `lumenpay start` against this file's database; resolves once it listens. */
async function startLumenpay(env: Record<string, string>): Promise<ServerProcess> {
  const server = startServerProcess({ DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: "info", ...env });
  cleanups.push(() => {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill("SIGKILL");
  });
  await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number");
  return server;
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const statusCounts = async (endpointId: string) =>
  Object.fromEntries(
    (
      await db.pool.query<{ status: string; n: number }>(
        "select status, count(*)::int as n from webhook_deliveries where endpoint_id = $1 group by status",
        [endpointId],
      )
    ).rows.map((r) => [r.status, r.n]),
  );

describe("webhook delivery under faults", () => {
  it("delivers every event at least once when a worker is killed with -9 in the middle of a batch", { timeout: 90_000 }, async () => {
    const receiver = await startSlowReceiver(300);
    const { merchantId, endpointId } = await seedEndpoint(receiver.url);
    const eventIds = await emitMany(merchantId, 200);
    const env = {
      WEBHOOK_ALLOW_HTTP: "true",
      WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
      WEBHOOK_TIMEOUT_MS: "1000",
      // Short, so the dead worker's rows come back within the test (by default 2 × timeout + 30 s).
      WEBHOOK_LEASE_MS: "2000",
      // Batches of 50 in flight at once to the one endpoint.
      WEBHOOK_MAX_CONCURRENT_PER_ENDPOINT: "50",
    };

    const first = await startLumenpay(env);
    await until(() => receiver.distinct().size >= 60, "the first worker to be into its second batch");
    first.child.kill("SIGKILL");
    expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });

    // The kill stranded claimed rows: still pending, leased to a worker that no longer exists.
    const { rows: stranded } = await db.pool.query<{ id: string }>(
      "select id from webhook_deliveries where endpoint_id = $1 and status = 'pending' and locked_by is not null",
      [endpointId],
    );
    expect(stranded.length).toBeGreaterThan(0);
    expect(receiver.distinct().size).toBeLessThan(200);

    const second = await startLumenpay(env);
    await until(() => receiver.distinct().size === 200, "every event to arrive");
    expect(receiver.distinct()).toEqual(new Set(eventIds));
    await until(async () => (await statusCounts(endpointId)).succeeded === 200, "every delivery row to be recorded");
    expect(await statusCounts(endpointId)).toEqual({ succeeded: 200 });

    // The stranded rows were taken over once their lease expired, and each logged its 200.
    const { rows: takenOver } = await db.pool.query<{ attempts: number; logged_200: boolean; locked_by: string | null }>(
      `select d.attempts, d.locked_by, exists (select 1 from webhook_attempts a where a.delivery_id = d.id and a.status_code = 200) as logged_200
       from webhook_deliveries d where d.id = any ($1::text[])`,
      [stranded.map((r) => r.id)],
    );
    expect(takenOver).toHaveLength(stranded.length);
    for (const row of takenOver) {
      expect(row).toMatchObject({ locked_by: null, logged_200: true });
      // The dead worker's claim made no attempt it could record: it used up no step of the schedule.
      expect(row.attempts).toBe(1);
    }

    second.child.kill("SIGTERM");
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });

  it("ignores the completion of a worker whose lease expired and another worker re-claimed", async () => {
    const { merchantId, endpointId } = await seedEndpoint("http://127.0.0.1:9/hooks");
    await db.pool.query("update webhook_endpoints set failing_since = now() where id = $1", [endpointId]);
    const [eventId] = await emitMany(merchantId, 1);
    const claim = (workerId: string, now: Date) => claimDeliveries(db.pool, { workerId, now, leaseMs: 1000, limit: 10, maxPerEndpoint: 10, inFlight: new Map(), prepared: true });
    const attempt = (n: number, by: string): AttemptRecord => ({ attempt: n, startedAt: new Date(), durationMs: 5, statusCode: 200, errorClass: null, responseBody: by });

    const t0 = new Date();
    const [stale] = await claim("stale", t0);
    expect(await claim("fresh", t0)).toEqual([]);
    // After the lease, another worker takes the row over.
    const [fresh] = await claim("fresh", new Date(t0.getTime() + 1001));
    // The stale worker recorded nothing: this is still the first attempt.
    expect(fresh).toMatchObject({ id: stale!.id, eventId, attempt: 1 });

    const complete = (claimed: ClaimedDelivery, by: string) =>
      transaction(db.pool, (tx) => completeDeliveries(tx, [{ id: claimed.id, lease: claimed.lease, endpointId, now: new Date(), attempt: attempt(1, by) }], true));
    // Too late to change the row, but the receiver got that request: it is in the log.
    expect(await complete(stale!, "stale")).toEqual(new Set());
    expect((await db.pool.query("select attempts from webhook_deliveries where id = $1", [stale!.id])).rows[0].attempts).toBe(0);
    const before = await db.pool.query("select status, locked_by, failing_since from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id where d.id = $1", [stale!.id]);
    expect(before.rows[0]).toMatchObject({ status: "pending", locked_by: fresh!.lease, failing_since: expect.any(Date) });

    expect(await complete(fresh!, "fresh")).toEqual(new Set([fresh!.id]));
    const after = await db.pool.query("select status, locked_by, failing_since from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id where d.id = $1", [stale!.id]);
    expect(after.rows[0]).toEqual({ status: "succeeded", locked_by: null, failing_since: null });
    const logs = await db.pool.query("select attempt, response_body from webhook_attempts where delivery_id = $1 order by id", [stale!.id]);
    expect(logs.rows).toEqual([
      { attempt: 1, response_body: "stale" },
      { attempt: 1, response_body: "fresh" },
    ]);
  });
});

describe("a claim", () => {
  it("takes no more of an endpoint's rows than it has room for, and none of an endpoint at its cap", async () => {
    const a = await seedEndpoint("http://127.0.0.1:9/a");
    const b = await seedEndpoint("http://127.0.0.1:9/b");
    const c = await seedEndpoint("http://127.0.0.1:9/c");
    for (const { merchantId } of [a, b, c]) await emitMany(merchantId, 5);
    const claim = (workerId: string, inFlight: Map<string, number>) =>
      claimDeliveries(db.pool, { workerId, now: new Date(), leaseMs: 60_000, limit: 20, maxPerEndpoint: 3, inFlight, prepared: false });
    const perEndpoint = (claimed: ClaimedDelivery[]) =>
      Object.fromEntries([a, b, c].map(({ endpointId }) => [endpointId, claimed.filter((d) => d.endpointId === endpointId).length]));

    // a has 2 requests in flight (1 more allowed), c is at its cap (and one over: never a negative limit).
    const first = await claim("w1", new Map([[a.endpointId, 2], [c.endpointId, 4]]));
    expect(perEndpoint(first)).toEqual({ [a.endpointId]: 1, [b.endpointId]: 3, [c.endpointId]: 0 });
    // Only what was taken is leased: the rest is still there for the next claim.
    const { rows } = await db.pool.query<{ endpoint_id: string; leased: number }>(
      "select endpoint_id, count(*) filter (where locked_by is not null)::int as leased from webhook_deliveries where endpoint_id = any ($1) group by endpoint_id",
      [[a, b, c].map((e) => e.endpointId)],
    );
    expect(Object.fromEntries(rows.map((r) => [r.endpoint_id, r.leased]))).toEqual(perEndpoint(first));
    expect(perEndpoint(await claim("w2", new Map()))).toEqual({ [a.endpointId]: 3, [b.endpointId]: 2, [c.endpointId]: 3 });
  });

  it("relaxes synchronous_commit for its own transaction only, so its connection goes back to the pool unchanged", async () => {
    const { merchantId } = await seedEndpoint("http://127.0.0.1:9/relaxed");
    await emitMany(merchantId, 2);
    const client = await db.pool.connect();
    try {
      const setting = async () => (await client.query<{ synchronous_commit: string }>("show synchronous_commit")).rows[0]!.synchronous_commit;
      const before = await setting();
      expect(before).not.toBe("off");
      for (const prepared of [true, false]) {
        const claimed = await claimDeliveries(client, { workerId: `w-${prepared}`, now: new Date(), leaseMs: 60_000, limit: 1, maxPerEndpoint: 10, inFlight: new Map(), prepared });
        expect(claimed).toHaveLength(1);
        expect(await setting()).toBe(before);
      }
    } finally {
      client.release();
    }
  });
});
