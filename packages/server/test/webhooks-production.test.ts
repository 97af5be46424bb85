import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig, type Config } from "../src/config.js";
import { transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createMetrics } from "../src/metrics/registry.js";
import { createWebhookMetrics } from "../src/webhooks/metrics.js";
import { startWebhookRuntime } from "../src/webhooks/runtime.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { waitFor } from "./support/wait.js";
import { startReceiver } from "./support/receiver.js";

/** What production traffic hits: endpoints removed mid-flight, deliveries that cannot be signed. */

let db: TestDatabase;
const stops: Array<() => Promise<unknown>> = [];
beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});
afterAll(() => db.drop());

const KEY_A = Buffer.alloc(32, 1).toString("base64");
const KEY_B = Buffer.alloc(32, 2).toString("base64");

function config(env: Record<string, string> = {}): Config {
  return loadConfig({
    LOG_LEVEL: "silent",
    WEBHOOK_ALLOW_HTTP: "true",
    WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
    // Fast enough that a retry to a removed endpoint would certainly have happened within the test.
    WEBHOOK_RETRY_SCHEDULE: "50ms,50ms,50ms,50ms,50ms,50ms",
    LUMENPAY_ENCRYPTION_KEY: KEY_A,
    ...env,
  });
}

function startRuntime(c: Config, metrics = createMetrics(db.pool)) {
  const controller = new AbortController();
  const runtime = startWebhookRuntime({
    config: c,
    pool: db.pool,
    connectionString: db.url,
    clock: { now: () => new Date() },
    log: createLogger("silent"),
    metrics: createWebhookMetrics(metrics.registry, db.pool),
    signal: controller.signal,
    pollIntervalMs: 50,
    maintenanceIntervalMs: 100,
  });
  stops.push(async () => {
    controller.abort();
    await runtime.done;
  });
  return runtime;
}

/** A merchant with a slow failing endpoint (the one removed) and a healthy one (the witness that the worker moved on). */
async function setup(c: Config) {
  const app = await buildApp({ config: c, pool: db.pool, clock: { now: () => new Date() }, logger: createLogger("silent") });
  stops.push(() => app.close());
  let inFlight = 0;
  const failing = await startReceiver(() => {
    inFlight++;
    return "hang";
  });
  stops.push(failing.close);
  const healthy = await startReceiver();
  stops.push(healthy.close);
  const { merchant, secret } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date());
  const auth = { authorization: `Bearer ${secret}` };
  const create = async (url: string) => (await app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: auth, payload: { url, enabled_events: ["*"] } })).json().id as string;
  return { app, auth, merchantId: merchant.id, failing, healthy, failingId: await create(failing.url), healthyId: await create(healthy.url), inFlight: () => inFlight };
}

const emit = (merchantId: string, n: number) =>
  transaction(db.pool, (tx) => recordEvent(tx, { merchantId, type: "payment.created", object: { id: `pay_${n}` }, now: new Date() }));

const pendingOf = async (endpointId: string) =>
  (await db.pool.query<{ n: number }>("select count(*)::int as n from webhook_deliveries where endpoint_id = $1 and status = 'pending'", [endpointId])).rows[0]!.n;

describe("a removed endpoint", () => {
  it.each(["deleted", "disabled"] as const)("receives nothing once %s, while events keep coming and retries would be due", async (how) => {
    // The failing receiver hangs past the attempt timeout: attempts are in flight when the endpoint goes.
    const c = config({ WEBHOOK_TIMEOUT_MS: "300", WEBHOOK_LEASE_MS: "5000" });
    const s = await setup(c);
    startRuntime(c);
    let n = 0;
    for (; n < 5; n++) await emit(s.merchantId, n);
    await waitFor(async () => s.inFlight() >= 3, "attempts in flight");
    const change =
      how === "deleted"
        ? await s.app.inject({ method: "DELETE", url: `/v1/webhook_endpoints/${s.failingId}`, headers: s.auth })
        : await s.app.inject({ method: "PATCH", url: `/v1/webhook_endpoints/${s.failingId}`, headers: s.auth, payload: { disabled: true } });
    expect(change.statusCode).toBeLessThan(300);
    // The attempts already sent end (they time out); nothing new may start after that.
    await waitFor(async () => (await db.pool.query("select 1 from webhook_deliveries where endpoint_id = $1 and locked_by is not null", [s.failingId])).rowCount === 0, "in-flight attempts to end");
    const seen = s.failing.received.length;

    // Events keep arriving; the healthy endpoint receiving all of them shows the worker passed every due row.
    for (; n < 15; n++) await emit(s.merchantId, n);
    await waitFor(async () => s.healthy.received.length >= 15, "the healthy endpoint to receive every event", 20_000);
    await waitFor(async () => (await pendingOf(s.healthyId)) === 0, "the healthy endpoint's queue to drain");
    expect(s.failing.received.length).toBe(seen);
    if (how === "deleted") {
      // Nothing of a deleted endpoint stays queued: rows queued while it was being deleted are failed too.
      await waitFor(async () => (await pendingOf(s.failingId)) === 0, "the deleted endpoint's rows to be dropped");
    } else {
      // A disabled endpoint's deliveries are kept, parked, and go out once it is enabled and recovered.
      const parked = await db.pool.query("select 1 from webhook_deliveries where endpoint_id = $1 and status = 'endpoint_disabled'", [s.failingId]);
      expect(parked.rowCount).toBeGreaterThanOrEqual(10);
      expect((await s.app.inject({ method: "PATCH", url: `/v1/webhook_endpoints/${s.failingId}`, headers: s.auth, payload: { disabled: false } })).statusCode).toBe(200);
      const since = new Date(Date.now() - 60_000).toISOString();
      expect((await s.app.inject({ method: "POST", url: `/v1/webhook_endpoints/${s.failingId}/recover`, headers: s.auth, payload: { since } })).statusCode).toBe(202);
      await waitFor(async () => s.failing.received.length > seen, "deliveries after enabling and recovering");
    }
  });
});

