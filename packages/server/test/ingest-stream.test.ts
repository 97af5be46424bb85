import { Memo } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Metrics } from "../src/metrics/registry.js";
import { startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { newMerchant, startIngestion } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";

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

/** Summed over every series carrying all of `labels`; 0 when there is none. */
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
    const { account } = await newMerchant(db.pool, horizon);
    const payer = await horizon.newAccount("100");
    const applied: string[] = [];
    const instance = startIngestion(db, {
      apply: async (_tx, record) => {
        applied.push(String(record.transaction_attr?.memo ?? ""));
      },
      horizonUrl: horizon.url,
      networkPassphrase: horizon.networkPassphrase,
      // Far longer than the test: only a broken connection may end the stream.
      watchdogMs: 60_000,
    });
    cleanups.push(instance.stop);

    await waitFor(async () => instance.streamState(account) === 1, "the stream", 10_000);
    await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("first") });
    await waitFor(async () => applied.length === 1, "the first payment", 10_000);
    // Idle for longer than the global agent's 5 s socket timeout.
    await new Promise((resolve) => setTimeout(resolve, 6_500));
    expect(await sample(instance.metrics, "horizon_stream_reconnects_total")).toBe(0);
    expect(instance.streamState(account)).toBe(1);
    expect(await sample(instance.metrics, "horizon_streams_connected")).toBe(1);

    // And the same stream still delivers, at once rather than after a backoff.
    const sent = Date.now();
    await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("second") });
    await waitFor(async () => applied.length === 2, "the second payment", 2_000);
    expect(Date.now() - sent).toBeLessThan(2_000);
    expect(applied).toEqual(["first", "second"]);
    expect(await sample(instance.metrics, "horizon_stream_reconnects_total")).toBe(0);
  });
});
