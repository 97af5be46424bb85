import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import Stripe from "stripe";
import { Keypair } from "@stellar/stellar-sdk";
import type { Logger } from "pino";
import { Webhook } from "@lumenpay/webhooks";
import { loadConfig, type Config } from "../src/config.js";
import { transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { newId } from "../src/ids.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createMetrics } from "../src/metrics/registry.js";
import { insertEndpoint } from "../src/webhooks/endpoints-store.js";
import { createWebhookSender, type LookupFn, type WebhookSender } from "../src/webhooks/sender.js";
import { createWebhookMetrics } from "../src/webhooks/metrics.js";
import { startWebhookRuntime } from "../src/webhooks/runtime.js";
import { createSecretBox, generateSecret } from "../src/webhooks/secrets.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startReceiver } from "./support/receiver.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

const signingSeed = Keypair.random().secret();

function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    LOG_LEVEL: "silent",
    WEBHOOK_ALLOW_HTTP: "true",
    WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
    WEBHOOK_RETRY_SCHEDULE: "50ms,50ms,50ms,50ms",
    WEBHOOK_SIGNING_SEED: signingSeed,
    ...env,
  });
}

/** Runs the real delivery runtime in-process until the test ends; returns its metrics registry. */
function startRuntime(config: Config, { sender, log }: { sender?: WebhookSender; log?: Logger } = {}) {
  const controller = new AbortController();
  const metrics = createMetrics(db.pool);
  const runtime = startWebhookRuntime({
    config,
    pool: db.pool,
    connectionString: db.url,
    clock: { now: () => new Date() },
    log: log ?? createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
    metrics: createWebhookMetrics(metrics.registry, db.pool),
    ...(sender ? { sender } : {}),
    signal: controller.signal,
    pollIntervalMs: 200,
    maintenanceIntervalMs: 200,
  });
  stops.push(async () => {
    controller.abort();
    await runtime.done;
  });
  return metrics.registry;
}

async function setup(config: Config, urls: string[], enabledEvents = ["*"]) {
  const { merchant } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [Keypair.random().publicKey()] }, new Date());
  const box = createSecretBox(config.webhooks.encryptionKey);
  const endpoints = [];
  for (const url of urls) {
    const secret = generateSecret();
    const row = await insertEndpoint(db.pool, {
      id: newId("we"),
      merchantId: merchant.id,
      url,
      description: null,
      enabledEvents,
      disabled: false,
      secret: box.seal(secret),
      now: new Date(),
    });
    endpoints.push({ id: row.id, secret });
  }
  return { merchant, endpoints };
}

const emit = (merchantId: string, object: unknown = { id: "pay_x", amount: "1" }) =>
  transaction(db.pool, (tx) => recordEvent(tx, { merchantId, type: "payment.created", object, now: new Date() }));

const attemptsOf = async (eventId: string) =>
  (
    await db.pool.query<{ attempt: number; status_code: number | null; response_body: string | null }>(
      `select a.attempt, a.status_code, a.response_body from webhook_attempts a
       join webhook_deliveries d on d.id = a.delivery_id where d.event_id = $1 order by a.attempt`,
      [eventId],
    )
  ).rows;

