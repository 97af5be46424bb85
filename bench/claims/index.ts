/**
 * bench/claims: how long one claim of the delivery queue takes while a hung endpoint sits on a large
 * backlog (every row due, the endpoint saturated so the worker skips it), against the same claim
 * with no backlog. A claim's cost should not depend on other endpoints' backlogs.
 *
 * BENCH_CLAIMS_BACKLOG rows (default 100 000) for the hung endpoint; 200 due rows for a healthy one;
 * each measured claim takes 50 of the healthy rows and hands them back, so every run sees the same
 * queue. Median and p90 of 30 claims after 5 warm-up claims.
 */
import { Keypair } from "@stellar/stellar-sdk";
import { createMerchant } from "../../packages/server/src/merchants/service.js";
import { newId } from "../../packages/server/src/ids.js";
import { insertEndpoint } from "../../packages/server/src/webhooks/endpoints-store.js";
import { claimDeliveries, releaseDeliveries } from "../../packages/server/src/webhooks/queue.js";
import { createBenchDatabase } from "../support/db.js";
import { percentile } from "../support/load.js";
import { benchInt } from "../support/env.js";

const BACKLOG = benchInt("BENCH_CLAIMS_BACKLOG", 100_000);
const HEALTHY_ROWS = 200;
const CLAIMS = 30;
const CLAIM_ROWS = 50;

export async function run(): Promise<void> {
  const db = await createBenchDatabase();
  try {
    const endpoint = async (name: string) => {
      const { merchant } = await createMerchant(db.pool, { name, email: `${name}@bench.test`, accounts: [Keypair.random().publicKey()] }, new Date());
      const row = await insertEndpoint(db.pool, {
        id: newId("we"),
        merchantId: merchant.id,
        url: `https://${name}.bench.test/`,
        description: null,
        enabledEvents: ["*"],
        disabled: false,
        secret: "whsec_bench",
        now: new Date(),
      });
      return { merchantId: merchant.id, endpointId: row.id };
    };
    const queue = async (target: { merchantId: string; endpointId: string }, rows: number, dueAgo: string) => {
      await db.pool.query(
        `with ev as (
           insert into events (id, merchant_id, type, body, created_at)
           select 'evt_' || md5(random()::text || i), $1, 'payment.created', '{}', now() from generate_series(1, $3) i
           returning id)
         insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, next_attempt_at, event_created_at)
         select 'del_' || md5(random()::text || id), id, $2, $1, now() - $4::interval, now() from ev`,
        [target.merchantId, target.endpointId, rows, dueAgo],
      );
      await db.pool.query("analyze webhook_deliveries");
    };
    const measure = async (inFlight: ReadonlyMap<string, number>) => {
      const times: number[] = [];
      for (let i = 0; i < CLAIMS + 5; i++) {
        const started = performance.now();
        const claimed = await claimDeliveries(db.pool, { workerId: "bench", now: new Date(), leaseMs: 60_000, limit: CLAIM_ROWS, maxPerEndpoint: CLAIM_ROWS, inFlight, prepared: true });
        const ms = performance.now() - started;
        await releaseDeliveries(db.pool, claimed);
        if (claimed.length !== CLAIM_ROWS) throw new Error(`claimed ${claimed.length} rows, expected ${CLAIM_ROWS}`);
        if (i >= 5) times.push(ms);
      }
      times.sort((a, b) => a - b);
      return { p50: percentile(times, 50), p90: percentile(times, 90) };
    };

    const healthy = await endpoint("healthy");
    await queue(healthy, HEALTHY_ROWS, "1 minute");
    const none = await measure(new Map());
    const hung = await endpoint("hung");
    // Older than the healthy rows: a claim ordered by due time meets all of them first.
    await queue(hung, BACKLOG, "1 hour");
    const backlog = await measure(new Map([[hung.endpointId, CLAIM_ROWS]]));
    const line = (label: string, r: { p50: number; p90: number }) => `${label.padEnd(52)} p50 ${r.p50.toFixed(2).padStart(8)} ms   p90 ${r.p90.toFixed(2).padStart(8)} ms`;
    console.log(line("claim 50, no other backlog", none));
    console.log(line(`claim 50, a hung endpoint with ${BACKLOG} due rows skipped`, backlog));
    console.log(`ratio: ${(backlog.p50 / none.p50).toFixed(1)}× the claim without a backlog`);
  } finally {
    await db.close();
  }
}
