/**
 * bench/delivery: events committed to the outbox → signed POSTs received by a bare node:http
 * receiver, through the real webhook runtime (config defaults but http:// and 127.0.0.0/8 allowed).
 *
 * 1. Throughput: BENCH_DELIVERY_EVENTS events (default 20 000) are committed in 1 000-event
 *    transactions through recordEvent, then the runtime starts and drains them; deliveries/s is
 *    distinct events received over the time from its start to the last receipt, and again counting
 *    only what arrived after the drain's first second.
 * 2. Baseline: an undici Pool POSTing the same body and headers to the same receiver, closed loop,
 *    at the runtime's concurrency (WEBHOOK_WORKER_CONCURRENCY), after a second of warm-up. The
 *    ratio compares like with like: the drain after its first second (the runtime's new connections,
 *    first plans, and code run for the first time) against the baseline after its warm-up; the
 *    ratio of the whole drain, cold start included, is printed beside it.
 * 3. Latency: events offered at a fixed 1 000/s (each timer tick commits what is due in one
 *    transaction, up to PRODUCER_CONNECTIONS at once, then wakes the workers as another process
 *    would: a NOTIFY after the commit, webhooks/wakeup.ts), commit → receipt measured per event id,
 *    for 10 s after a first second of warm-up (a runtime started for the phase).
 * 4. The same latency with the runtime's pool behind a real PgBouncer in transaction mode
 *    (DATABASE_POOLER=transaction) and LISTEN on the direct URL (DATABASE_DIRECT_URL), as
 *    docs/operations.md describes; skipped when /usr/sbin/pgbouncer is not installed.
 *
 * Endpoints: WEBHOOK_WORKER_CONCURRENCY / WEBHOOK_MAX_CONCURRENT_PER_ENDPOINT of them (one per
 * merchant, events round-robin), so the per-endpoint cap does not hide the engine's own limit.
 * Events are committed through a pool of their own, so the load generator never queues the
 * runtime's queries behind its own.
 */
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { Webhook } from "@lumenpay/webhooks";
import { loadConfig, type Config } from "../../packages/server/src/config.js";
import { createPool } from "../../packages/server/src/db/pool.js";
import { createLogger } from "../../packages/server/src/logger.js";
import { createMetrics } from "../../packages/server/src/metrics/registry.js";
import { createWebhookMetrics } from "../../packages/server/src/webhooks/metrics.js";
import { startWebhookRuntime } from "../../packages/server/src/webhooks/runtime.js";
import { createDeliveryWakeup } from "../../packages/server/src/webhooks/wakeup.js";
import { createBenchDatabase, type BenchDatabase } from "../support/db.js";
import { formatResult, load, percentile } from "../support/load.js";
import { startBenchReceiver } from "../support/receiver.js";
import { commitEvents, seedEndpoints } from "../support/webhooks.js";
import { startPgBouncer } from "../../packages/server/test/support/pgbouncer.js";
import { benchInt } from "../support/env.js";

const EVENTS = benchInt("BENCH_DELIVERY_EVENTS", 20_000);
const TX_EVENTS = 1_000;
const RATE_PER_S = 1_000;
const LATENCY_S = 10;
// Each latency phase starts a runtime of its own (new connections, cold plans): its first second is
// offered like the rest but not counted, as the baseline's load has a warm-up; its p99 is printed apart.
const LATENCY_WARMUP_S = 1;
const BASELINE_MS = 5_000;
const BASELINE_WARMUP_MS = 1_000;
const DRAIN_TIMEOUT_MS = 120_000;
/** The part of the drain left out of its steady rate: as long as the baseline's warm-up. */
const DRAIN_WARMUP_MS = BASELINE_WARMUP_MS;
const PRODUCER_CONNECTIONS = 4;

/** The runtime on `pool`, listening for NOTIFY on `listenUrl` (a direct connection). */
function startRuntime(pool: pg.Pool, listenUrl: string, config: Config) {
  const controller = new AbortController();
  const registry = createMetrics(pool).registry;
  const runtime = startWebhookRuntime({
    config,
    pool,
    connectionString: listenUrl,
    clock: { now: () => new Date() },
    log: createLogger("silent"),
    metrics: createWebhookMetrics(registry, pool),
    signal: controller.signal,
  });
  return async () => {
    controller.abort();
    await runtime.done;
  };
}

async function deliveryCounts(pool: pg.Pool): Promise<{ succeeded: number; other: number; attempts: number }> {
  const { rows } = await pool.query<{ succeeded: number; other: number; attempts: number }>(
    `select count(*) filter (where status = 'succeeded')::int as succeeded, count(*) filter (where status <> 'succeeded')::int as other,
            (select count(*)::int from webhook_attempts) as attempts
     from webhook_deliveries`,
  );
  return rows[0]!;
}

const rate = (n: number, ms: number) => `${((n / ms) * 1000).toFixed(0).padStart(7)} /s`;

/**
 * Commit → receipt for events offered at RATE_PER_S for LATENCY_S seconds, the runtime on
 * `runtimePool`. Each tick commits what is due in one transaction without waiting for earlier
 * commits, so a slow commit does not lower the offered rate; with all producer connections busy,
 * what is due waits for a later tick and goes into a bigger batch.
 */