describe("webhook delivery", () => {
  it("delivers a signed event that the real standardwebhooks, svix and stripe verifiers accept", async () => {
    const config = testConfig();
    const receiver = await startReceiver();
    stops.push(receiver.close);
    const { merchant, endpoints } = await setup(config, [receiver.url]);
    startRuntime(config);
    const event = await emit(merchant.id);

    const [req] = await receiver.waitFor(1);
    expect(req!.body).toBe(event.body);
    expect(req!.headers["webhook-id"]).toBe(event.id);
    expect(req!.headers["user-agent"]).toMatch(/^Lumenpay-Webhooks\//);
    expect(req!.headers["content-type"]).toBe("application/json");
    const headers = Object.fromEntries(Object.entries(req!.headers).map(([k, v]) => [k, String(v)]));
    const secret = endpoints[0]!.secret;

    expect(new StandardWebhook(secret).verify(req!.body, headers)).toMatchObject({ id: event.id, type: "payment.created" });
    expect(new SvixWebhook(secret).verify(req!.body, headers)).toMatchObject({ id: event.id });
    const stripe = new Stripe("sk_test_unused");
    expect(stripe.webhooks.constructEvent(req!.body, headers["stellar-signature"]!, secret)).toMatchObject({ id: event.id });
    const viaKey = new Webhook({ publicKeys: [Keypair.fromSecret(signingSeed).publicKey()] });
    await expect(viaKey.verify(req!.body, headers)).resolves.toMatchObject({ id: event.id });
    expect(() => new StandardWebhook(generateSecret()).verify(req!.body, headers)).toThrow();

    await expect.poll(async () => (await attemptsOf(event.id)).length).toBe(1);
    const status = await db.pool.query("select status from webhook_deliveries where event_id = $1", [event.id]);
    expect(status.rows[0].status).toBe("succeeded");
  });

  it("retries after 500s and succeeds on the fourth attempt, logging all four, with the same body and id", async () => {
    const config = testConfig();
    const receiver = await startReceiver((_r, i) => (i < 3 ? { status: 500, body: `boom ${i}` } : { status: 204 }));
    stops.push(receiver.close);
    const { merchant } = await setup(config, [receiver.url]);
    startRuntime(config);
    const event = await emit(merchant.id);

    const got = await receiver.waitFor(4);
    expect(new Set(got.map((r) => r.body))).toEqual(new Set([event.body]));
    expect(new Set(got.map((r) => r.headers["webhook-id"]))).toEqual(new Set([event.id]));
    await expect.poll(async () => (await attemptsOf(event.id)).map((a) => a.status_code)).toEqual([500, 500, 500, 204]);
    expect((await attemptsOf(event.id))[0]!.response_body).toBe("boom 0");
    const { rows } = await db.pool.query("select status, attempts from webhook_deliveries where event_id = $1", [event.id]);
    expect(rows[0]).toEqual({ status: "succeeded", attempts: 4 });
  });

  it("records answers whose bodies hold NUL characters, which PostgreSQL text cannot store", async () => {
    const config = testConfig();
    const receiver = await startReceiver((_r, i) => (i === 0 ? { status: 500, body: "bad\u0000" } : { status: 200, body: "ok\u0000" }));
    stops.push(receiver.close);
    const { merchant } = await setup(config, [receiver.url]);
    startRuntime(config);
    const event = await emit(merchant.id);

    await expect.poll(async () => (await attemptsOf(event.id)).map((a) => [a.status_code, a.response_body])).toEqual([
      [500, "bad\uFFFD"],
      [200, "ok\uFFFD"],
    ]);
    const { rows } = await db.pool.query("select status, attempts from webhook_deliveries where event_id = $1", [event.id]);
    expect(rows[0]).toEqual({ status: "succeeded", attempts: 2 });
  });

  it("marks a delivery failed, never deleted, when the schedule is exhausted", async () => {
    const config = testConfig({ WEBHOOK_RETRY_SCHEDULE: "50ms,50ms" });
    const receiver = await startReceiver(() => ({ status: 502 }));
    stops.push(receiver.close);
    const { merchant } = await setup(config, [receiver.url]);
    startRuntime(config);
    const event = await emit(merchant.id);
    await receiver.waitFor(3);
    await expect.poll(async () => (await db.pool.query("select status from webhook_deliveries where event_id = $1", [event.id])).rows[0]?.status).toBe("failed");
    expect(await attemptsOf(event.id)).toHaveLength(3);
  });

  it("signs with both secrets during a rotation's grace period and only the new one after", async () => {
    const config = testConfig();
    const receiver = await startReceiver();
    stops.push(receiver.close);
    const { merchant, endpoints } = await setup(config, [receiver.url]);
    const oldSecret = endpoints[0]!.secret;
    const newSecret = generateSecret();
    await db.pool.query(
      "update webhook_endpoints set previous_secret = secret, secret = $2, previous_secret_expires_at = now() + interval '1 hour' where id = $1",
      [endpoints[0]!.id, newSecret],
    );
    startRuntime(config);
    await emit(merchant.id);
    const [during] = await receiver.waitFor(1);
    const signatures = String(during!.headers["webhook-signature"]).split(" ");
    expect(signatures.filter((s) => s.startsWith("v1,"))).toHaveLength(2);
    expect(String(during!.headers["stellar-signature"]).match(/v1=/g)).toHaveLength(2);
    const headers = Object.fromEntries(Object.entries(during!.headers).map(([k, v]) => [k, String(v)]));
    await expect(new Webhook({ secrets: [oldSecret] }).verify(during!.body, headers)).resolves.toBeTruthy();
    await expect(new Webhook({ secrets: [newSecret] }).verify(during!.body, headers)).resolves.toBeTruthy();

    await db.pool.query("update webhook_endpoints set previous_secret_expires_at = now() - interval '1 second' where id = $1", [endpoints[0]!.id]);
    await emit(merchant.id);
    const [, after] = await receiver.waitFor(2);
    const afterHeaders = Object.fromEntries(Object.entries(after!.headers).map(([k, v]) => [k, String(v)]));
    expect(String(after!.headers["webhook-signature"]).split(" ").filter((s) => s.startsWith("v1,"))).toHaveLength(1);
    await expect(new Webhook({ secrets: [newSecret] }).verify(after!.body, afterHeaders)).resolves.toBeTruthy();
    await expect(new Webhook({ secrets: [oldSecret] }).verify(after!.body, afterHeaders)).rejects.toThrow();
  });

  it("disables an endpoint that answers 410 and records endpoint.disabled", async () => {
    const config = testConfig();
    const gone = await startReceiver(() => ({ status: 410 }));
    const other = await startReceiver();
    stops.push(gone.close, other.close);
    const { merchant, endpoints } = await setup(config, [gone.url, other.url]);
    const registry = startRuntime(config);
    await emit(merchant.id);
    await gone.waitFor(1);
    await expect.poll(async () => (await db.pool.query("select disabled from webhook_endpoints where id = $1", [endpoints[0]!.id])).rows[0].disabled).toBe(true);
    // The other endpoint hears about it.
    const got = await other.waitFor(2);
    expect(got.map((r) => JSON.parse(r.body).type).sort()).toEqual(["endpoint.disabled", "payment.created"]);
    expect(await registry.getSingleMetricAsString("webhook_endpoints_disabled_total")).toMatch(/webhook_endpoints_disabled_total 1/);

    // Events while disabled are stored (parked), not sent.
    const later = await emit(merchant.id);
    const parked = await db.pool.query("select status from webhook_deliveries where event_id = $1 and endpoint_id = $2", [later.id, endpoints[0]!.id]);
    expect(parked.rows[0].status).toBe("endpoint_disabled");
  });

  it("disables an endpoint failing continuously for WEBHOOK_DISABLE_AFTER_HOURS", async () => {
    const config = testConfig({ WEBHOOK_DISABLE_AFTER_HOURS: "1" });
    const receiver = await startReceiver(() => ({ status: 500 }));
    stops.push(receiver.close);
    const { merchant, endpoints } = await setup(config, [receiver.url]);
    await db.pool.query("update webhook_endpoints set failing_since = now() - interval '2 hours' where id = $1", [endpoints[0]!.id]);
    startRuntime(config);
    await emit(merchant.id);
    await expect.poll(async () => (await db.pool.query("select disabled, disabled_reason from webhook_endpoints where id = $1", [endpoints[0]!.id])).rows[0]).toMatchObject({
      disabled: true,
      disabled_reason: expect.stringMatching(/continuously/),
    });
  });

  it("shows the merchant the same for a name resolving to a private address as for one that does not resolve; only our log tells them apart", async () => {
    const config = testConfig({ WEBHOOK_RETRY_SCHEDULE: "1h" });
    const lookup: LookupFn = async (hostname) => {
      if (hostname === "internal.lumenpay.test") return [{ address: "10.0.0.7", family: 4 }];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    };
    const sender = createWebhookSender({ timeoutMs: 5000, allowedCidrs: [], userAgent: "Lumenpay-Test/1", lookup });
    stops.push(() => sender.close());
    const lines: Array<{ msg: string; detail?: string }> = [];
    const log = createLogger("warn", { write: (line: string) => void lines.push(JSON.parse(line)) });
    const { merchant } = await setup(config, ["http://internal.lumenpay.test/hooks", "http://missing.lumenpay.test/hooks"]);
    startRuntime(config, { sender, log });
    const event = await emit(merchant.id);

    // What GET /v1/deliveries/:id shows, but the duration.
    const shown = async () =>
      (
        await db.pool.query(
          `select d.status, d.last_status, d.last_error, a.attempt, a.status_code, a.error_class, a.response_body
           from webhook_deliveries d join webhook_attempts a on a.delivery_id = d.id where d.event_id = $1`,
          [event.id],
        )
      ).rows;
    await expect.poll(async () => (await shown()).length).toBe(2);
    const [internal, missing] = await shown();
    expect(internal).toEqual(missing);
    expect(internal).toMatchObject({ last_error: "unreachable", error_class: "unreachable", status_code: null });
    const details = lines.filter((l) => l.msg === "webhook endpoint unreachable").map((l) => l.detail);
    expect(details).toEqual(expect.arrayContaining([expect.stringContaining("10.0.0.7 is private"), expect.stringContaining("ENOTFOUND")]));
  });

  it("keeps a hanging endpoint from delaying deliveries to others", async () => {
    const config = testConfig({ WEBHOOK_TIMEOUT_MS: "20000", WEBHOOK_MAX_CONCURRENT_PER_ENDPOINT: "3" });
    const hanging = await startReceiver(() => "hang");
    const healthy = await startReceiver();
    stops.push(hanging.close, healthy.close);
    const slow = await setup(config, [hanging.url]);
    const fast = await setup(config, [healthy.url]);
    startRuntime(config);
    for (let i = 0; i < 20; i++) await emit(slow.merchant.id);
    await hanging.waitFor(3);
    for (let i = 0; i < 10; i++) await emit(fast.merchant.id);
    await healthy.waitFor(10);
    // Only the per-endpoint cap is ever in flight to the hanging endpoint.
    expect(hanging.received).toHaveLength(3);
  });
});
