/**
 * bench/ingest: payment detection on the local network, which serves Horizon and Stellar RPC from one
 * chain in this process: Horizon streams (ingest.ts: a catch-up and a stream per account, per-account
 * cursors) and the ledger follower (follower.ts: each range of ledgers read once for every account, one
 * position) reading Stellar RPC (rpc-source.ts) or Horizon (horizon-source.ts).
 *
 * 1. Catch-up of BENCH_INGEST_RECORDS (default 20 000) payments to one account, each matched to a pending
 *    payment and confirmed, from a stored position, by Horizon streams and by the follower reading RPC,
 *    each into a database of its own; beside each, fetching the same data without the database:
 *    Horizon's pages through the SDK, and the RPC source's getEvents pages and getTransaction calls
 *    (same filters, ranges, page size and concurrency); and, for RPC, decoding what was fetched
 *    (eventRecipient, incomingFromEvent) alone. DB round trips are the queries of every connection.
 * 2. By the number of watched accounts, 1, 100 or 10 000 (merchants and accounts inserted in SQL):
 *    BENCH_INGEST_FOLLOW_RECORDS (default 2 000) payments spread evenly over the first min(N, 100)
 *    accounts, FOLLOW_PER_LEDGER to a ledger, with FOLLOW_BACKGROUND payments to other accounts per such
 *    ledger as the network's other traffic (what reading every credit reads too): the time to confirm
 *    them all from a stored position by the follower reading each source, and by Horizon streams (10 000
 *    of them only if they finish within a minute), with the RPC follower's getEvents calls per range.
 *    100 accounts run through RPC naming them (maxNamedRequests raised) and reading every credit (0, and
 *    the default's choice), to show the crossover. Then the follower's first start with 10 000 accounts
 *    it has never seen, per source: the time until they are watched.
 *
 * BENCH_INGEST_PROFILE=<file.cpuprofile> writes a V8 CPU profile of the RPC catch-up of part 1 (its
 * figures then include the profiler's overhead).
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { Horizon, Keypair, Memo, StrKey } from "@stellar/stellar-sdk";
import { systemClock } from "../../packages/server/src/clock.js";
import { loadConfig } from "../../packages/server/src/config.js";
import { createLogger } from "../../packages/server/src/logger.js";
import { createMetrics } from "../../packages/server/src/metrics/registry.js";
import { applyIncoming, applyPaymentRecord, type SettlementOutcome } from "../../packages/server/src/payments/settlement.js";
import { startFollowerIngestion } from "../../packages/server/src/stellar/follower.js";
import { initFollower, insertFollowedAccounts } from "../../packages/server/src/stellar/follower-store.js";
import { createHorizonSource, DEFAULT_MAX_NAMED_ACCOUNTS } from "../../packages/server/src/stellar/horizon-source.js";
import { startPaymentIngestion } from "../../packages/server/src/stellar/ingest.js";
import { startLocalHorizon, type LocalHorizon } from "../../packages/server/src/stellar/local-horizon/index.js";
import { createRpcClient, type RpcEvent, type RpcTransaction } from "../../packages/server/src/stellar/rpc-client.js";
import { eventFilters, eventRecipient, getEventsCallsNeeded, incomingFromEvent } from "../../packages/server/src/stellar/rpc-operations.js";
import { createRpcSource, DEFAULT_MAX_NAMED_REQUESTS } from "../../packages/server/src/stellar/rpc-source.js";
import { createBenchDatabase, type BenchDatabase } from "../support/db.js";
import { countQueries, type QueryCount, rpcRequests, seedMerchantAccounts, seedPayments, type SeededPayment } from "../support/ingest.js";
import { benchInt } from "../support/env.js";

// 50 000 (the size before RPC) takes the whole benchmark past four minutes: the RPC catch-up runs at a third of Horizon's rate.
const COUNT = benchInt("BENCH_INGEST_RECORDS", 20_000);
const FOLLOW_COUNT = benchInt("BENCH_INGEST_FOLLOW_RECORDS", 2_000);
const PROFILE = process.env.BENCH_INGEST_PROFILE;
/** Horizon's page; the follower's range (follower.ts), getEvents page and getTransaction concurrency (rpc-source.ts). */
const PAGE = 200;
const RANGE = 100;
const EVENTS_PAGE = 1_000;
const TRANSACTION_FETCHES = 8;
/** Part 2's ledgers: few payments each, as a merchant's are spread over the network's ledgers. */
const FOLLOW_PER_LEDGER = 5;
/** Credits to accounts nobody watches per such ledger, as the network's other traffic: what reading every credit also reads. */
const FOLLOW_BACKGROUND = benchInt("BENCH_INGEST_FOLLOW_BACKGROUND", 50, { min: 0 });
const PAID_ACCOUNTS = 100;
const MANY_ACCOUNTS = 10_000;
const TIMEOUT_MS = 240_000;
const STREAMS_TIMEOUT_MS = 60_000;