describe("a manual retry of a delivery in flight", () => {
  it("is not undone by the outcome of the attempt already in flight", async () => {
    // A failure would schedule the next attempt an hour away: only the retry can bring it sooner.
    const c = config({ WEBHOOK_TIMEOUT_MS: "1000", WEBHOOK_LEASE_MS: "30000", WEBHOOK_RETRY_SCHEDULE: "1h" });
    const s = await setup(c);
    await s.app.inject({ method: "DELETE", url: `/v1/webhook_endpoints/${s.healthyId}`, headers: s.auth });
    const receiver = await startReceiver((_req, index) => (index === 0 ? "hang" : { status: 200 }));
    stops.push(receiver.close);
    await s.app.inject({ method: "DELETE", url: `/v1/webhook_endpoints/${s.failingId}`, headers: s.auth });
    const created = await s.app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: s.auth, payload: { url: receiver.url, enabled_events: ["*"] } });
    const metrics = createMetrics(db.pool);
    startRuntime(c, metrics);
    const event = await emit(s.merchantId, 1);
    const delivery = async () =>
      (await db.pool.query<{ id: string; status: string }>("select id, status from webhook_deliveries where event_id = $1 and endpoint_id = $2", [event.id, created.json().id])).rows[0]!;
    await receiver.waitFor(1);

    const retried = await s.app.inject({ method: "POST", url: `/v1/deliveries/${(await delivery()).id}/retry`, headers: s.auth });
    expect(retried.statusCode).toBe(202);
    await receiver.waitFor(2);
    await waitFor(async () => (await delivery()).status === "succeeded", "the retried attempt to be recorded");
    // The first attempt times out after that; its failure finds its lease gone and changes nothing but the log.
    const leaseLost = async () => Number(/^webhook_deliveries_total\{outcome="lease_lost"\} (\d+)$/m.exec(await metrics.registry.metrics())?.[1] ?? 0);
    await waitFor(async () => (await leaseLost()) === 1, "the first attempt to end");
    expect(await delivery()).toMatchObject({ status: "succeeded" });
    const attempts = await db.pool.query("select status_code, error_class from webhook_attempts where delivery_id = $1 order by id", [(await delivery()).id]);
    expect(attempts.rows).toEqual([
      { status_code: 200, error_class: null },
      { status_code: null, error_class: "timeout" },
    ]);
  });
});

