import net from "node:net";
import type { FastifyInstance } from "fastify";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createPool, transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createMetrics } from "../src/metrics/registry.js";
import { expireDuePayments } from "../src/payments/expiry.js";
import { createWebhookMetrics } from "../src/webhooks/metrics.js";
import { startWebhookRuntime } from "../src/webhooks/runtime.js";
import { createDeliveryWakeup, DELIVERIES_CHANNEL, type DeliveryWakeup } from "../src/webhooks/wakeup.js";
import { randomAccount } from "./support/app.js";
import { DashboardSession, dashboardUser } from "./support/dashboard.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { waitFor } from "./support/wait.js";
import { startReceiver } from "./support/receiver.js";

/** Waking the delivery workers after commits (webhooks/wakeup.ts), and the paths that must do it. */

let db: TestDatabase;
let listener: Listener;
const cleanups: Array<() => Promise<unknown>> = [];
beforeAll(async () => {
  db = await createTestDatabase();
  listener = await listen(db.url);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await listener?.close();
  await db?.drop();
});

const silent = createLogger("silent");
const config = loadConfig({ LOG_LEVEL: "silent", WEBHOOK_ALLOW_HTTP: "true", WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8" });

type Listener = Awaited<ReturnType<typeof listen>>;

/**
 * A connection LISTENing on the deliveries channel. `drain()` sends a marker NOTIFY from another
 * connection and waits for it: PostgreSQL delivers notifications in commit order, so every NOTIFY
 * committed before the call has arrived by then. Returns how many wake-ups came since the last drain.
 */
async function listen(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`listen ${pg.escapeIdentifier(DELIVERIES_CHANNEL)}`);
  let wakeups = 0;
  const markers = new Set<string>();
  client.on("notification", (n) => {
    if (n.payload === "") wakeups++;
    else markers.add(n.payload!);
  });
  let n = 0;
  return {
    async drain(): Promise<number> {
      const marker = `marker-${++n}`;
      await db.pool.query("select pg_notify($1, $2)", [DELIVERIES_CHANNEL, marker]);
      await waitFor(async () => markers.has(marker), "the marker notification", 5_000);
      const seen = wakeups;
      wakeups = 0;
      return seen;
    },
    close: () => client.end(),
  };
}

/** A wake-up that only counts its calls: the NOTIFYs a listener then sees are the statements' own. */
function countingWakeup(): DeliveryWakeup & { calls: number } {
  const spy = { calls: 0, wake: () => void spy.calls++, settled: async () => undefined };
  return spy;
}

/** Counts the messages a client sends PostgreSQL, by type, through a TCP proxy in front of it. */
async function messageCountingProxy(target: URL) {
  const counts = new Map<string, number>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    let pending = Buffer.alloc(0);
    let started = false;
    client.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        // The startup message has no type byte; every later one does.
        const header = started ? 5 : 4;
        if (pending.length < header) break;
        const length = pending.readInt32BE(started ? 1 : 0) + (started ? 1 : 0);
        if (pending.length < length) break;
        if (started) counts.set(String.fromCharCode(pending[0]!), (counts.get(String.fromCharCode(pending[0]!)) ?? 0) + 1);
        started = true;
        pending = pending.subarray(length);
      }
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = new URL(target);
  url.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url: url.toString(),
    counts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function merchant(endpoint?: { url: string; disabled?: boolean; events?: string[] }) {
  const created = await createMerchant(db.pool, { name: "Shop", email: "shop@example.test", accounts: [randomAccount()] }, new Date());
  if (endpoint) {
    await db.pool.query(
      `insert into webhook_endpoints (id, merchant_id, url, enabled_events, disabled, secret, created_at, updated_at)
       values ('we_' || substr(md5(random()::text), 1, 22), $1, $2, $3, $4, 'whsec_dGVzdA==', now(), now())`,
      [created.merchant.id, endpoint.url, endpoint.events ?? ["*"], endpoint.disabled ?? false],
    );
  }
  return { ...created, auth: { authorization: `Bearer ${created.secret}` } };
}

describe("createDeliveryWakeup", () => {
  it("wakes the local workers on every call, and coalesces a burst into two NOTIFYs after the one in flight", async () => {
    let local = 0;
    const wakeup = createDeliveryWakeup({ pool: db.pool, log: silent, local: () => local++ });
    expect(await listener.drain()).toBe(0);

    for (let i = 0; i < 50; i++) wakeup.wake();
    // Synchronously, before any round trip.
    expect(local).toBe(50);
    await wakeup.settled();
    // The first one, and one more for the 49 calls made while it was in flight.
    expect(await listener.drain()).toBe(2);

    wakeup.wake();
    await wakeup.settled();
    expect(await listener.drain()).toBe(1);
    expect(local).toBe(51);
  });

  it("sends one Query message per NOTIFY and leaves the connection as it found it", async () => {
    const proxy = await messageCountingProxy(new URL(db.url));
    cleanups.push(proxy.close);
    const pool = createPool(proxy.url, { ...config.db, poolMin: 0, poolMax: 1 });
    cleanups.push(() => pool.end());
    await pool.query("select 1");
    proxy.counts.clear();

    const wakeup = createDeliveryWakeup({ pool, log: silent });
    wakeup.wake();
    await wakeup.settled();
    // A simple query: no Parse, Bind, Execute or Sync, so one round trip.
    expect(Object.fromEntries(proxy.counts)).toEqual({ Q: 1 });
    expect(await listener.drain()).toBe(1);
    // On the pool's one connection, the statement's transaction has ended, and `set local` with it.
    const { rows } = await pool.query<{ setting: string; fresh: boolean }>(
      "select current_setting('synchronous_commit') as setting, now() = statement_timestamp() as fresh",
    );
    expect(rows).toEqual([{ setting: "on", fresh: true }]);
  });

  it("logs a NOTIFY it cannot send, never throws, and tries again on the next call", async () => {
    const warnings: Array<{ obj: object; msg: string }> = [];
    const pool = createPool("postgres://postgres@127.0.0.1:1/nowhere", { ...config.db, poolMin: 0, poolMax: 1, connectionTimeoutMs: 2_000 });
    cleanups.push(() => pool.end());
    const wakeup = createDeliveryWakeup({ pool, log: { warn: (obj, msg) => void warnings.push({ obj, msg }) } });

    expect(() => {
      for (let i = 0; i < 5; i++) wakeup.wake();
    }).not.toThrow();
    await wakeup.settled();
    expect(warnings).toHaveLength(2);
    expect(warnings[0]!.msg).toMatch(/could not NOTIFY the delivery workers/);
    expect((warnings[0]!.obj as { err: Error }).err).toBeInstanceOf(Error);

    wakeup.wake();
    await wakeup.settled();
    expect(warnings).toHaveLength(3);
  });
});

describe("writes that queue deliveries", () => {
  let app: FastifyInstance;
  const wakeup = countingWakeup();
  beforeAll(async () => {
    app = await buildApp({ config, pool: db.pool, clock: { now: () => new Date() }, logger: silent, wakeup });
  });
  afterAll(() => app?.close());

  const called = async (action: () => Promise<unknown>) => {
    const before = wakeup.calls;
    await action();
    return wakeup.calls - before;
  };

  it("send no NOTIFY themselves; the API wakes the workers after the commit, only when a delivery is due", async () => {
    const hooked = await merchant({ url: "https://hooks.example.test/a" });
    const post = (m: { auth: Record<string, string> }, url: string, headers: Record<string, string> = {}, payload?: object) =>
      app.inject({ method: "POST", url, headers: { ...m.auth, ...headers }, payload: payload ?? {} });

    let payment: { id: string } | undefined;
    expect(
      await called(async () => {
        const res = await post(hooked, "/v1/payments", {}, { amount: "5", asset: "XLM" });
        expect(res.statusCode).toBe(201);
        payment = res.json();
      }),
    ).toBe(1);
    const queued = await db.pool.query("select status from webhook_deliveries d join events e on e.id = d.event_id where e.payment_id = $1", [payment!.id]);
    expect(queued.rows).toEqual([{ status: "pending" }]);
    // The statement that wrote the payment, its event and the delivery notified nobody.
    expect(await listener.drain()).toBe(0);

    // With an Idempotency-Key: after the commit, and not again on a replay.
    const keyed = () => post(hooked, "/v1/payments", { "idempotency-key": "k-1" }, { amount: "6", asset: "XLM" });
    expect(await called(keyed)).toBe(1);
    expect(await called(keyed)).toBe(0);
    expect(await called(() => post(hooked, `/v1/payments/${payment!.id}/cancel`))).toBe(1);
    expect(await listener.drain()).toBe(0);

    // No endpoint, or only a disabled one (its delivery is parked): nothing is due.
    const bare = await merchant();
    expect(await called(() => post(bare, "/v1/payments", {}, { amount: "5", asset: "XLM" }))).toBe(0);
    const parked = await merchant({ url: "https://hooks.example.test/b", disabled: true });
    expect(await called(() => post(parked, "/v1/payments", {}, { amount: "5", asset: "XLM" }))).toBe(0);
    const rows = await db.pool.query("select status from webhook_deliveries where merchant_id = $1", [parked.merchant.id]);
    expect(rows.rows).toEqual([{ status: "endpoint_disabled" }]);
  });

  it("recordEvent reports `queued`, and its transaction notifies nobody", async () => {
    const hooked = await merchant({ url: "https://hooks.example.test/c" });
    const bare = await merchant();
    const event = (merchantId: string) => transaction(db.pool, (tx) => recordEvent(tx, { merchantId, type: "payment.created", object: {}, now: new Date() }));
    expect(await event(hooked.merchant.id)).toMatchObject({ created: true, queued: true });
    expect(await event(bare.merchant.id)).toMatchObject({ created: true, queued: false });
    expect(await listener.drain()).toBe(0);
  });

  it("the test event, a retry and the dashboard's actions wake the workers", async () => {
    const hooked = await merchant({ url: "https://hooks.example.test/d" });
    const endpointId = (await db.pool.query<{ id: string }>("select id from webhook_endpoints where merchant_id = $1", [hooked.merchant.id])).rows[0]!.id;
    const api = (method: "GET" | "POST", url: string) => app.inject({ method, url, headers: hooked.auth, ...(method === "POST" ? { payload: {} } : {}) });

    let deliveryId = "";
    expect(
      await called(async () => {
        const res = await api("POST", `/v1/webhook_endpoints/${endpointId}/test`);
        expect(res.statusCode).toBe(202);
        deliveryId = res.json().delivery_id;
      }),
    ).toBe(1);
    expect(await called(async () => expect((await api("POST", `/v1/deliveries/${deliveryId}/retry`)).statusCode).toBe(202))).toBe(1);

    const user = await dashboardUser(db.pool, hooked.merchant.id, "owner");
    const session = await DashboardSession.signIn(app, user.email);
    expect(await called(async () => expect((await session.post(`/dashboard/webhooks/${endpointId}/test`)).statusCode).toBe(303))).toBe(1);
    let paymentId = "";
    expect(
      await called(async () => {
        const res = await session.submit("/dashboard/payments/new", "/dashboard/payments", { amount: "3", asset: "XLM", expires_in_minutes: "60" });
        expect(res.statusCode, res.body).toBe(303);
        paymentId = /\/dashboard\/payments\/(pay_\w+)/.exec(res.headers.location as string)![1]!;
      }),
    ).toBe(1);
    const created = await db.pool.query<{ id: string }>(
      "select d.id from webhook_deliveries d join events e on e.id = d.event_id where e.payment_id = $1",
      [paymentId],
    );
    expect(await called(async () => expect((await session.post(`/dashboard/payments/${paymentId}/deliveries/${created.rows[0]!.id}/retry`)).statusCode).toBe(303))).toBe(1);
    expect(await called(async () => expect((await session.post(`/dashboard/payments/${paymentId}/cancel`)).statusCode).toBe(303))).toBe(1);
    expect(await listener.drain()).toBe(0);
  });

  it("expiry wakes the workers after each batch that queued a delivery", async () => {
    const hooked = await merchant({ url: "https://hooks.example.test/e", events: ["payment.expired"] });
    const res = await app.inject({ method: "POST", url: "/v1/payments", headers: hooked.auth, payload: { amount: "5", asset: "XLM", expires_in: 60 } });
    expect(res.statusCode).toBe(201);
    const later = new Date(Date.now() + 120_000);
    const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase };
    let wakes = 0;
    expect(await expireDuePayments(db.pool, later, links, { wake: () => wakes++ })).toBeGreaterThanOrEqual(1);
    expect(wakes).toBe(1);
    expect(await expireDuePayments(db.pool, later, links, { wake: () => wakes++ })).toBe(0);
    expect(wakes).toBe(1);
  });
});