const config = loadConfig({ LOG_LEVEL: "silent" });
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const rate = (records: number, ms: number) => `${((records * 1000) / ms).toFixed(0).padStart(7)} records/s  (${records} in ${seconds(ms)} s)`;
const label = (text: string) => text.padEnd(52);
/** An address no one holds a key for: payments to it create it, which is all these accounts need. */
const randomAccount = () => StrKey.encodeEd25519PublicKey(randomBytes(32));
const ledgerOf = (pagingToken: string) => Number(BigInt(pagingToken) >> 32n);

/** Payments on a chain, and where a stored position starts so that they are all still to ingest. */
interface Chain {
  net: LocalHorizon;
  payments: Array<{ account: string; memo: string }>;
  /** The follower's position: the last ledger before the chain's payments (and background). */
  fromLedger: number;
  /** Horizon's cursor: the last paging token of that ledger. */
  fromToken: string;
  /** The ledger of the last payment, the chain's last. */
  lastLedger: number;
  /** Before the chain's first payment: when the merchants and payments are dated. */
  before: Date;
}

interface ChainShape {
  /** Paid in turn, `block` payments at a time, with id memos 1, 2, … per account. */
  accounts: string[];
  count: number;
  perLedger: number;
  block: number;
  /** Payments to accounts nobody watches, per ledger of `perLedger`: before each block, in a ledger of their own. */
  background: number;
}

/** Payments of 1 XLM as `shape` says (generatePayments pays one account per call, its ledgers ending with the call). */
async function buildChain(shape: ChainShape): Promise<Chain> {
  const { accounts, count, perLedger, block, background } = shape;
  const net = await startLocalHorizon({ rpcPort: 0 });
  const before = new Date(Date.now() - 60_000);
  const from = Keypair.random();
  const other = Keypair.random();
  const blockBackground = (background * block) / perLedger;
  const perAccount = count / accounts.length;
  await net.fund(from.publicKey(), String(count * 2));
  const { ledger: fromLedger } = await net.fund(other.publicKey(), String((perAccount / block) * accounts.length * blockBackground * 2 + 1));
  const payments: Chain["payments"] = [];
  let last = "";
  for (let b = 0; b < perAccount / block; b++) {
    for (const account of accounts) {
      if (blockBackground > 0) await net.generatePayments(randomAccount(), blockBackground, { from: other, amount: "1", perLedger: blockBackground });
      const memo = (i: number) => String(b * block + i + 1);
      last = (await net.generatePayments(account, block, { from, amount: "1", memo: (i) => Memo.id(memo(i)), perLedger })).lastPagingToken;
      for (let i = 0; i < block; i++) payments.push({ account, memo: memo(i) });
    }
  }
  // The local RPC derives the events of the whole chain on the first getEvents (~0.2 ms a transaction): not for a measurement to pay.
  const rpc = createRpcClient({ url: net.rpcUrl!, timeoutMs: 300_000 });
  await rpc.getEvents({ startLedger: ledgerOf(last), filters: [], limit: 1 });
  await rpc.close();
  return { net, payments, fromLedger, fromToken: ((BigInt(fromLedger + 1) << 32n) - 1n).toString(), lastLedger: ledgerOf(last), before };
}

/** A fresh database with a merchant per watched account and the chain's payments pending. */
async function seedDatabase(chain: Chain, watched: string[]): Promise<BenchDatabase> {
  const db = await createBenchDatabase();
  const merchantIds = await seedMerchantAccounts(db.pool, watched, chain.before);
  const merchantOf = new Map(watched.map((account, i) => [account, merchantIds[i]!]));
  const payments: SeededPayment[] = chain.payments.map((p) => ({ ...p, merchantId: merchantOf.get(p.account)! }));
  await seedPayments(db.pool, payments, chain.before);
  // Statistics for the tables just filled, as a running instance would have them.
  await db.pool.query("analyze payments; analyze merchant_accounts");
  return db;
}

