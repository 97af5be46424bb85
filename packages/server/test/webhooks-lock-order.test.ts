import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance } from "fastify";
import { Keypair } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createPool, transaction, type TransactionOptions } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createMetrics } from "../src/metrics/registry.js";
import { createWebhookMetrics } from "../src/webhooks/metrics.js";
import { startWebhookRuntime } from "../src/webhooks/runtime.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startReceiver } from "./support/receiver.js";

// Deliveries fail fast and retry at once, so workers record failures throughout the storm below.
const config = loadConfig({
  WEBHOOK_ALLOW_HTTP: "true",
  WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
  WEBHOOK_RETRY_SCHEDULE: "5ms,5ms,5ms,5ms,5ms,5ms",
  WEBHOOK_DISABLE_AFTER_HOURS: "1",
});

/** Every warning and error the app or the workers log: a deadlock shows up here as well as in a 500. */
const logs: Array<{ level: number; msg: string; reason?: string; err?: { message?: string; code?: string } }> = [];
const log = createLogger("warn", { write: (line: string) => void logs.push(JSON.parse(line)) });
const logged = (what: (l: (typeof logs)[number]) => boolean) => logs.filter(what).map((l) => `${l.msg}: ${l.reason ?? `${l.err?.code ?? ""} ${l.err?.message ?? ""}`}`);
const errors = () => logged((l) => l.level >= 50);

let db: TestDatabase;
let app: FastifyInstance;
const stops: Array<() => Promise<void>> = [];
beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildApp({ config, pool: db.pool, clock: { now: () => new Date() }, logger: log });
  await app.ready();
});
afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  await app.close();
  await db.drop();
});