describe("a delivery that cannot be prepared", () => {
  it("is logged as an attempt, follows the schedule to failed, shows in metrics, and never blocks other endpoints", async () => {
    // The endpoints' secrets are sealed with KEY_A; the worker only has KEY_B (the key was changed).
    const s = await setup(config());
    const metrics = createMetrics(db.pool);
    const c = config({ LUMENPAY_ENCRYPTION_KEY: KEY_B });
    // One endpoint whose secret the new key opens: it must keep receiving.
    await s.app.inject({ method: "DELETE", url: `/v1/webhook_endpoints/${s.healthyId}`, headers: s.auth });
    const current = await buildApp({ config: c, pool: db.pool, clock: { now: () => new Date() }, logger: createLogger("silent") });
    stops.push(() => current.close());
    const created = await current.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: s.auth, payload: { url: s.healthy.url, enabled_events: ["*"] } });
    expect(created.statusCode).toBe(201);
    const controller = new AbortController();
    const runtime = startWebhookRuntime({
      config: c,
      pool: db.pool,
      connectionString: db.url,
      clock: { now: () => new Date() },
      log: createLogger("silent"),
      metrics: createWebhookMetrics(metrics.registry, db.pool),
      signal: controller.signal,
      pollIntervalMs: 50,
      maintenanceIntervalMs: 100,
    });
    stops.push(async () => {
      controller.abort();
      await runtime.done;
    });
    const event = await emit(s.merchantId, 1);
    const delivery = async () =>
      (await db.pool.query<{ status: string; attempts: number }>("select status, attempts from webhook_deliveries where event_id = $1 and endpoint_id = $2", [event.id, s.failingId])).rows[0]!;
    await waitFor(async () => (await delivery()).status === "failed", "the schedule to run out", 20_000);
    expect(await delivery()).toMatchObject({ status: "failed", attempts: 7 });
    const { rows } = await db.pool.query<{ error_class: string; status_code: number | null; response_body: string | null }>(
      "select a.error_class, a.status_code, a.response_body from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id where d.event_id = $1 and d.endpoint_id = $2",
      [event.id, s.failingId],
    );
    expect(rows).toHaveLength(7);
    expect(rows.every((r) => r.error_class === "preparation_failed" && r.status_code === null && r.response_body === null)).toBe(true);
    expect(s.failing.received).toHaveLength(0);
    expect(s.healthy.received.map((r) => JSON.parse(r.body).id)).toContain(event.id);
    // Every earlier test's endpoints were sealed with KEY_A too: this delivery's 7 are among them.
    const errors = Number(/^webhook_delivery_errors_total\{reason="preparation_failed"\} (\d+)$/m.exec(await metrics.registry.metrics())?.[1]);
    expect(errors).toBeGreaterThanOrEqual(7);
    // The merchant sees why in the API, without any secret.
    const listed = await s.app.inject({ method: "GET", url: `/v1/webhook_endpoints/${s.failingId}/deliveries`, headers: s.auth });
    expect(listed.json().data[0]).toMatchObject({ status: "failed", last_error: expect.any(String) });
    expect(listed.body).not.toContain(KEY_A);
  });
});

describe("retention", () => {
  it("purges events, deliveries, attempts and recoveries past their retention in batches, while the API keeps answering", async () => {
    const c = config({ WEBHOOK_EVENT_RETENTION_DAYS: "30", WEBHOOK_LOG_RETENTION_DAYS: "30", API_RATE_LIMIT_PER_MINUTE: "1000000" });
    const s = await setup(c);
    const old = new Date(Date.now() - 40 * 86_400_000);
    // More than two batches of each, old, and a few recent ones that must stay.
    await db.pool.query(
      `insert into events (id, merchant_id, type, body, created_at)
       select id, $1, 'payment.created',
              json_build_object('id', id, 'type', 'payment.created', 'created_at', $2::timestamptz, 'api_version', '2026-11-01', 'data', json_build_object('object', json_build_object()))::text,
              $2
       from (select 'evt_old' || lpad(i::text, 18, '0') as id from generate_series(1, 12000) i) t`,
      [s.merchantId, old],
    );
    await db.pool.query(
      `insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, status, event_created_at, created_at)
       select 'del_old' || lpad(i::text, 18, '0'), 'evt_old' || lpad(i::text, 18, '0'), $2, $1, 'succeeded', $3, $3 from generate_series(1, 11000) i`,
      [s.merchantId, s.healthyId, old],
    );
    await db.pool.query(
      `insert into webhook_attempts (delivery_id, attempt, started_at, duration_ms)
       select 'del_old' || lpad(i::text, 18, '0'), 1, $1, 5 from generate_series(1, 11000) i`,
      [old],
    );
    await db.pool.query(
      `insert into webhook_recoveries (id, endpoint_id, since, until, status, created_at, finished_at)
       select 'rcv_old' || lpad(i::text, 18, '0'), $1, $2, $2, 'done', $2, $2 from generate_series(1, 30) i`,
      [s.healthyId, old],
    );
    const recent = await emit(s.merchantId, 0);

    const { purgeOldAttempts, purgeOldWebhookData } = await import("../src/webhooks/maintenance.js");
    const signal = new AbortController().signal;
    // The API answers while the purge runs.
    const answers: number[] = [];
    const purging = (async () => {
      const attempts = await purgeOldAttempts(db.pool, new Date(), 30, signal);
      return { attempts, ...(await purgeOldWebhookData(db.pool, new Date(), 30, signal)) };
    })();
    let finished = false;
    void purging.finally(() => (finished = true));
    while (!finished) answers.push((await s.app.inject({ method: "GET", url: "/v1/events?limit=5", headers: s.auth })).statusCode);
    expect(await purging).toEqual({ attempts: 11_000, deliveries: 11_000, events: 12_000, recoveries: 30 });
    expect(answers.length).toBeGreaterThan(0);
    expect([...new Set(answers)]).toEqual([200]);
    expect((await db.pool.query("select 1 from webhook_attempts where started_at < now() - interval '30 days'")).rowCount).toBe(0);
    expect((await db.pool.query("select id from events where id = $1", [recent.id])).rowCount).toBe(1);
    expect((await db.pool.query("select 1 from webhook_deliveries where id like 'del_old%'")).rowCount).toBe(0);
    expect((await db.pool.query("select 1 from webhook_recoveries where id like 'rcv_old%'")).rowCount).toBe(0);
  });
});
