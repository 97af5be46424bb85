/**
 * bench/ingest: catching up 50 000 payment records from the local Horizon, each matched to a
 * pending payment and confirmed (settlement, event and cursor committed page by page), beside
 * merely fetching and parsing the same pages through the SDK in the same run.
 */
import { Horizon, Memo } from "@stellar/stellar-sdk";
import { systemClock } from "../../packages/server/src/clock.js";
import { loadConfig } from "../../packages/server/src/config.js";
import { newId } from "../../packages/server/src/ids.js";
import { createLogger } from "../../packages/server/src/logger.js";
import { createMerchant } from "../../packages/server/src/merchants/service.js";
import { createMetrics } from "../../packages/server/src/metrics/registry.js";
import { applyPaymentRecord } from "../../packages/server/src/payments/settlement.js";
import { startPaymentIngestion } from "../../packages/server/src/stellar/ingest.js";
import { startLocalHorizon } from "../../packages/server/src/stellar/local-horizon/index.js";
import { createBenchDatabase } from "../support/db.js";

const COUNT = Number(process.env.BENCH_INGEST_RECORDS ?? 50_000);
const PAGE = 200;

const rate = (records: number, ms: number) => `${((records * 1000) / ms).toFixed(0).padStart(7)} records/s  (${records} in ${(ms / 1000).toFixed(2)} s)`;

export async function run(): Promise<void> {
  const db = await createBenchDatabase();
  const horizon = await startLocalHorizon();
  const config = loadConfig({ LOG_LEVEL: "silent" });
  try {
    const account = (await horizon.newAccount("1")).publicKey();
    const { merchant } = await createMerchant(db.pool, { name: "Bench", email: "bench@example.test", accounts: [account] }, new Date());

    const setupStarted = performance.now();
    // Payment i waits for the on-chain payment with memo id i + 1. Inserted in one statement:
    // createPayment's four round trips each would make the setup longer than the measurement.
    await db.pool.query(
      `insert into payments (id, merchant_id, amount_stroops, asset_code, destination, memo_type, memo, expires_at, monitor_for_s)
       select id, $2, 10000000, 'XLM', $3, 'id', ordinality::text, now() + interval '1 hour', 86400
       from unnest($1::text[]) with ordinality as t(id)`,
      [Array.from({ length: COUNT }, () => newId("pay")), merchant.id, account],
    );
    const generated = await horizon.generatePayments(account, COUNT, { amount: "1", memo: (i) => Memo.id(String(i + 1)) });
    console.log(`setup: ${COUNT} payments and ${COUNT} on-chain records in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);
    const from = (BigInt(generated.firstPagingToken) - 1n).toString();

    // Baseline: the same pages through the same SDK, parsed and counted, nothing else.
    const server = new Horizon.Server(horizon.url, { allowHttp: true });
    const fetchStarted = performance.now();
    let fetched = 0;
    let page = await server.payments().forAccount(account).cursor(from).limit(PAGE).join("transactions").call();
    for (;;) {
      fetched += page.records.length;
      if (page.records.length < PAGE) break;
      page = await page.next();
    }
    const fetchMs = performance.now() - fetchStarted;

    await db.pool.query("insert into stellar_cursors (network_passphrase, account, paging_token) values ($1, $2, $3)", [
      horizon.networkPassphrase,
      account,
      from,
    ]);
    const controller = new AbortController();
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
      horizonUrl: horizon.url,
      networkPassphrase: horizon.networkPassphrase,
      pollAccountsMs: 50,
    });
    for (;;) {
      const { rows } = await db.pool.query<{ paging_token: string }>("select paging_token from stellar_cursors where account = $1", [account]);
      if (rows[0]?.paging_token === generated.lastPagingToken) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ingestMs = performance.now() - started;
    controller.abort();
    await ingestion.done;

    const { rows } = await db.pool.query<{ n: string }>("select count(*) as n from payments where merchant_id = $1 and status = 'confirmed'", [merchant.id]);
    const confirmed = Number(rows[0]!.n);
    if (confirmed !== COUNT || fetched !== COUNT) throw new Error(`expected ${COUNT} records and confirmations, got ${fetched} and ${confirmed}`);

    console.log(`catch-up of ${COUNT} records, pages of ${PAGE}, one transaction per page`);
    console.log(`${"ingest: fetch, match, confirm, commit".padEnd(44)} ${rate(COUNT, ingestMs)}`);
    console.log(`${"fetch and parse the same pages only".padEnd(44)} ${rate(fetched, fetchMs)}`);
    console.log(`ratio: ${((fetchMs / ingestMs) * 100).toFixed(1)} % of the fetch-only rate`);
  } finally {
    await horizon.close();
    await db.close();
  }
}