describe("the delivery worker", () => {
  it("wakes the workers once disabling an endpoint queued endpoint.disabled for another endpoint", async () => {
    const gone = await startReceiver(() => ({ status: 410 }));
    cleanups.push(gone.close);
    const other = await startReceiver();
    cleanups.push(other.close);
    const app = await buildApp({ config, pool: db.pool, clock: { now: () => new Date() }, logger: silent, wakeup: countingWakeup() });
    cleanups.push(() => app.close());
    const m = await merchant();
    const add = (url: string, events: string[]) =>
      app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: m.auth, payload: { url, enabled_events: events } });
    expect((await add(gone.url, ["payment.created"])).statusCode).toBe(201);
    expect((await add(other.url, ["endpoint.disabled"])).statusCode).toBe(201);
    expect((await app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "1", asset: "XLM" } })).statusCode).toBe(201);

    const wakeup = countingWakeup();
    const controller = new AbortController();
    const runtime = startWebhookRuntime({
      config,
      pool: db.pool,
      connectionString: undefined,
      clock: { now: () => new Date() },
      log: silent,
      metrics: createWebhookMetrics(createMetrics(db.pool).registry, db.pool),
      signal: controller.signal,
      run: { worker: true, maintenance: false },
      wakeup,
    });
    cleanups.push(async () => {
      controller.abort();
      await runtime.done;
    });
    await waitFor(async () => wakeup.calls > 0, "a wake-up");
    const { rows } = await db.pool.query<{ type: string }>(
      "select e.type from webhook_deliveries d join events e on e.id = d.event_id where d.merchant_id = $1 order by e.type",
      [m.merchant.id],
    );
    // The 410 disabled the first endpoint, and queued the event for the other one.
    expect(rows).toEqual([{ type: "endpoint.disabled" }, { type: "payment.created" }]);
    expect(wakeup.calls).toBe(1);
  });
});