interface Run {
  ms: number;
  /** Queries sent by every connection of the process while it ran, and the time one was outstanding. */
  db: QueryCount;
  /** RPC requests by method (the follower only). */
  calls: Map<string, number>;
}

/** Resolves once `until` says so of the outcomes observed after their commits; rejects on a logged error or after `timeoutMs`. */
function outcomesWatcher(until: (applied: number) => boolean, timeoutMs = TIMEOUT_MS) {
  let applied = 0;
  let settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const finished = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  const timer = setTimeout(() => settle!.reject(new Error(`ingestion applied ${applied} operations within ${timeoutMs} ms`)), timeoutMs);
  const check = () => {
    if (until(applied)) settle!.resolve();
  };
  return {
    finished: finished.finally(() => clearTimeout(timer)),
    observe(outcome: SettlementOutcome) {
      if (outcome.kind === "applied") applied++;
      check();
    },
    fail: (message: string) => settle!.reject(new Error(message)),
    check,
  };
}

type SourceName = "rpc" | "horizon";

interface SourceOptions {
  /** RPC: named getEvents requests a range may take before every credit is read (createRpcSource's default: 4). */
  maxNamedRequests?: number;
}

/**
 * The ledger follower over `db`, reading `source`, from the position already stored (or none), until
 * `expected` payments are confirmed; with `expected` 0, until its first sync has watched the new accounts.
 */
async function follow(
  chain: Chain,
  db: BenchDatabase,
  source: SourceName,
  expected: number,
  options: SourceOptions = {},
  profile?: Session,
): Promise<Run & { syncedMs?: number }> {
  const metrics = createMetrics(db.pool);
  const controller = new AbortController();
  let syncedMs: number | undefined;
  const watcher = outcomesWatcher((applied) => (expected === 0 ? syncedMs !== undefined : applied === expected));
  const log = {
    info(_obj: object, msg: string) {
      if (msg.startsWith("watching new accounts")) syncedMs ??= performance.now() - started;
      watcher.check();
    },
    warn: () => undefined,
    error: (obj: object, msg: string) => watcher.fail(`${msg}: ${String((obj as { err?: unknown }).err)}`),
  };
  const { networkPassphrase } = chain.net;
  const queries = countQueries();
  const started = performance.now();
  const ingestion = startFollowerIngestion({
    pool: db.pool,
    connectionString: db.url,
    source:
      source === "rpc"
        ? createRpcSource({ url: chain.net.rpcUrl!, networkPassphrase, registry: metrics.registry, maxNamedRequests: options.maxNamedRequests })
        : createHorizonSource({ url: chain.net.url, log }),
    networkPassphrase,
    links: { publicBaseUrl: config.publicBaseUrl, networkPassphrase },
    clock: systemClock,
    log,
    metrics,
    signal: controller.signal,
    apply: applyIncoming,
    observe: watcher.observe,
    pollMs: 50,
  });
  try {
    await watcher.finished;
    const ms = performance.now() - started;
    const counted = queries.stop();
    if (profile) await writeFile(PROFILE!, JSON.stringify((await profile.post("Profiler.stop")).profile));
    return { ms, db: counted, calls: await rpcRequests(metrics), syncedMs };
  } finally {
    controller.abort();
    queries.stop();
    await ingestion.done;
  }
}

/** Horizon ingestion over `db` from the stored cursors until `expected` payments are confirmed. */
async function followHorizon(chain: Chain, db: BenchDatabase, expected: number, timeoutMs?: number): Promise<Run> {
  const controller = new AbortController();
  const watcher = outcomesWatcher((applied) => applied === expected, timeoutMs);
  const queries = countQueries();
  const started = performance.now();
  const ingestion = startPaymentIngestion({
    config,
    pool: db.pool,
    connectionString: db.url,
    clock: systemClock,
    log: createLogger("silent"),
    metrics: createMetrics(db.pool),
    signal: controller.signal,
    apply: applyPaymentRecord,
    observe: watcher.observe,
    horizonUrl: chain.net.url,
    networkPassphrase: chain.net.networkPassphrase,
  });
  try {
    await watcher.finished;
    return { ms: performance.now() - started, db: queries.stop(), calls: new Map<string, number>() };
  } finally {
    controller.abort();
    queries.stop();
    await ingestion.done;
  }
}

