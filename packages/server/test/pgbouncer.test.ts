import { Keypair, Memo } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createPool, type Pool } from "../src/db/pool.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createMetrics } from "../src/metrics/registry.js";
import { applyPaymentRecord, wroteEvents, type SettlementOutcome } from "../src/payments/settlement.js";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { createWebhookMetrics } from "../src/webhooks/metrics.js";
import { startWebhookRuntime } from "../src/webhooks/runtime.js";
import { createDeliveryWakeup } from "../src/webhooks/wakeup.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { connected, pastTheSecondOf, startIngestion } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";
import { startPgBouncer, type PgBouncer } from "./support/pgbouncer.js";
import { startReceiver } from "./support/receiver.js";

/** Lumenpay behind a real PgBouncer in transaction mode, as managed PostgreSQL runs it. */

let db: TestDatabase;
let bouncer: PgBouncer;
let pooled: Pool;
let horizon: LocalHorizon;
const cleanups: Array<() => Promise<unknown>> = [];
const env = {
  LOG_LEVEL: "silent",
  DATABASE_POOLER: "transaction",
  WEBHOOK_ALLOW_HTTP: "true",
  WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
};

beforeAll(async () => {
  db = await createTestDatabase();
  bouncer = await startPgBouncer(db.url);
  horizon = await startLocalHorizon();
  pooled = createPool(bouncer.through(db.url), { ...loadConfig(env).db, poolMin: 0, poolMax: 10 });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await pooled?.end();
  await horizon?.close();
  await bouncer?.stop();
  await db?.drop();
});

/** A merchant with a fresh account on the local network, attached in a later second than its funding. */
async function merchant() {
  const account = Keypair.random().publicKey();
  await pastTheSecondOf((await horizon.fund(account, "1")).created_at);
  const created = await createMerchant(pooled, { name: "Shop", email: "shop@example.test", accounts: [account] }, new Date());
  return { ...created, account };
}

describe("the pool", () => {
  it("sends no startup parameters PgBouncer refuses once DATABASE_POOLER=transaction says it is one", async () => {
    const naive = createPool(bouncer.through(db.url), { ...loadConfig({}).db, poolMin: 0, poolMax: 1 });
    try {
      await expect(naive.query("select 1")).rejects.toThrow(/statement_timeout/);
    } finally {
      await naive.end();
    }
    expect((await pooled.query<{ one: number }>("select 1 as one")).rows).toEqual([{ one: 1 }]);
  });
});

describe("ingestion with leases", () => {
  it("lets one of two instances hold an account: after a crashed holder's lease runs out, and after a stopped holder let it go", async () => {
    const { account } = await merchant();
    // An instance that crashed while holding the account: its lease blocks everyone until it runs out.
    await db.pool.query("insert into ingest_leases values ($1, $2, 'crashed:1:0', now() + interval '1.5 seconds')", [horizon.networkPassphrase, account]);
    const crashedLeaseFrom = Date.now();
    const applied: string[] = [];
    const start = () =>
      startIngestion(db, {
        pool: pooled,
        connectionString: undefined,
        leaseTtlMs: 1_500,
        apply: async (_tx, record) => void applied.push(record.id),
        horizonUrl: horizon.url,
        networkPassphrase: horizon.networkPassphrase,
        watchdogMs: 10_000,
      });
    const instances = [start(), start()];
    cleanups.push(() => Promise.all(instances.map((i) => i.stop())));
    const holder = await waitFor(async () => {
      const holding = instances.filter((i) => i.streamState(account) === 1);
      return holding.length === 1 && holding[0];
    }, "one instance to hold the account");
    const other = instances.find((i) => i !== holder)!;
    expect(await connected(other, account)).toBeUndefined();
    // Not before the crashed holder's lease ran out.
    expect(Date.now() - crashedLeaseFrom).toBeGreaterThanOrEqual(1_400);
    const payer = await horizon.newAccount("100");
    const first = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("first") });
    await waitFor(async () => applied.length === 1, "the first payment");

    // The holder stops and releases its lease: the other instance continues from the cursor.
    await holder.stop();
    await waitFor(async () => (await connected(other, account)) === 1, "the takeover", 15_000);
    const second = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("second") });
    await waitFor(async () => applied.length === 2, "the second payment");
    expect(applied).toEqual([`${BigInt(first.paging_token) + 1n}`, `${BigInt(second.paging_token) + 1n}`]);
    const { rows } = await db.pool.query("select count(*)::int as n from ingest_leases where account = $1", [account]);
    expect(rows[0].n).toBe(1);
  });
});