async function measureLatency(r: {
  db: BenchDatabase;
  receiver: Awaited<ReturnType<typeof startBenchReceiver>>;
  producer: pg.Pool;
  merchantIds: string[];
  config: Config;
  runtimePool: pg.Pool;
  label: string;
}): Promise<string> {
  r.receiver.reset();
  const stopRuntime = startRuntime(r.runtimePool, r.db.url, r.config);
  // The producer stands for the API in another process: its wake-up reaches the runtime by NOTIFY only.
  const wakeup = createDeliveryWakeup({ pool: r.producer, log: createLogger("silent") });
  try {
    const committedAt = new Map<string, number>();
    const warmupIds = new Set<string>();
    const warmupEvents = RATE_PER_S * LATENCY_WARMUP_S;
    const total = warmupEvents + RATE_PER_S * LATENCY_S;
    const commits: Promise<void>[] = [];
    const paceStart = performance.now();
    let scheduled = 0;
    let committing = 0;
    while (scheduled < total) {
      const due = Math.min(total, Math.floor(((performance.now() - paceStart) * RATE_PER_S) / 1000)) - scheduled;
      if (due > 0 && committing < PRODUCER_CONNECTIONS) {
        committing++;
        const warm = scheduled < warmupEvents;
        const commit = commitEvents(r.producer, r.merchantIds, scheduled, due, wakeup.wake).then((ids) => {
          const at = performance.now();
          for (const id of ids) committedAt.set(id, at);
          if (warm) for (const id of ids) warmupIds.add(id);
        });
        // Handled here too, so a failure waits for Promise.all below instead of crashing the process.
        commit.catch(() => undefined).finally(() => committing--);
        commits.push(commit);
        scheduled += due;
      }
      await sleep(1);
    }
    await Promise.all(commits);
    const paceMs = performance.now() - paceStart;
    await r.receiver.waitForIds([...committedAt.keys()], DRAIN_TIMEOUT_MS);
    const warmup: number[] = [];
    const latencies: number[] = [];
    for (const [id, at] of committedAt) (warmupIds.has(id) ? warmup : latencies).push(r.receiver.firstSeen.get(id)! - at);
    warmup.sort((a, b) => a - b);
    latencies.sort((a, b) => a - b);
    return (
      `commit → receipt (${r.label}), ${latencies.length} events committed at ${rate(total, paceMs).trim()} (target ${RATE_PER_S}/s)   ` +
      `p50 ${percentile(latencies, 50).toFixed(1)} ms   p99 ${percentile(latencies, 99).toFixed(1)} ms   max ${latencies.at(-1)!.toFixed(1)} ms   ` +
      `(the warm-up second before them: p99 ${percentile(warmup, 99).toFixed(1)} ms)`
    );
  } finally {
    await wakeup.settled();
    await stopRuntime();
  }
}

