import { Account, Asset, Horizon, Keypair, Memo, MuxedAccount, Operation, TransactionBuilder } from "@stellar/stellar-sdk";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createMetrics, type Metrics } from "../src/metrics/registry.js";
import { applyIncoming, applyPaymentRecord, type SettlementOutcome } from "../src/payments/settlement.js";
import { startFollowerIngestion } from "../src/stellar/follower.js";
import { createHorizonSource } from "../src/stellar/horizon-source.js";
import type { LedgerSource } from "../src/stellar/ledger-source.js";
import { createRpcClient } from "../src/stellar/rpc-client.js";
import { createRpcSource } from "../src/stellar/rpc-source.js";
import { useChainApp } from "./support/chain.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startIngestion, storedCursor } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";

/**
 * Every way of detecting payments — Horizon streams per account, and the ledger follower reading Stellar
 * RPC's CAP-67 events or Horizon's payment lists, naming accounts or reading the whole network — leaves
 * the same payments, settlements, events and unmatched operations behind for the same chain.
 */

const chain = useChainApp("2026-09-01T10:00:00.000Z", { rpc: true, paymentDefaults: { asset: "XLM", expires_in: 60 } });
const { clock, merchant, createPayment } = chain;
const databases: TestDatabase[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  for (const db of databases) await db.drop();
});

async function copyOfApp(): Promise<TestDatabase> {
  const db = await createTestDatabase({ copyOf: chain.t.db });
  databases.push(db);
  return db;
}

/** The ledger follower in this process over `db`, reading `source`; `outcomes` collects what it committed. */
function startFollower(db: TestDatabase, source: (metrics: Metrics) => LedgerSource) {
  const controller = new AbortController();
  const metrics = createMetrics(db.pool);
  const outcomes: SettlementOutcome[] = [];
  const logs: string[] = [];
  const ingestion = startFollowerIngestion({
    pool: db.pool,
    connectionString: db.url,
    source: source(metrics),
    networkPassphrase: chain.horizon.networkPassphrase,
    links: chain.links(),
    clock,
    log: { info: () => undefined, warn: () => undefined, error: (_obj, msg) => logs.push(msg) },
    metrics,
    signal: controller.signal,
    apply: applyIncoming,
    observe: (outcome) => outcomes.push(outcome),
    pollMs: 20,
    pollAccountsMs: 100,
  });
  const stop = () => {
    controller.abort();
    return ingestion.done;
  };
  cleanups.push(stop);
  return { metrics, outcomes, logs, stop };
}

async function latestLedger(): Promise<number> {
  const rpc = createRpcClient({ url: chain.horizon.rpcUrl! });
  try {
    return (await rpc.getLatestLedger()).sequence;
  } finally {
    await rpc.close();
  }
}

/** Resolves once the follower has applied every closed ledger and no account is catching up. */
async function followerCaughtUp(db: TestDatabase) {
  const latest = await latestLedger();
  await waitFor(async () => {
    const { rows } = await db.pool.query<{ ledger: number; behind: string }>(
      "select (select ledger from ledger_followers) as ledger, (select count(*) from followed_accounts where catch_up_ledger is not null) as behind",
    );
    return rows[0]!.ledger >= latest && rows[0]!.behind === "0";
  }, "the follower to catch up");
}

/** Resolves once Horizon ingestion's cursor of every account is at its last payment record. */
async function horizonCaughtUp(db: TestDatabase, accounts: string[]) {
  const server = new Horizon.Server(chain.horizon.url, { allowHttp: true });
  for (const account of accounts) {
    const last = (await server.payments().forAccount(account).order("desc").limit(1).call()).records[0]!.paging_token;
    await waitFor(async () => (await storedCursor(db.pool, chain.horizon.networkPassphrase, account)) === last, `Horizon ingestion of ${account}`);
  }
}

/** Everything ingestion writes, in a stable order; `tx_id` (which transaction wrote an event) is the database's own. */
async function ingested(db: TestDatabase) {
  const rows = async (sql: string) => (await db.pool.query(sql)).rows;
  return {
    payments: await rows("select * from payments order by id"),
    settlements: await rows("select * from payment_settlements order by operation_id"),
    events: await rows("select id, merchant_id, type, payment_id, sequence, body, created_at from events order by id"),
    unmatched: await rows("select * from unmatched_payments order by id"),
  };
}

/** Signs and submits one transaction of `ops` from `source`, with `memo`. */
async function submit(source: Keypair, ops: ReturnType<typeof Operation.payment>[], memo?: Memo) {
  const builder = new TransactionBuilder(await chain.server.loadAccount(source.publicKey()), { fee: "100", networkPassphrase: chain.horizon.networkPassphrase });
  for (const op of ops) builder.addOperation(op);
  if (memo) builder.addMemo(memo);
  const tx = builder.setTimeout(0).build();
  tx.sign(source);
  return chain.horizon.submit(tx);
}