/** The follower's position as a running instance leaves it: at the ledger before the chain, covering every account. */
async function storeFollowerPosition(chain: Chain, db: BenchDatabase, watched: string[]): Promise<void> {
  const { networkPassphrase } = chain.net;
  await initFollower(db.pool, networkPassphrase, chain.fromLedger, new Date());
  await insertFollowedAccounts(
    db.pool,
    networkPassphrase,
    watched.map((account) => ({ account, since: chain.before, afterOperation: 0n, catchUpLedger: null })),
  );
}

async function storeHorizonCursors(chain: Chain, db: BenchDatabase, watched: string[]): Promise<void> {
  await db.pool.query(
    "insert into stellar_cursors (network_passphrase, account, paging_token) select $1, account, $3 from unnest($2::text[]) as t(account)",
    [chain.net.networkPassphrase, watched, chain.fromToken],
  );
}

/** Baseline: the same Horizon pages through the same SDK, parsed and counted, nothing else. */
async function horizonFetchOnly(chain: Chain, account: string): Promise<{ ms: number; records: number }> {
  const server = new Horizon.Server(chain.net.url, { allowHttp: true });
  const started = performance.now();
  let records = 0;
  let page = await server.payments().forAccount(account).cursor(chain.fromToken).limit(PAGE).join("transactions").call();
  for (;;) {
    records += page.records.length;
    if (page.records.length < PAGE) break;
    page = await page.next();
  }
  return { ms: performance.now() - started, records };
}

/**
 * Baseline: the follower's requests for one account without the database: per range of RANGE ledgers
 * its getEvents pages, then a getTransaction per transaction, TRANSACTION_FETCHES at a time.
 */
async function rpcFetchOnly(chain: Chain, account: string) {
  const rpc = createRpcClient({ url: chain.net.rpcUrl! });
  const filters = eventFilters([account], [], chain.net.networkPassphrase);
  const events: RpcEvent[] = [];
  const transactions = new Map<string, RpcTransaction>();
  const calls = { getEvents: 0, getTransaction: 0 };
  const started = performance.now();
  for (let position = chain.fromLedger; position < chain.lastLedger; position += RANGE) {
    const to = Math.min(chain.lastLedger, position + RANGE);
    const inRange: RpcEvent[] = [];
    for (const request of filters) {
      calls.getEvents++;
      let page = await rpc.getEvents({ startLedger: position + 1, endLedger: to + 1, filters: request, limit: EVENTS_PAGE });
      for (;;) {
        const kept = page.events.filter((e) => e.ledger <= to);
        inRange.push(...kept);
        if (page.events.length < EVENTS_PAGE || kept.length < page.events.length) break;
        calls.getEvents++;
        page = await rpc.getEvents({ filters: request, cursor: page.cursor, limit: EVENTS_PAGE });
      }
    }
    const hashes = [...new Set(inRange.map((e) => e.txHash))];
    for (let i = 0; i < hashes.length; i += TRANSACTION_FETCHES) {
      await Promise.all(
        hashes.slice(i, i + TRANSACTION_FETCHES).map(async (hash) => {
          calls.getTransaction++;
          const tx = await rpc.getTransaction(hash);
          if (tx.status === "NOT_FOUND") throw new Error(`no transaction ${hash}`);
          transactions.set(hash, tx);
        }),
      );
    }
    events.push(...inRange);
  }
  const ms = performance.now() - started;
  await rpc.close();
  return { ms, events, transactions, calls };
}

/** Baseline: what the follower decodes of the fetched data (the recipient of each event, then the operation from its envelope). */
function rpcDecodeOnly(chain: Chain, account: string, events: RpcEvent[], transactions: Map<string, RpcTransaction>): { ms: number; payments: number } {
  const started = performance.now();
  let payments = 0;
  for (const event of events) {
    if (eventRecipient(event) !== account) continue;
    const op = incomingFromEvent(event, transactions.get(event.txHash)!, account, chain.net.networkPassphrase);
    if (!("ignored" in op)) payments++;
  }
  return { ms: performance.now() - started, payments };
}

const percent = (part: number, whole: number) => `${((part / whole) * 100).toFixed(1)} %`;
const database = (run: Run, records: number) =>
  `${run.db.queries} DB round trips (${(run.db.queries / records).toFixed(3)} per record), a query outstanding ${percent(run.db.busyMs, run.ms)} of the time`;
