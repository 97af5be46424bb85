import type { ChildProcess } from "node:child_process";
import { Keypair, Memo } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../src/clock.js";
import { loadConfig } from "../src/config.js";
import { transaction } from "../src/db/pool.js";
import type { Merchant } from "../src/merchants/store.js";
import { createMetrics } from "../src/metrics/registry.js";
import { createPayment, inTransaction } from "../src/payments/service.js";
import { applyIncoming } from "../src/payments/settlement.js";
import { startLocalHorizon, type LocalHorizon } from "../src/stellar/local-horizon/index.js";
import { backfillFromHorizon } from "../src/stellar/follower-backfill.js";
import { followerLockKey, startFollowerIngestion } from "../src/stellar/follower.js";
import { createRpcSource } from "../src/stellar/rpc-source.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { advisoryLockHolder, metricValue, newMerchant } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";
import { sourceModule, spawnScript } from "./support/process.js";

/** The ledger follower (reading Stellar RPC) under faults: a killed holder, an account added behind it, a retention gap. */

let db: TestDatabase;
let network: LocalHorizon;
const RETAINED_LEDGERS = 8;
const config = loadConfig({ PUBLIC_BASE_URL: "https://pay.example.test" });
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  network = await startLocalHorizon({ rpcPort: 0 });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await network?.close();
  await db?.drop();
});

const links = () => ({ publicBaseUrl: config.publicBaseUrl, networkPassphrase: network.networkPassphrase });

function start(options: { pollAccountsMs?: number; connectionString?: string | undefined } = {}) {
  const controller = new AbortController();
  const metrics = createMetrics(db.pool);
  const errors: string[] = [];
  const ingestion = startFollowerIngestion({
    pool: db.pool,
    connectionString: "connectionString" in options ? options.connectionString : db.url,
    source: createRpcSource({ url: network.rpcUrl!, networkPassphrase: network.networkPassphrase, registry: metrics.registry }),
    networkPassphrase: network.networkPassphrase,
    links: links(),
    clock: systemClock,
    log: { info: () => undefined, warn: () => undefined, error: (_obj, msg) => errors.push(msg) },
    metrics,
    signal: controller.signal,
    apply: applyIncoming,
    pollMs: 20,
    pollAccountsMs: options.pollAccountsMs ?? 100,
  });
  const stop = () => {
    controller.abort();
    return ingestion.done;
  };
  cleanups.push(stop);
  return { metrics, errors, stop };
}

const newPayment = async (merchant: Merchant, amount: string) =>
  (await transaction(db.pool, (tx) => createPayment(inTransaction(tx, false), merchant, { amount, asset: "XLM" }, new Date(), links(), config.payments))).payment;

async function statusOf(paymentId: string): Promise<string> {
  const { rows } = await db.pool.query<{ status: string }>("select status from payments where id = $1", [paymentId]);
  return rows[0]!.status;
}

const confirmations = async (paymentId: string) =>
  Number((await db.pool.query("select count(*) as n from events where payment_id = $1 and type = 'payment.confirmed'", [paymentId])).rows[0].n);

const followerLedger = async () => (await db.pool.query<{ ledger: number }>("select ledger from ledger_followers")).rows[0]?.ledger;