describe("every detection source and mode", () => {
  it("leaves exactly what Horizon stream ingestion leaves, ids included, over every kind of payment", async () => {
    const { horizon, payer } = chain;
    const issuer = await horizon.newAccount("10");
    const usd = new Asset("USD", issuer.publicKey());
    const eur = new Asset("EUR", issuer.publicKey());
    await horizon.pay({ from: issuer, to: payer.publicKey(), amount: "1000", asset: eur });
    const m = await merchant({ accepted_assets: ["XLM", { code: "USD", issuer: issuer.publicKey() }] });
    const pay = (amount: string, memo?: Memo, extra: { to?: string; asset?: Asset; from?: Keypair } = {}) =>
      horizon.pay({ from: extra.from ?? payer, to: extra.to ?? m.account, amount, memo, asset: extra.asset });

    const byId = await createPayment(m, { amount: "5" });
    await pay("5", Memo.id(byId.memo));
    const byText = await createPayment(m, { amount: "10", memo_type: "text", memo: "Grüße #42" });
    await pay("4", Memo.text("Grüße #42"));
    await pay("6", Memo.text("Grüße #42"));
    const hash = "ab".repeat(32);
    const byHash = await createPayment(m, { amount: "3", memo_type: "hash", memo: hash });
    await pay("3", Memo.return(hash));
    const over = await createPayment(m, { amount: "1" });
    await pay("1.5", Memo.id(over.memo));
    const muxed = await createPayment(m, { amount: "2", muxed: true });
    await pay("2", Memo.text("ignored beside a muxed id"), { to: new MuxedAccount(new Account(m.account, "0"), muxed.muxed_id).accountId() });
    await pay("2", undefined, { to: new MuxedAccount(new Account(m.account, "0"), "77").accountId() });
    const inUsd = await createPayment(m, { amount: "7", asset: { code: "USD", issuer: issuer.publicKey() } });
    await submit(
      payer,
      [Operation.pathPaymentStrictSend({ sendAsset: eur, sendAmount: "7", destination: m.account, destAsset: usd, destMin: "7", path: [] })],
      Memo.id(inUsd.memo),
    );
    const minted = await createPayment(m, { amount: "1", asset: { code: "USD", issuer: issuer.publicKey() } });
    await pay("1", Memo.id(minted.memo), { from: issuer, asset: usd });
    const strictReceive = await createPayment(m, { amount: "2.5" });
    await submit(
      payer,
      [Operation.pathPaymentStrictReceive({ sendAsset: eur, sendMax: "3", destination: m.account, destAsset: Asset.native(), destAmount: "2.5", path: [] })],
      Memo.id(strictReceive.memo),
    );
    await pay("1"); // no memo
    await pay("1", Memo.text("what is this")); // unknown memo
    await pay("1", Memo.id(byId.memo), { asset: eur }); // wrong asset
    const merged = await horizon.newAccount("3");
    await submit(merged, [Operation.accountMerge({ destination: m.account })], Memo.id(byId.memo));
    // A second merchant whose account is created after it was attached: its funding is no payment.
    const fresh = Keypair.random().publicKey();
    await merchant({ accounts: [fresh] });
    await horizon.fund(fresh, "5");
    const late = await createPayment(m, { amount: "2" });
    clock.advance(61_000);
    await pay("2", Memo.id(late.memo));

    const accounts = [m.account, fresh];
    const viaHorizon = await copyOfApp();
    const followers = {
      // Accounts named in getEvents filters, and every credit on the network matched locally.
      rpcNamed: (metrics: Metrics) => createRpcSource({ url: horizon.rpcUrl!, networkPassphrase: horizon.networkPassphrase, registry: metrics.registry }),
      rpcEveryCredit: (metrics: Metrics) =>
        createRpcSource({ url: horizon.rpcUrl!, networkPassphrase: horizon.networkPassphrase, registry: metrics.registry, maxNamedRequests: 0 }),
      // Each account's payments, and the network's.
      horizonNamed: () => createHorizonSource({ url: horizon.url, log: { warn: () => undefined } }),
      horizonNetwork: () => createHorizonSource({ url: horizon.url, log: { warn: () => undefined }, maxNamedAccounts: 0 }),
    };
    const h = startIngestion(viaHorizon, {
      apply: applyPaymentRecord,
      horizonUrl: horizon.url,
      networkPassphrase: horizon.networkPassphrase,
      clock,
      config: chain.t.config,
    });
    cleanups.push(h.stop);
    const followed = await Promise.all(
      Object.entries(followers).map(async ([name, source]) => {
        const db = await copyOfApp();
        return { name, db, run: startFollower(db, source) };
      }),
    );
    await horizonCaughtUp(viaHorizon, accounts);
    for (const { db } of followed) await followerCaughtUp(db);

    const expected = await ingested(viaHorizon);
    const status = Object.fromEntries(expected.payments.map((p) => [p.id, p.status]));
    expect(status).toMatchObject({
      [byId.id]: "confirmed",
      [byText.id]: "confirmed",
      [byHash.id]: "confirmed",
      [over.id]: "confirmed",
      [muxed.id]: "confirmed",
      [inUsd.id]: "confirmed",
      [minted.id]: "confirmed",
      [strictReceive.id]: "confirmed",
      [late.id]: "expired",
    });
    expect(expected.unmatched.map((u) => u.reason).sort()).toEqual(["no_memo", "unknown_memo", "unknown_memo", "wrong_asset"]);
    expect(expected.settlements.filter((s) => s.late)).toHaveLength(1);
    for (const { name, db, run } of followed) {
      expect({ name, ...(await ingested(db)) }).toEqual({ name, ...expected });
      expect(run.outcomes.filter((o) => o.kind === "applied")).toHaveLength(expected.settlements.length);
      expect(run.logs).toEqual([]);
    }
  });
});