const callsOf = (run: Run, method: string) => run.calls.get(method) ?? 0;

/** Part 1: one account's catch-up through each source, against fetching the same data alone. */
async function catchUp(): Promise<void> {
  const setupStarted = performance.now();
  const account = randomAccount();
  const chain = await buildChain({ accounts: [account], count: COUNT, perLedger: 100, block: COUNT, background: 0 });
  const horizonDb = await seedDatabase(chain, [account]);
  const rpcDb = await seedDatabase(chain, [account]);
  try {
    console.log(`setup: ${COUNT} on-chain payments, and ${COUNT} pending payments in each source's database, in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);

    const horizonFetch = await horizonFetchOnly(chain, account);
    await storeHorizonCursors(chain, horizonDb, [account]);
    const horizon = await followHorizon(chain, horizonDb, COUNT);

    const rpcFetch = await rpcFetchOnly(chain, account);
    const decode = rpcDecodeOnly(chain, account, rpcFetch.events, rpcFetch.transactions);
    await storeFollowerPosition(chain, rpcDb, [account]);
    let profile: Session | undefined;
    if (PROFILE) {
      profile = new Session();
      profile.connect();
      await profile.post("Profiler.enable");
      await profile.post("Profiler.start");
    }
    const rpc = await follow(chain, rpcDb, "rpc", COUNT, {}, profile);
    if (horizonFetch.records !== COUNT || rpcFetch.events.length !== COUNT || decode.payments !== COUNT) {
      throw new Error(`expected ${COUNT} records, fetched ${horizonFetch.records} from Horizon and ${rpcFetch.events.length} events (${decode.payments} payments) from RPC`);
    }

    console.log(`catch-up of ${COUNT} records to one account over ${chain.lastLedger - chain.fromLedger} ledgers, Horizon pages of ${PAGE}, RPC ranges of ${RANGE} ledgers`);
    console.log(`${label("horizon ingest: fetch, match, confirm, commit")} ${rate(COUNT, horizon.ms)}`);
    console.log(`${label("horizon fetch and parse the same pages only")} ${rate(COUNT, horizonFetch.ms)}`);
    console.log(`horizon: ${percent(horizonFetch.ms, horizon.ms)} of its fetch-only rate; ${database(horizon, COUNT)}`);
    console.log(`${label("rpc ingest: scan, fetch transactions, match, commit")} ${rate(COUNT, rpc.ms)}`);
    console.log(`${label("rpc getEvents and getTransaction calls only")} ${rate(COUNT, rpcFetch.ms)}`);
    console.log(`${label("rpc decoding the fetched events only")} ${rate(COUNT, decode.ms)}`);
    console.log(`rpc: ${percent(rpcFetch.ms, rpc.ms)} of its fetch-only rate; ${database(rpc, COUNT)}`);
    console.log(
      `rpc requests: getEvents ${callsOf(rpc, "getEvents")}, getTransaction ${callsOf(rpc, "getTransaction")}, getHealth ${callsOf(rpc, "getHealth")}; ` +
        `fetch-only: getEvents ${rpcFetch.calls.getEvents}, getTransaction ${rpcFetch.calls.getTransaction}`,
    );
    console.log(`rpc against horizon: ingest ${percent(horizon.ms, rpc.ms)} of Horizon's rate, fetch-only ${percent(horizonFetch.ms, rpcFetch.ms)}`);
  } finally {
    await chain.net.close();
    await horizonDb.close();
    await rpcDb.close();
  }
}

/** Part 2: by the number of accounts watched, the follower reading each source, and Horizon streams. */
async function byAccounts(): Promise<void> {
  const setupStarted = performance.now();
  const one = [randomAccount()];
  const hundred = Array.from({ length: PAID_ACCOUNTS }, randomAccount);
  const many = [...hundred, ...Array.from({ length: MANY_ACCOUNTS - PAID_ACCOUNTS }, randomAccount)];
  const shape = { count: FOLLOW_COUNT, perLedger: FOLLOW_PER_LEDGER, block: FOLLOW_COUNT / PAID_ACCOUNTS, background: FOLLOW_BACKGROUND };
  const oneChain = await buildChain({ ...shape, accounts: one });
  const hundredChain = await buildChain({ ...shape, accounts: hundred });
  try {
    const ledgers = hundredChain.lastLedger - hundredChain.fromLedger;
    const ranges = Math.ceil(ledgers / RANGE);
    console.log(
      `setup: ${FOLLOW_COUNT} payments over the first min(N, ${PAID_ACCOUNTS}) of N accounts, ${FOLLOW_PER_LEDGER} to a ledger, ` +
        `and ${FOLLOW_BACKGROUND} to other accounts per such ledger: ${ledgers} ledgers, ${ranges} ranges, in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`,
    );
    const rows: string[] = [];
    const row = (name: string, mode: string, run: Run) =>
      rows.push(`${name.padEnd(49)} ${mode.padEnd(37)} ${rate(FOLLOW_COUNT, run.ms)}  ${String(run.db.queries).padStart(5)} DB round trips`);
    const measure = async (name: string, chain: Chain, watched: string[], source: SourceName | "streams", options: SourceOptions = {}) => {
      const db = await seedDatabase(chain, watched);
      try {
        if (source === "streams") {
          await storeHorizonCursors(chain, db, watched);
          const mode = `${watched.length} catch-ups and streams`;
          // 10 000 streams are run only if they finish within a minute.
          const run = await followHorizon(chain, db, FOLLOW_COUNT, STREAMS_TIMEOUT_MS).catch((error: Error) => error);
          if (run instanceof Error) rows.push(`${name.padEnd(49)} ${mode.padEnd(37)} not completed within ${STREAMS_TIMEOUT_MS / 1000} s: ${run.message}`);
          else row(name, mode, run);
          return;
        }
        await storeFollowerPosition(chain, db, watched);
        const run = await follow(chain, db, source, FOLLOW_COUNT, options);
        const mode =
          source === "horizon"
            ? watched.length <= DEFAULT_MAX_NAMED_ACCOUNTS
              ? `each account's payments`
              : "the network's payments"
            : `${getEventsCallsNeeded(watched.length, []) <= (options.maxNamedRequests ?? DEFAULT_MAX_NAMED_REQUESTS) ? "named" : "every credit"}, ` +
              `${(callsOf(run, "getEvents") / ranges).toFixed(1)} getEvents per range`;
        row(name, mode, run);
      } finally {
        await db.close();
      }
    };
    await measure("rpc follower, 1 account", oneChain, one, "rpc");
    await measure("rpc follower, 100 accounts, maxNamedRequests 100", hundredChain, hundred, "rpc", { maxNamedRequests: 100 });
    await measure("rpc follower, 100 accounts, maxNamedRequests 0", hundredChain, hundred, "rpc", { maxNamedRequests: 0 });
    await measure("rpc follower, 10000 accounts", hundredChain, many, "rpc");
    await measure("horizon follower, 1 account", oneChain, one, "horizon");
    await measure("horizon follower, 100 accounts", hundredChain, hundred, "horizon");
    await measure("horizon follower, 10000 accounts", hundredChain, many, "horizon");
    await measure("horizon streams, 1 account", oneChain, one, "streams");
    await measure("horizon streams, 100 accounts", hundredChain, hundred, "streams");
    await measure("horizon streams, 10000 accounts", hundredChain, many, "streams");
    console.log(`follow ${FOLLOW_COUNT} payments from a stored position`);
    for (const line of rows) console.log(line);
    console.log(
      `(100 accounts take ${getEventsCallsNeeded(PAID_ACCOUNTS, [])} named getEvents requests a range: ` +
        `more than the default maxNamedRequests, ${DEFAULT_MAX_NAMED_REQUESTS}, so by default the follower reads every credit, as with 0)`,
    );

    // First start over accounts the follower has never seen: reachBackSince for all in one statement, where each
    // starts (RPC: estimated from close times; Horizon: a search of each account's payments), then one insert.
    for (const source of ["rpc", "horizon"] as const) {
      const db = await seedDatabase(hundredChain, many);
      try {
        const run = await follow(hundredChain, db, source, 0);
        console.log(`${source} follower's first start with ${MANY_ACCOUNTS} new accounts: watching them after ${run.syncedMs!.toFixed(0)} ms, ${run.db.queries} DB round trips`);
      } finally {
        await db.close();
      }
    }
  } finally {
    await oneChain.net.close();
    await hundredChain.net.close();
  }
}

export async function run(): Promise<void> {
  await catchUp();
  await byAccounts();
}