/** One `lumenpay start` process's delivery runtime (worker and maintenance, with a pool of its own), until the file ends. */
function startWorkers() {
  const controller = new AbortController();
  const pool = createPool(db.url, config.db);
  const runtime = startWebhookRuntime({
    config,
    pool,
    connectionString: db.url,
    clock: { now: () => new Date() },
    log,
    metrics: createWebhookMetrics(createMetrics(pool).registry, pool),
    signal: controller.signal,
    pollIntervalMs: 50,
    maintenanceIntervalMs: 20,
  });
  stops.push(async () => {
    controller.abort();
    await runtime.done;
    await pool.end();
  });
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const count = async (sql: string, params: unknown[]) => (await db.pool.query<{ n: number }>(sql, params)).rows[0]!.n;

describe("webhook lock order", () => {
  it("retries, recoveries, disable, enable and delete racing the workers never fail and never lose an attempt", { timeout: 180_000 }, async () => {
    const receiver = await startReceiver(() => ({ status: 500, body: "down" }));
    stops.push(receiver.close);
    const { merchant, secret } = await createMerchant(
      db.pool,
      { name: "Acme", email: "ops@acme.test", accounts: [Keypair.random().publicKey()] },
      new Date(),
    );
    const headers = { authorization: `Bearer ${secret}` };
    const outcomes: Array<{ call: string; status: number; body: string }> = [];
    const call = async (method: "POST" | "PATCH" | "DELETE", url: string, payload?: object) => {
      const res = await app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
      outcomes.push({ call: `${method} ${url}`, status: res.statusCode, body: res.body });
    };

    const created = await app.inject({
      method: "POST",
      url: "/v1/webhook_endpoints",
      headers,
      payload: { url: receiver.url, enabled_events: ["*"] },
    });
    expect(created.statusCode).toBe(201);
    const endpointId: string = created.json().id;
    const endpointUrl = `/v1/webhook_endpoints/${endpointId}`;
    const since = new Date(Date.now() - 60_000).toISOString();

    // The backlog: 40 deliveries, half of them already failed.
    await transaction(db.pool, async (tx) => {
      for (let i = 0; i < 40; i++) {
        await recordEvent(tx, { merchantId: merchant.id, type: "payment.created", object: { id: `pay_${i}` }, now: new Date() });
      }
    });
    const deliveryIds = (
      await db.pool.query<{ id: string }>("select id from webhook_deliveries where endpoint_id = $1 order by id", [endpointId])
    ).rows.map((r) => r.id);
    await db.pool.query("update webhook_deliveries set status = 'failed', completed_at = now() where id = any ($1)", [
      deliveryIds.filter((_, i) => i % 2 === 0),
    ]);

    // Two processes' workers, recording the receiver's 500s while the API acts on the same rows.
    startWorkers();
    startWorkers();
    const retry = (i: number) => call("POST", `/v1/deliveries/${deliveryIds[i % deliveryIds.length]}/retry`);
    const recover = () => call("POST", `${endpointUrl}/recover`, { since });
    const disableThenEnable = async () => {
      await call("PATCH", endpointUrl, { disabled: true });
      await call("PATCH", endpointUrl, { disabled: false });
    };
    const autoDisabled = async () =>
      (await count("select count(*)::int as n from webhook_endpoints where id = $1 and disabled and disabled_reason like '%continuously%'", [endpointId])) === 1;
    for (let round = 0; round < 15; round++) {
      const seen = receiver.received.length;
      const storm = [...Array.from({ length: 8 }, (_, i) => retry(round * 8 + i)), recover(), recover()];
      if (round % 3 === 2) {
        // Failing for days now: a worker's next failure disables the endpoint and parks its queue, amid the retries.
        await db.pool.query("update webhook_endpoints set failing_since = now() - interval '6 days' where id = $1", [endpointId]);
        storm.push(until(autoDisabled, `the endpoint to be disabled in round ${round}`));
      } else {
        storm.push(disableThenEnable());
      }
      await Promise.all(storm);
      // The next round starts only once the workers have been at it again.
      await call("PATCH", endpointUrl, { disabled: false });
      await recover();
      await until(async () => receiver.received.length > seen, `deliveries in round ${round}`);
    }
    await Promise.all([...Array.from({ length: 8 }, (_, i) => retry(i)), recover(), call("DELETE", endpointUrl), disableThenEnable()]);

    expect(outcomes.filter((o) => o.status >= 500)).toEqual([]);
    expect(errors()).toEqual([]);
    // The lock order alone avoids deadlocks: not one transaction needed its retry.
    expect(logged((l) => l.msg.startsWith("transaction aborted by a conflict"))).toEqual([]);
    expect(outcomes.filter((o) => o.status === 202).length).toBeGreaterThan(0);
    expect(await count("select count(*)::int as n from events where merchant_id = $1 and type = 'endpoint.disabled'", [merchant.id])).toBe(5);

    // Once nothing of the deleted endpoint is queued or in flight (leased), every request the receiver saw is logged.
    const unsettled = "select count(*)::int as n from webhook_deliveries where endpoint_id = $1 and (status = 'pending' or locked_by is not null)";
    await until(async () => (await count(unsettled, [endpointId])) === 0, "the deleted endpoint's queue to drain");
    const attempts = await count(
      "select count(*)::int as n from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id where d.endpoint_id = $1",
      [endpointId],
    );
    expect(receiver.received.length).toBeGreaterThan(deliveryIds.length);
    expect(attempts).toBe(receiver.received.length);
    expect(errors()).toEqual([]);
  });
});

describe("transaction({ retryOnConflict })", () => {
  /** Resolves when `signal()` is called: lets two transactions wait for each other's first lock. */
  function latch() {
    let signal = () => {};
    const reached = new Promise<void>((resolve) => (signal = resolve));
    return { signal, reached };
  }

  /**
   * Two transactions lock rows 1 and 2 in opposite orders, each taking its second row only once the
   * other holds its first: PostgreSQL must abort one of them with a deadlock.
   */
  async function certainDeadlock(options: TransactionOptions) {
    await db.pool.query("create table if not exists lock_probe (id int primary key); insert into lock_probe values (1), (2) on conflict do nothing");
    const runs = { a: 0, b: 0 };
    const holding = { a: latch(), b: latch() };
    const side = (name: "a" | "b", other: "a" | "b", first: number, second: number) =>
      transaction(
        db.pool,
        async (tx) => {
          runs[name]++;
          await tx.query("select id from lock_probe where id = $1 for update", [first]);
          if (runs[name] === 1) {
            holding[name].signal();
            await holding[other].reached;
          }
          await tx.query("select id from lock_probe where id = $1 for update", [second]);
        },
        options,
      );
    const results = await Promise.allSettled([side("a", "b", 1, 2), side("b", "a", 2, 1)]);
    return { results, runs: runs.a + runs.b };
  }

  it("runs the callback of the aborted side once more, in a fresh transaction, and says so in the log", async () => {
    const warnings: string[] = [];
    const { results, runs } = await certainDeadlock({ retryOnConflict: true, log: { warn: (_obj, msg) => void warnings.push(msg) } });
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled"]);
    expect(runs).toBe(3);
    expect(warnings).toEqual(["transaction aborted by a conflict; retrying it once"]);
  });

  it("leaves the deadlock to the caller without the option", async () => {
    const { results, runs } = await certainDeadlock({});
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(rejected.map((r) => (r.reason as { code?: string }).code)).toEqual(["40P01"]);
    expect(runs).toBe(2);
  });
});