describe("the whole path through PgBouncer", () => {
  it("creates a payment, confirms it from the local network and delivers its webhooks, woken by NOTIFY through PgBouncer and LISTEN on the direct URL", async () => {
    const config = loadConfig({ ...env, STELLAR_NETWORK: "custom", STELLAR_NETWORK_PASSPHRASE: horizon.networkPassphrase, HORIZON_URL: horizon.url });
    // As server.ts: the API and ingestion wake the workers after their commits, with a NOTIFY sent through PgBouncer.
    const wakeup = createDeliveryWakeup({ pool: pooled, log: createLogger("silent") });
    cleanups.push(() => wakeup.settled());
    const app = await buildApp({ config, pool: pooled, clock: { now: () => new Date() }, logger: createLogger("silent"), wakeup });
    cleanups.push(() => app.close());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const outcomes: SettlementOutcome[] = [];
    const ingestion = startIngestion(db, {
      config,
      pool: pooled,
      connectionString: undefined,
      apply: applyPaymentRecord,
      observe: (o) => {
        outcomes.push(o);
        if (wroteEvents(o)) wakeup.wake();
      },
      horizonUrl: horizon.url,
      networkPassphrase: horizon.networkPassphrase,
      watchdogMs: 10_000,
    });
    cleanups.push(ingestion.stop);
    const controller = new AbortController();
    const runtime = startWebhookRuntime({
      config,
      pool: pooled,
      // LISTEN needs a connection of its own: the direct URL, never PgBouncer's.
      connectionString: db.url,
      clock: { now: () => new Date() },
      log: createLogger("silent"),
      metrics: createWebhookMetrics(createMetrics(pooled).registry, pooled),
      signal: controller.signal,
      // Far longer than the test: only a notification can wake the worker in time.
      pollIntervalMs: 120_000,
    });
    cleanups.push(async () => {
      controller.abort();
      await runtime.done;
    });

    const m = await merchant();
    const auth = { authorization: `Bearer ${m.secret}` };
    expect((await app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: auth, payload: { url: receiver.url, enabled_events: ["*"] } })).statusCode).toBe(201);
    // With an Idempotency-Key, as @lumenpay/client sends: its record is written by the create statement and read back on a retry.
    const create = () => app.inject({ method: "POST", url: "/v1/payments", headers: { ...auth, "idempotency-key": "order-1" }, payload: { amount: "5", asset: "XLM" } });
    const created = await create();
    expect(created.statusCode).toBe(201);
    const payment = created.json();
    const retried = await create();
    expect(retried.headers["idempotent-replayed"]).toBe("true");
    expect(retried.json()).toEqual(payment);
    await waitFor(async () => ingestion.streamState(m.account) === 1, "the account's stream");
    const payer = await horizon.newAccount("100");
    await horizon.pay({ from: payer, to: m.account, amount: "5", memo: Memo.id(payment.memo) });

    const types = () => receiver.received.map((r) => JSON.parse(r.body).type as string);
    await waitFor(async () => types().includes("payment.confirmed"), "payment.confirmed at the receiver", 20_000);
    expect(types()).toEqual(["payment.created", "payment.confirmed"]);
    expect((await app.inject({ method: "GET", url: `/v1/payments/${payment.id}`, headers: auth })).json().status).toBe("confirmed");
  });
});