describe("the ledger follower under faults", () => {
  it("catches an account added while the follower is ahead up from its attachment, then follows it", async () => {
    const payer = await network.newAccount("1000");
    const first = await newMerchant(db.pool, network);
    // Leases, so no LISTEN connection either: nothing announces the next account before the restart.
    const ingestion = start({ pollAccountsMs: 60_000, connectionString: undefined });
    await waitFor(async () => (await followerLedger()) !== undefined, "the follower's first start");
    const known = await newPayment(first.merchant, "1");
    await network.pay({ from: payer, to: first.account, amount: "1", memo: Memo.id(known.memo!.value) });
    await waitFor(async () => (await statusOf(known.id)) === "confirmed", "the first account's payment");

    // Attached and paid long before the next account sync: the follower is past the payment by then.
    const second = await newMerchant(db.pool, network);
    const early = await newPayment(second.merchant, "2");
    await network.pay({ from: payer, to: second.account, amount: "2", memo: Memo.id(early.memo!.value) });
    await ingestion.stop();
    const restarted = start();
    await waitFor(async () => (await statusOf(early.id)) === "confirmed", "the catch-up");
    const later = await newPayment(second.merchant, "3");
    await network.pay({ from: payer, to: second.account, amount: "3", memo: Memo.id(later.memo!.value) });
    await waitFor(async () => (await statusOf(later.id)) === "confirmed", "the followed payment");
    const { rows } = await db.pool.query("select catch_up_ledger from followed_accounts where account = $1", [second.account]);
    expect(rows).toEqual([{ catch_up_ledger: null }]);
    for (const id of [known.id, early.id, later.id]) expect(await confirmations(id)).toBe(1);
    expect(restarted.errors).toEqual([]);
  });

  it("watches a merchant's new account as soon as the change is announced, not at the next account sync", async () => {
    const payer = await network.newAccount("1000");
    const first = await newMerchant(db.pool, network);
    start({ pollAccountsMs: 120_000 });
    await waitFor(async () => (await db.pool.query("select 1 from followed_accounts where account = $1", [first.account])).rowCount === 1, "the first account");
    const { merchant, account } = await newMerchant(db.pool, network);
    await waitFor(async () => (await db.pool.query("select 1 from followed_accounts where account = $1", [account])).rowCount === 1, "the new account, long before the next sync");
    const payment = await newPayment(merchant, "2");
    await network.pay({ from: payer, to: account, amount: "2", memo: Memo.id(payment.memo!.value) });
    await waitFor(async () => (await statusOf(payment.id)) === "confirmed", "the confirmation");
  });

  it("with two ingesting processes, confirms each payment once when the follower's holder is killed", async () => {
    const payer = await network.newAccount("1000");
    const { merchant, account } = await newMerchant(db.pool, network);
    const children = [spawnIngester(), spawnIngester()];
    const holder = () => advisoryLockHolder(db.pool, followerLockKey(network.networkPassphrase), children);
    const payAndConfirm = async () => {
      const payment = await newPayment(merchant, "1");
      await network.pay({ from: payer, to: account, amount: "1", memo: Memo.id(payment.memo!.value) });
      await waitFor(async () => (await statusOf(payment.id)) === "confirmed", "a confirmation");
      return payment.id;
    };
    const first = await waitFor(holder, "a follower");
    await waitFor(async () => (await db.pool.query("select 1 from followed_accounts where account = $1 and catch_up_ledger is null", [account])).rowCount === 1, "the account watched");
    const paid = [await payAndConfirm()];
    first.kill("SIGKILL");
    paid.push(await payAndConfirm());
    const second = await waitFor(holder, "the takeover");
    expect(second).not.toBe(first);
    paid.push(await payAndConfirm());
    for (const id of paid) expect(await confirmations(id)).toBe(1);
  });

  it("never skips ledgers the RPC server dropped: it alerts, waits, and `backfill` fills them from Horizon", async () => {
    // A network whose RPC keeps only its last ledgers (every submission closes one, so a few payments push old
    // ones out), and a database for its follower alone: the helpers above use these for this test.
    const shared = { db, network };
    db = await createTestDatabase();
    network = await startLocalHorizon({ rpcPort: 0, rpcRetentionLedgers: RETAINED_LEDGERS });
    cleanups.unshift(async () => {
      await network.close();
      await db.drop();
      ({ db, network } = shared);
    });
    const payer = await network.newAccount("1000");
    const { merchant, account } = await newMerchant(db.pool, network);
    const first = start();
    await waitFor(async () => (await db.pool.query("select 1 from followed_accounts where account = $1 and catch_up_ledger is null", [account])).rowCount === 1, "the account watched");
    await first.stop();
    const stoppedAt = (await followerLedger())!;

    // While ingestion is down, more ledgers close than the RPC server keeps; the payment is in the lost ones.
    const lost = await newPayment(merchant, "4");
    await network.pay({ from: payer, to: account, amount: "4", memo: Memo.id(lost.memo!.value) });
    for (let i = 0; i < RETAINED_LEDGERS + 2; i++) await network.fund(Keypair.random().publicKey(), "1");

    const second = start();
    await waitFor(async () => ((await metricValue(second.metrics, "ingest_retention_gap_ledgers", {})) ?? 0) > 0, "the gap metric");
    expect(second.errors.some((e) => e.includes("lumenpay ingest backfill"))).toBe(true);
    expect(await followerLedger()).toBe(stoppedAt);
    expect(await statusOf(lost.id)).toBe("pending");

    const source = createRpcSource({ url: network.rpcUrl!, networkPassphrase: network.networkPassphrase, registry: createMetrics(db.pool).registry });
    cleanups.push(() => source.close());
    const deps = { pool: db.pool, source, horizonUrl: network.url, networkPassphrase: network.networkPassphrase, links: links(), clock: systemClock, log: { info: () => undefined, warn: () => undefined }, apply: applyIncoming };
    const filled = await backfillFromHorizon(deps);
    expect(filled).toEqual([expect.objectContaining({ position: "follower", fromLedger: stoppedAt + 1, operations: expect.any(Number) })]);
    expect(await statusOf(lost.id)).toBe("confirmed");
    await waitFor(async () => (await metricValue(second.metrics, "ingest_retention_gap_ledgers", {})) === 0, "the gap closed");
    // Nothing left to fill, and filling again changes nothing.
    expect(await backfillFromHorizon(deps)).toEqual([]);
    expect(await confirmations(lost.id)).toBe(1);

    // An account whose catch-up starts before the window, but which needs nothing from before it (attached
    // after the oldest kept ledger closed), is no gap: it skips the dropped ledgers and joins the follower.
    await second.stop();
    const late = await newMerchant(db.pool, network);
    await db.pool.query(
      `insert into followed_accounts (network_passphrase, account, since, catch_up_ledger)
       select $1, account, date_trunc('second', created_at), 1 from merchant_accounts where account = $2`,
      [network.networkPassphrase, late.account],
    );
    const third = start();
    await waitFor(async () => (await db.pool.query("select 1 from followed_accounts where account = $1 and catch_up_ledger is null", [late.account])).rowCount === 1, "the late account's catch-up");
    expect(await metricValue(third.metrics, "ingest_retention_gap_ledgers", {})).toBe(0);
    expect(third.errors).toEqual([]);
  });
});

