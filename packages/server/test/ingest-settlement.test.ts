import type { ChildProcess } from "node:child_process";
import { Memo } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { transaction } from "../src/db/pool.js";
import type { Merchant } from "../src/merchants/store.js";
import { createMetrics } from "../src/metrics/registry.js";
import { createPayment, inTransaction } from "../src/payments/service.js";
import { applyPaymentRecord, observeSettlement, type SettlementOutcome } from "../src/payments/settlement.js";
import { ingestLockKey } from "../src/stellar/ingest.js";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { advisoryLockHolder, connected, newMerchant, opToken, startIngestion, storedCursor } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";
import { sourceModule, spawnScript } from "./support/process.js";

let db: TestDatabase;
let horizon: LocalHorizon;
const cleanups: Array<() => Promise<unknown>> = [];
const config = loadConfig({ PUBLIC_BASE_URL: "https://pay.example.test" });

beforeAll(async () => {
  db = await createTestDatabase();
  horizon = await startLocalHorizon();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await horizon?.close();
  await db?.drop();
});

/** An in-process instance with the real settlement; `outcomes` collects what it committed. */
function start() {
  const metrics = createMetrics(db.pool);
  const outcomes: SettlementOutcome[] = [];
  const instance = startIngestion(db, {
    config,
    metrics,
    apply: applyPaymentRecord,
    observe: (outcome) => {
      outcomes.push(outcome);
      observeSettlement(metrics, outcome);
    },
    horizonUrl: horizon.url,
    networkPassphrase: horizon.networkPassphrase,
    watchdogMs: 10_000,
  });
  cleanups.push(instance.stop);
  const streaming = (account: string) => waitFor(async () => (await connected(instance, account)) === 1, "the stream");
  return { metrics, outcomes, stop: instance.stop, streaming };
}

const cursorOf = (account: string) => storedCursor(db.pool, horizon.networkPassphrase, account);

async function newPayment(merchant: Merchant, amount: string) {
  const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: horizon.networkPassphrase };
  return (await transaction(db.pool, (tx) => createPayment(inTransaction(tx, false), merchant, { amount, asset: "XLM" }, new Date(), links, config.payments))).payment;
}

async function statusOf(paymentId: string): Promise<string> {
  const { rows } = await db.pool.query<{ status: string }>("select status from payments where id = $1", [paymentId]);
  return rows[0]!.status;
}

/** Settlement rows and events per type for one payment: what a replay must never add to. */
async function effectsOf(paymentId: string) {
  const settlements = await db.pool.query("select 1 from payment_settlements where payment_id = $1", [paymentId]);
  const events = await db.pool.query<{ type: string; n: string }>(
    "select type, count(*) as n from events where payment_id = $1 group by type order by type",
    [paymentId],
  );
  return { settlements: settlements.rowCount, events: Object.fromEntries(events.rows.map((r) => [r.type, Number(r.n)])) };
}

const CONFIRMED_ONCE = { settlements: 1, events: { "payment.created": 1, "payment.confirmed": 1 } };

