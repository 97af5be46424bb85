import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DELIVERIES_CHANNEL } from "../src/webhooks/wakeup.js";
import { createMerchant } from "../src/merchants/service.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { waitFor } from "./support/wait.js";
import { startServerProcess, type ServerProcess } from "./support/process.js";
import { startReceiver } from "./support/receiver.js";

/** `lumenpay start` processes with some of the roles, as a scaled-out deployment runs them. */

let db: TestDatabase;
let apiKey: string;
const children: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  ({ secret: apiKey } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date()));
});
afterEach(() => {
  // A failed test must not leave a server behind.
  for (const child of children.splice(0)) if (child.child.exitCode === null) child.child.kill("SIGKILL");
});
afterAll(() => db.drop());

const webhookEnv = { WEBHOOK_ALLOW_HTTP: "true", WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8" };

/** `lumenpay start [args]` on a free port; resolves with its "listening" log line once it listens. */
async function startLumenpay(env: Record<string, string>, args: string[]) {
  const server = startServerProcess({ DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: "info", ...env }, args);
  children.push(server);
  const ready = await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number");
  return { server, url: ready.url as string, roles: ready.roles };
}

async function stop(server: ServerProcess) {
  server.child.kill("SIGTERM");
  expect(await server.exited, server.problems()).toEqual({ code: 0, signal: null });
}

const auth = () => ({ authorization: `Bearer ${apiKey}`, "content-type": "application/json" });

/** POSTs `body` to the API at `url`, expecting 201; returns what was created. */
async function create(url: string, path: string, body: object): Promise<{ id: string }> {
  const res = await fetch(`${url}${path}`, { method: "POST", headers: auth(), body: JSON.stringify(body) });
  expect(res.status, path).toBe(201);
  return (await res.json()) as { id: string };
}

/** Connections opened since `since` (the database's clock) that LISTEN for the delivery workers' wake-ups. */
async function deliveryListeners(since: Date): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and backend_start >= $1 and query = $2`,
    [since, `listen ${pg.escapeIdentifier(DELIVERIES_CHANNEL)}`],
  );
  return rows[0]!.n;
}

const databaseNow = async () => (await db.pool.query<{ now: Date }>("select now()")).rows[0]!.now;

describe("process roles", () => {
  it("a deliver-only process serves /health, /ready and /metrics, and 404 for the API, the checkout and the docs", async () => {
    // --roles wins over LUMENPAY_ROLES.
    const { server, url, roles } = await startLumenpay({ LUMENPAY_ROLES: "api" }, ["--roles", "deliver"]);
    expect(roles).toEqual(["deliver"]);

    expect((await fetch(`${url}/health`)).status).toBe(200);
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", database: "ok", migrations: "applied" });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    // The delivery worker's own metrics are on this process's registry.
    expect(await metrics.text()).toMatch(/^# TYPE webhook_deliveries_total counter$/m);

    const payment = await fetch(`${url}/v1/payments`, { method: "POST", headers: auth(), body: JSON.stringify({ amount: "5", asset: "XLM" }) });
    expect(payment.status).toBe(404);
    expect(await payment.json()).toEqual({ error: { code: "route_not_found", message: "No route POST /v1/payments." } });
    for (const path of ["/pay/x", "/docs", "/dashboard", "/.well-known/stellar.toml"]) {
      expect((await fetch(`${url}${path}`)).status, path).toBe(404);
    }
    await stop(server);
  });

  it("an api-only process queues webhooks without sending them; a deliver process started later sends them", async () => {
    const receiver = await startReceiver();
    try {
      // Connections of the other test's processes are older than this.
      const since = await databaseNow();
      const api = await startLumenpay(webhookEnv, ["--roles", "api"]);
      expect(api.roles).toEqual(["api"]);
      const post = (path: string, body: object) => create(api.url, path, body);
      await post("/v1/webhook_endpoints", { url: receiver.url, enabled_events: ["payment.created"] });
      const first = await post("/v1/payments", { amount: "5", asset: "XLM" });
      // The process has since answered another request (and scraped its metrics), each a moment in
      // which a worker of its own would have claimed the first delivery: NOTIFY wakes one at once.
      const second = await post("/v1/payments", { amount: "6", asset: "XLM" });
      const metrics = await fetch(`${api.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).not.toContain("webhook_deliveries_total");
      expect(await deliveryListeners(since)).toBe(0);

      const deliveries = async () =>
        (
          await db.pool.query<{ payment_id: string; event_id: string; status: string; attempts: number }>(
            `select e.payment_id, d.event_id, d.status, d.attempts
             from webhook_deliveries d join events e on e.id = d.event_id order by d.event_created_at, d.id`,
          )
        ).rows;
      const queued = await deliveries();
      expect(queued.map((d) => [d.payment_id, d.status, d.attempts])).toEqual([
        [first.id, "pending", 0],
        [second.id, "pending", 0],
      ]);
      expect((await db.pool.query("select 1 from webhook_attempts")).rowCount).toBe(0);
      expect(receiver.received).toHaveLength(0);

      const deliver = await startLumenpay(webhookEnv, ["--roles", "deliver"]);
      const received = await receiver.waitFor(2);
      // The check above sees a delivery worker when there is one.
      await waitFor(async () => (await deliveryListeners(since)) === 1, "the deliver process's LISTEN connection");
      expect(received.map((r) => r.headers["webhook-id"]).sort()).toEqual(queued.map((d) => d.event_id).sort());
      await waitFor(async () => (await deliveries()).every((d) => d.status === "succeeded"), "both deliveries recorded as succeeded");
      expect((await deliveries()).map((d) => d.attempts)).toEqual([1, 1]);

      await stop(deliver.server);
      await stop(api.server);
    } finally {
      await receiver.close();
    }
  });

  it("an api-only process wakes a deliver-only process by NOTIFY after its commit, long before the worker would poll", async () => {
    const receiver = await startReceiver();
    try {
      const since = await databaseNow();
      // Polling alone would take a minute: only the API process's wake-up can bring the delivery sooner.
      const deliver = await startLumenpay({ ...webhookEnv, WEBHOOK_POLL_INTERVAL_MS: "60000" }, ["--roles", "deliver"]);
      await waitFor(async () => (await deliveryListeners(since)) === 1, "the deliver process's LISTEN connection");
      const api = await startLumenpay(webhookEnv, ["--roles", "api"]);
      await create(api.url, "/v1/webhook_endpoints", { url: receiver.url, enabled_events: ["payment.created"] });

      const payment = await create(api.url, "/v1/payments", { amount: "5", asset: "XLM" });
      const [received] = await receiver.waitFor(1, 20_000);
      expect(JSON.parse(received!.body).data.object.id).toBe(payment.id);

      await stop(api.server);
      await stop(deliver.server);
    } finally {
      await receiver.close();
    }
  });

  it("a process with the api and deliver roles wakes its own worker directly, with no LISTEN connection", async () => {
    const receiver = await startReceiver();
    try {
      const since = await databaseNow();
      // A transaction pooler without DATABASE_DIRECT_URL: the worker cannot LISTEN and polls once a minute.
      const both = await startLumenpay({ ...webhookEnv, DATABASE_POOLER: "transaction", WEBHOOK_POLL_INTERVAL_MS: "60000" }, ["--roles", "api,deliver"]);
      expect(both.roles).toEqual(["api", "deliver"]);
      await create(both.url, "/v1/webhook_endpoints", { url: receiver.url, enabled_events: ["payment.created"] });

      const payment = await create(both.url, "/v1/payments", { amount: "5", asset: "XLM" });
      const [received] = await receiver.waitFor(1, 20_000);
      expect(JSON.parse(received!.body).data.object.id).toBe(payment.id);
      expect(await deliveryListeners(since)).toBe(0);

      await stop(both.server);
    } finally {
      await receiver.close();
    }
  });

  it("a maintenance-only process expires payments and sends none of their webhooks", async () => {
    const receiver = await startReceiver();
    try {
      const since = await databaseNow();
      const api = await startLumenpay(webhookEnv, ["--roles", "api"]);
      await create(api.url, "/v1/webhook_endpoints", { url: receiver.url, enabled_events: ["payment.expired"] });
      const payment = await create(api.url, "/v1/payments", { amount: "5", asset: "XLM" });
      await stop(api.server);
      await db.pool.query("update payments set expires_at = now() - interval '1 second' where id = $1", [payment.id]);

      const maintenance = await startLumenpay(webhookEnv, ["--roles", "maintenance"]);
      expect(maintenance.roles).toEqual(["maintenance"]);
      const status = async () => (await db.pool.query<{ status: string }>("select status from payments where id = $1", [payment.id])).rows[0]?.status;
      await waitFor(async () => (await status()) === "expired", "the payment expired");
      const { rows } = await db.pool.query(
        `select d.status, d.attempts from webhook_deliveries d join events e on e.id = d.event_id
         where e.payment_id = $1 and e.type = 'payment.expired'`,
        [payment.id],
      );
      expect(rows).toEqual([{ status: "pending", attempts: 0 }]);
      expect(await deliveryListeners(since)).toBe(0);
      expect(receiver.received).toHaveLength(0);
      await stop(maintenance.server);
    } finally {
      await receiver.close();
    }
  });
});
