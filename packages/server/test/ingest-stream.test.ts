import { Memo } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../src/clock.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createMetrics, type Metrics } from "../src/metrics/registry.js";
import { startPaymentIngestion } from "../src/stellar/ingest.js";
import { startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

let db: TestDatabase;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await db?.drop();
});

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function sample(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))
    .reduce((sum, v) => sum + v.value, 0);
}

describe("payment ingestion stream", () => {
  // Node 20's http.globalAgent times sockets out after 5 s of idleness. The SDK's axios requests
  // (through follow-redirects, with a timeout) left `socket.destroy` listening for that timeout on
  // the keep-alive sockets they returned to the global agent, and the SDK's EventSource reuses
  // those sockets: every stream was destroyed after ~5 s without a payment ("connection lost").
  it("holds one stream across idle periods longer than the HTTP agent's socket timeout", { timeout: 20_000 }, async () => {
    const horizon = await startLocalHorizon();
    cleanups.push(() => horizon.close());
    const account = (await horizon.newAccount("1")).publicKey();
    const payer = await horizon.newAccount("100");
    await createMerchant(db.pool, { name: "Shop", email: "shop@example.test", accounts: [account] });
    const metrics = createMetrics(db.pool);
    const controller = new AbortController();
    const applied: string[] = [];
    const { done } = startPaymentIngestion({
      config: loadConfig({}),
      pool: db.pool,
      connectionString: db.url,
      clock: systemClock,
      log: createLogger("silent"),
      metrics,
      signal: controller.signal,
      apply: async (_tx, record) => {
        applied.push(String(record.transaction_attr?.memo ?? ""));
      },
      horizonUrl: horizon.url,
      networkPassphrase: horizon.networkPassphrase,
      pollAccountsMs: 100,
      // Far longer than the test: only a broken connection may end the stream.
      watchdogMs: 60_000,
    });
    cleanups.push(() => {
      controller.abort();
      return done;
    });

    await waitFor(async () => (await sample(metrics, "horizon_stream_connected", { account })) === 1, "the stream");
    await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("first") });
    await waitFor(async () => applied.length === 1, "the first payment");
    // Idle for longer than the global agent's 5 s socket timeout.
    await new Promise((resolve) => setTimeout(resolve, 6_500));
    expect(await sample(metrics, "horizon_stream_reconnects_total")).toBe(0);
    expect(await sample(metrics, "horizon_stream_connected", { account })).toBe(1);

    // And the same stream still delivers, at once rather than after a backoff.
    const sent = Date.now();
    await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("second") });
    await waitFor(async () => applied.length === 2, "the second payment", 2_000);
    expect(Date.now() - sent).toBeLessThan(2_000);
    expect(applied).toEqual(["first", "second"]);
    expect(await sample(metrics, "horizon_stream_reconnects_total")).toBe(0);
  });
});