describe("payment ingestion with settlement", () => {
  it("confirms a payment made while ingesting, and replaying its record changes nothing", async () => {
    const payer = await horizon.newAccount("100");
    const { merchant, account } = await newMerchant(db.pool, horizon);
    const first = start();
    await first.streaming(account);
    const startedAt = (await cursorOf(account))!;
    const payment = await newPayment(merchant, "5");
    await horizon.pay({ from: payer, to: account, amount: "5", memo: Memo.id(payment.memo!.value) });
    await waitFor(async () => (await statusOf(payment.id)) === "confirmed", "the confirmation");
    expect(await effectsOf(payment.id)).toEqual(CONFIRMED_ONCE);
    expect(first.outcomes.map((o) => o.kind)).toEqual(["applied"]);
    const reached = await cursorOf(account);
    await first.stop();

    // As after restoring an old backup: the cursor goes back and the record is streamed again.
    await db.pool.query("update stellar_cursors set paging_token = $2 where account = $1", [account, startedAt]);
    const second = start();
    await waitFor(async () => (await cursorOf(account)) === reached && second.outcomes.length > 0, "the replay");
    expect(second.outcomes.map((o) => o.kind)).toEqual(["duplicate"]);
    expect(await effectsOf(payment.id)).toEqual(CONFIRMED_ONCE);
  });

  it("on an account's first start, finds payments made to open payment requests before it was seen", async () => {
    const payer = await horizon.newAccount("100");
    const { merchant, account } = await newMerchant(db.pool, horizon);
    // An older payment to the account that no open request waits for: it must stay behind "now".
    await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.id("1") });
    const payment = await newPayment(merchant, "3");
    // Paid before any ingestion instance has seen the account (a new merchant is seen within pollAccountsMs).
    await horizon.pay({ from: payer, to: account, amount: "3", memo: Memo.id(payment.memo!.value) });
    const first = start();
    await waitFor(async () => (await statusOf(payment.id)) === "confirmed", "the confirmation");
    expect(await effectsOf(payment.id)).toEqual(CONFIRMED_ONCE);
    expect(first.outcomes.filter((o) => o.kind === "applied")).toHaveLength(1);
  });

  it("finds a payment made while ingestion was down once it is back", async () => {
    const payer = await horizon.newAccount("100");
    const { merchant, account } = await newMerchant(db.pool, horizon);
    const first = start();
    await first.streaming(account);
    await first.stop();

    const payment = await newPayment(merchant, "2.5");
    const paid = await horizon.pay({ from: payer, to: account, amount: "2.5", memo: Memo.id(payment.memo!.value) });
    expect(await statusOf(payment.id)).toBe("pending");
    start();
    await waitFor(async () => (await statusOf(payment.id)) === "confirmed", "the confirmation after the restart");
    expect(await cursorOf(account)).toBe(opToken(paid));
    expect(await effectsOf(payment.id)).toEqual(CONFIRMED_ONCE);
  });

  it("with two ingesting processes, confirms each payment once even when the holder is killed", async () => {
    const payer = await horizon.newAccount("100");
    const { merchant, account } = await newMerchant(db.pool, horizon);
    const children = [spawnIngester(), spawnIngester()];
    const holder = () => advisoryLockHolder(db.pool, ingestLockKey(horizon.networkPassphrase, account), children);
    const payAndConfirm = async () => {
      const payment = await newPayment(merchant, "1");
      await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.id(payment.memo!.value) });
      await waitFor(async () => (await statusOf(payment.id)) === "confirmed", "a confirmation");
      return payment.id;
    };

    const first = await waitFor(holder, "a lock holder");
    // The account's first start begins at "now": pay only once that point is stored.
    await waitFor(async () => (await cursorOf(account)) !== undefined, "the starting cursor");
    const paid = [await payAndConfirm()];
    first.kill("SIGKILL");
    // Paid before the other process has noticed: it must be picked up from the cursor.
    paid.push(await payAndConfirm());
    const second = await waitFor(holder, "the takeover");
    expect(second).not.toBe(first);
    paid.push(await payAndConfirm());

    for (const id of paid) expect(await effectsOf(id)).toEqual(CONFIRMED_ONCE);
  });
});

/** An ingestion-only process, as a second server instance would run it; SIGTERM stops it cleanly. */
const INGESTER = `
import { loadConfig } from ${sourceModule("config.ts")};
import { createPool } from ${sourceModule("db/pool.ts")};
import { createLogger } from ${sourceModule("logger.ts")};
import { createMetrics } from ${sourceModule("metrics/registry.ts")};
import { applyPaymentRecord, observeSettlement } from ${sourceModule("payments/settlement.ts")};
import { startPaymentIngestion } from ${sourceModule("stellar/ingest.ts")};
const config = loadConfig(process.env);
const pool = createPool(config.databaseUrl, { ...config.db, poolMin: 0 });
const metrics = createMetrics(pool);
const controller = new AbortController();
process.on("SIGTERM", () => controller.abort());
const { done } = startPaymentIngestion({
  config, pool, connectionString: config.databaseUrl, clock: { now: () => new Date() }, log: createLogger("warn"),
  metrics, signal: controller.signal, apply: applyPaymentRecord, observe: (o) => observeSettlement(metrics, o),
  pollAccountsMs: 100, watchdogMs: 10000,
});
await done;
await pool.end();
`;

function spawnIngester(): ChildProcess {
  return spawnScript(INGESTER, {
      DATABASE_URL: db.url,
      STELLAR_NETWORK: "custom",
      STELLAR_NETWORK_PASSPHRASE: horizon.networkPassphrase,
      HORIZON_URL: horizon.url,
    }, cleanups);
}