/** An RPC ingestion process, as a second server instance would run it; SIGTERM stops it cleanly. */
const INGESTER = `
import { loadConfig } from ${sourceModule("config.ts")};
import { createPool } from ${sourceModule("db/pool.ts")};
import { createLogger } from ${sourceModule("logger.ts")};
import { createMetrics } from ${sourceModule("metrics/registry.ts")};
import { applyIncoming } from ${sourceModule("payments/settlement.ts")};
import { startFollowerIngestion } from ${sourceModule("stellar/follower.ts")};
import { createLedgerSource } from ${sourceModule("stellar/sources.ts")};
const config = loadConfig(process.env);
const pool = createPool(config.databaseUrl, { ...config.db, poolMin: 0 });
const controller = new AbortController();
process.on("SIGTERM", () => controller.abort());
const metrics = createMetrics(pool);
const log = createLogger("warn");
const { done } = startFollowerIngestion({
  pool, connectionString: config.databaseUrl, source: createLedgerSource(config, { registry: metrics.registry, log }), networkPassphrase: config.stellar.networkPassphrase,
  links: { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase },
  clock: { now: () => new Date() }, log, metrics, signal: controller.signal,
  apply: applyIncoming, pollMs: 20, pollAccountsMs: 100,
});
await done;
await pool.end();
`;

function spawnIngester(): ChildProcess {
  return spawnScript(INGESTER, {
      DATABASE_URL: db.url,
      STELLAR_NETWORK: "custom",
      STELLAR_NETWORK_PASSPHRASE: network.networkPassphrase,
      HORIZON_URL: network.url,
      STELLAR_RPC_URL: network.rpcUrl!,
      DETECTION_SOURCE: "rpc",
    }, cleanups);
}