export async function run(): Promise<void> {
  const db = await createBenchDatabase();
  const receiver = await startBenchReceiver();
  const config = loadConfig({ LOG_LEVEL: "silent", WEBHOOK_ALLOW_HTTP: "true", WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8" });
  const producer = createPool(db.url, { ...config.db, poolMax: PRODUCER_CONNECTIONS });
  const { workerConcurrency, maxConcurrentPerEndpoint } = config.webhooks;
  const endpointCount = Math.ceil(workerConcurrency / maxConcurrentPerEndpoint);
  let stopRuntime: (() => Promise<void>) | undefined;
  try {
    const { merchantIds, secrets } = await seedEndpoints(db.pool, receiver.origin, endpointCount);
    console.log(
      `${EVENTS} events, ${endpointCount} endpoints × ${maxConcurrentPerEndpoint} per endpoint, worker concurrency ${workerConcurrency}, DB pool ${config.db.poolMax}`,
    );

    // 1. Throughput: commit the backlog with no worker running, then drain it.
    const insertStart = performance.now();
    const backlog: string[] = [];
    for (let i = 0; i < EVENTS; i += TX_EVENTS) backlog.push(...(await commitEvents(producer, merchantIds, i, Math.min(TX_EVENTS, EVENTS - i))));
    const insertMs = performance.now() - insertStart;
    console.log(`outbox insert (recordEvent, ${TX_EVENTS} per tx)       ${rate(EVENTS, insertMs)} events   (${(insertMs / 1000).toFixed(1)} s)`);

    const drainCpuStart = process.cpuUsage();
    const drainStart = performance.now();
    stopRuntime = startRuntime(db.pool, db.url, config);
    await receiver.waitForIds(backlog, DRAIN_TIMEOUT_MS);
    let lastReceipt = 0;
    for (const at of receiver.firstSeen.values()) lastReceipt = Math.max(lastReceipt, at);
    const receivedMs = lastReceipt - drainStart;
    const steadyFrom = drainStart + DRAIN_WARMUP_MS;
    let steadyReceipts = 0;
    for (const id of backlog) if (receiver.firstSeen.get(id)! >= steadyFrom) steadyReceipts++;
    // A drain that leaves less than a second after its first (a small BENCH_DELIVERY_EVENTS) has no steady part to count.
    const steady = lastReceipt - steadyFrom >= DRAIN_WARMUP_MS ? { receipts: steadyReceipts, ms: lastReceipt - steadyFrom } : undefined;
    const drainCpu = process.cpuUsage(drainCpuStart);
    while ((await deliveryCounts(db.pool)).succeeded < EVENTS) await sleep(20);
    const recordedMs = performance.now() - drainStart;
    await stopRuntime();
    stopRuntime = undefined;
    const counts = await deliveryCounts(db.pool);
    const duplicates = receiver.requests() - receiver.firstSeen.size;
    console.log(`lumenpay delivery, backlog drained              ${rate(EVENTS, receivedMs)} deliveries   (last receipt ${(receivedMs / 1000).toFixed(1)} s)`);
    console.log(
      steady
        ? `  … counting only its steady part, after 1 s       ${rate(steady.receipts, steady.ms)}   (${steady.receipts} deliveries)`
        : `  … no steady part: the drain took under 2 s; the ratio counts all of it (raise BENCH_DELIVERY_EVENTS)`,
    );
    console.log(`  … all rows succeeded with attempt logs         ${rate(EVENTS, recordedMs)}   (${(recordedMs / 1000).toFixed(1)} s)`);
    console.log(`  rows: ${counts.succeeded} succeeded, ${counts.other} other; ${counts.attempts} attempt logs; ${duplicates} duplicate POSTs`);

    const sample = receiver.sample()!;
    const secret = secrets[Number(sample.path.split("/").at(-1))]!;
    const verified = await new Webhook({ secrets: [secret] }).verify(sample.body, sample.headers).then(
      () => "yes",
      (error: Error) => `NO (${error.message})`,
    );
    console.log(`  a received POST verifies with its endpoint's secret: ${verified}`);

    // 2. Baseline: the same POST from a bare undici Pool, at the same concurrency.
    const headers = Object.fromEntries(
      Object.entries(sample.headers).filter(([k]) => k.startsWith("webhook-") || k.startsWith("stellar-") || k === "user-agent" || k === "content-type"),
    );
    const baselineCpuStart = process.cpuUsage();
    const baseline = await load(
      receiver.origin,
      { method: "POST", path: "/hooks/0", headers, body: () => sample.body, expectStatus: 200 },
      { connections: workerConcurrency, durationMs: BASELINE_MS, warmupMs: BASELINE_WARMUP_MS },
    );
    const baselineCpu = process.cpuUsage(baselineCpuStart);
    const percentOfBaseline = (n: number, ms: number) => (((n / ms) * 1000 * 100) / baseline.perSecond).toFixed(1);
    console.log(formatResult(`raw undici Pool POST, ${workerConcurrency} in flight, ${sample.body.length} B`, baseline));
    const counted = steady ?? { receipts: EVENTS, ms: receivedMs };
    console.log(
      `ratio: lumenpay delivers at ${percentOfBaseline(counted.receipts, counted.ms)} % of the raw undici POST rate, ${steady ? "each after its first second" : "from a cold start"}`,
    );
    if (steady) console.log(`  the whole drain, from a cold start: ${percentOfBaseline(EVENTS, receivedMs)} %`);
    // The baseline's CPU includes its warm-up, counted at the measured rate.
    const baselineRequests = (baseline.perSecond * (BASELINE_MS + BASELINE_WARMUP_MS)) / 1000;
    const microsPer = (cpu: NodeJS.CpuUsage, n: number) => ((cpu.user + cpu.system) / n).toFixed(0);
    console.log(
      `CPU of this process (the receiver's share included): ${microsPer(drainCpu, EVENTS)} µs per delivery drained, ${microsPer(baselineCpu, baselineRequests)} µs per raw undici POST`,
    );

    // 3. Latency at a fixed rate; 4. the same behind PgBouncer.
    const latency = (label: string, runtimePool: pg.Pool, runtimeConfig = config) =>
      measureLatency({ db, receiver, producer, merchantIds, config: runtimeConfig, runtimePool, label });
    console.log(await latency("direct", db.pool));
    if (!existsSync("/usr/sbin/pgbouncer")) {
      console.log("commit → receipt behind PgBouncer: skipped (no /usr/sbin/pgbouncer; apt-get install pgbouncer)");
    } else {
      const bouncer = await startPgBouncer(db.url);
      // As the server runs with DATABASE_POOLER=transaction: the pool and the runtime both know it.
      const pooledConfig: Config = { ...config, db: { ...config.db, pooler: "transaction" } };
      const pooled = createPool(bouncer.through(db.url), pooledConfig.db);
      try {
        console.log(await latency("PgBouncer (transaction mode), LISTEN on the direct URL", pooled, pooledConfig));
      } finally {
        await pooled.end();
        await bouncer.stop();
      }
    }
  } finally {
    await stopRuntime?.();
    await producer.end();
    await receiver.close();
    await db.close();
  }
}
