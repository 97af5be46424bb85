/**
 * bench/scale: one webhook backlog drained by 1, 2 and 4 `lumenpay start --roles deliver` processes.
 *
 * BENCH_SCALE_PROCESSES changes the process counts (default 1,2,4); the speed-up is against the first.
 * Each run gets a fresh database: BENCH_SCALE_EVENTS events (default 20 000) over BENCH_SCALE_ENDPOINTS
 * endpoints (default 20, one merchant each, events round-robin) are committed through recordEvent in
 * 1 000-event transactions before any worker runs. The endpoints are then switched off in SQL (the
 * claim query leaves their pending rows waiting), the deliver processes — the real CLI, separate OS
 * processes, config defaults but http:// and 127.0.0.0/8 allowed — start, and once every one answers
 * /ready and LISTENs, one transaction switches the endpoints back on and NOTIFYs: all processes see
 * the whole backlog due at the same instant. deliveries/s is the backlog over the time from that
 * commit to the receipt of the last new webhook-id; the drain ends when every row is recorded
 * succeeded.
 *
 * One receiver (receiver.ts) runs in its own OS process. CPU time over the drain comes from
 * /proc/<pid>/stat (utime + stime) for the receiver, each deliver process and PostgreSQL — the
 * backends connected to the bench database, and the server's background processes (WAL writer,
 * checkpointer, autovacuum…), which serve every database on the server — and /proc/stat for the
 * whole machine; "other" is everything else the machine was busy with, by command name, and what no
 * process seen at the start or the end of the drain accounts for (processes that came and went, interrupts).
 * Where the time goes besides CPU: the deliver processes' transactions in the bench database are counted
 * (pg_stat_database, less this bench's own), the bench database's backends are sampled from pg_stat_activity
 * every 100 ms during the drain (state and wait event, averaged), and each deliver process's /metrics
 * is read once half the backlog has arrived (its pool's connections and queries waiting for one).
 */
import { execFileSync, fork, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { transaction } from "../../packages/server/src/db/pool.js";
import { DELIVERIES_CHANNEL } from "../../packages/server/src/webhooks/wakeup.js";
// The built CLI, as operators run it (npm run build).
import { LUMENPAY_BIN } from "../../packages/server/test/support/process.js";
import { createBenchDatabase, type BenchDatabase } from "../support/db.js";
import { commitEvents, seedEndpoints } from "../support/webhooks.js";
import type { ReceiverCount } from "./receiver.js";
import { benchInt, benchInts } from "../support/env.js";

const EVENTS = benchInt("BENCH_SCALE_EVENTS", 20_000);
const ENDPOINTS = benchInt("BENCH_SCALE_ENDPOINTS", 20);
const PROCESS_COUNTS = benchInts("BENCH_SCALE_PROCESSES", [1, 2, 4]);
const TX_EVENTS = 1_000;
const START_TIMEOUT_MS = 60_000;
const DRAIN_TIMEOUT_MS = 300_000;
/** The receiver, a process of its own (receiver.ts). */
const RECEIVER = fileURLToPath(new URL("./receiver.ts", import.meta.url));
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** Epoch milliseconds on the same base as the receiver's `lastNewAt`. */
const epochNow = () => performance.timeOrigin + performance.now();

type ProcessTimes = Map<number, { comm: string; seconds: number }>;

/** utime + stime, in seconds, of every process on the machine now, with its command name. */
function processTimes(): ProcessTimes {
  const times: ProcessTimes = new Map();
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // After the parenthesised command name: state is the 1st field, utime the 12th, stime the 13th.
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    times.set(Number(entry), { comm: stat.slice(stat.indexOf("(") + 1, close), seconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS });
  }
  return times;
}

/** CPU seconds each process used between two snapshots (all of it for one started since). */
function cpuDelta(before: ProcessTimes, after: ProcessTimes): Map<number, { comm: string; seconds: number }> {
  return new Map([...after].map(([pid, { comm, seconds }]) => [pid, { comm, seconds: seconds - (before.get(pid)?.seconds ?? 0) }]));
}

/** Seconds the whole machine's CPUs were busy so far, and taken by the hypervisor (steal), from /proc/stat. */
function machineSeconds(): { busy: number; steal: number } {
  const [, ...ticks] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number);
  return { busy: (user! + nice! + system! + irq! + softirq!) / CLOCK_TICKS, steal: steal! / CLOCK_TICKS };
}

/** PostgreSQL's processes that work for this benchmark: the bench database's backends, and the server's own. */
async function postgresPids(db: BenchDatabase): Promise<{ backends: number[]; background: number[] }> {
  const { rows } = await db.pool.query<{ pid: number; client: boolean }>(
    `select pid, backend_type = 'client backend' as client from pg_stat_activity
     where datname = current_database() or backend_type <> 'client backend'`,
  );
  // This bench's own connection is among the backends: it queries before and after the drain, and polls for the recorded rows at the end.
  return { backends: rows.filter((r) => r.client).map((r) => r.pid), background: rows.filter((r) => !r.client).map((r) => r.pid) };
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface DeliverProcess {
  child: ChildProcess;
  port: number;
  stderr(): string;
  stop(): Promise<void>;
}

/** `lumenpay start --roles deliver` on `port`; resolves once /ready answers 200. */
async function startDeliverProcess(databaseUrl: string, env: Record<string, string>): Promise<DeliverProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...LUMENPAY_BIN, "start", "--roles", "deliver"], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      LOG_LEVEL: "silent",
      WEBHOOK_ALLOW_HTTP: "true",
      WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = once(child, "exit");
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`lumenpay start --roles deliver exited (${child.exitCode}): ${stderr}`);
    const status = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.status, () => 0);
    if (status === 200) break;
    if (Date.now() > deadline) throw new Error(`lumenpay start --roles deliver not ready after ${START_TIMEOUT_MS} ms: ${stderr}`);
    await sleep(50);
  }
  return {
    child,
    port,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The receiver process; `count()` asks it how much it has received. */
async function startReceiver() {
  const child = fork(RECEIVER, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const [{ port }] = (await once(child, "message")) as [{ port: number }];
  return {
    pid: child.pid!,
    origin: `http://127.0.0.1:${port}`,
    async count(): Promise<ReceiverCount> {
      const reply = once(child, "message") as Promise<[ReceiverCount]>;
      child.send("count");
      return (await reply)[0];
    },
    async close() {
      const exited = once(child, "exit");
      child.disconnect();
      await exited;
    },
  };
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

async function listeners(db: BenchDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where datname = current_database() and query = $1",
    [`listen ${pg.escapeIdentifier(DELIVERIES_CHANNEL)}`],
  );
  return rows[0]!.n;
}

/** Transactions committed or rolled back in the bench database so far, as PostgreSQL's statistics have them. */
async function committedTransactions(db: BenchDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>("select xact_commit + xact_rollback as n from pg_stat_database where datname = current_database()");
  return Number(rows[0]!.n);
}

async function succeeded(db: BenchDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>("select count(*)::int as n from webhook_deliveries where status = 'succeeded'");
  return rows[0]!.n;
}

/** What the bench database's backends are doing now, by "state" or "state/wait event", without LISTEN connections and this bench's own. */
async function backendStates(db: BenchDatabase): Promise<Map<string, number>> {
  const { rows } = await db.pool.query<{ what: string; n: number }>(
    `select state || coalesce('/' || wait_event_type || ':' || wait_event, '') as what, count(*)::int as n from pg_stat_activity
     where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid() and query not like 'listen %'
     group by 1`,
  );
  return new Map(rows.map((r) => [r.what, r.n]));
}

/** A deliver process's pool, from its /metrics: connections open and queries waiting for one. */
async function poolState(worker: DeliverProcess): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  const gauge = (name: string) => new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? "?";
  return `${gauge("pg_pool_total_connections")} open, ${gauge("pg_pool_waiting_requests")} waiting`;
}

interface RunResult {
  processes: number;
  perSecond: number;
  receiptS: number;
  drainS: number;
  duplicates: number;
  /** Transactions the deliver processes ran in the bench database over the drain (claims, recordings…). */
  transactions: number;
  /** Average number of the bench database's backends in each state over the drain, most first. */
  backends: Array<[string, number]>;
  /** Each deliver process's pool half-way through the drain. */
  pools: string[];
  cpu: {
    receiver: number;
    deliver: number[];
    pgBackends: number;
    pgBackground: number;
    bench: number;
    others: Map<string, number>;
    unseen: number;
    machine: number;
    steal: number;
  };
}

/** One drain of the backlog by `processes` deliver processes, on a database of its own. */
async function drain(processes: number, receiver: Receiver, env: Record<string, string>): Promise<RunResult> {
  const db = await createBenchDatabase(2);
  const workers: DeliverProcess[] = [];
  try {
    const { merchantIds } = await seedEndpoints(db.pool, receiver.origin, ENDPOINTS);
    for (let from = 0; from < EVENTS; from += TX_EVENTS) await commitEvents(db.pool, merchantIds, from, Math.min(TX_EVENTS, EVENTS - from));
    await db.pool.query("update webhook_endpoints set disabled = true");
    await db.pool.query("vacuum analyze webhook_deliveries, events, webhook_endpoints");
    const before = await receiver.count();

    workers.push(...(await Promise.all(Array.from({ length: processes }, () => startDeliverProcess(db.url, env)))));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while ((await listeners(db)) < processes) {
      if (Date.now() > deadline) throw new Error("the deliver processes did not all LISTEN");
      await sleep(20);
    }

    const pg0 = await postgresPids(db);
    const times0 = processTimes();
    const machine0 = machineSeconds();
    const transactions0 = await committedTransactions(db);
    // This bench's own transactions from here on, left out of the count of the deliver processes'.
    let own = 0;
    const start = epochNow();
    await transaction(db.pool, async (tx) => {
      await tx.query("update webhook_endpoints set disabled = false");
      await tx.query("select pg_notify($1, '')", [DELIVERIES_CHANNEL]);
    });
    own++;

    const states = new Map<string, number>();
    let samples = 0;
    let pools: string[] | undefined;
    let count = await receiver.count();
    for (let tick = 0; count.distinct - before.distinct < EVENTS; tick++) {
      if (epochNow() - start > DRAIN_TIMEOUT_MS) throw new Error(`received ${count.distinct - before.distinct} of ${EVENTS} within ${DRAIN_TIMEOUT_MS} ms`);
      const dead = workers.find((w) => w.child.exitCode !== null);
      if (dead) throw new Error(`a deliver process exited (${dead.child.exitCode}): ${dead.stderr()}`);
      if (tick % 5 === 0) {
        samples++;
        own++;
        for (const [what, n] of await backendStates(db)) states.set(what, (states.get(what) ?? 0) + n);
      }
      if (!pools && count.distinct - before.distinct >= EVENTS / 2) pools = await Promise.all(workers.map(poolState));
      await sleep(20);
      count = await receiver.count();
    }
    for (;;) {
      own++;
      if ((await succeeded(db)) === EVENTS) break;
      await sleep(20);
    }
    const end = epochNow();

    const pg1 = await postgresPids(db);
    own++;
    const used = cpuDelta(times0, processTimes());
    const machine1 = machineSeconds();
    // Each process's time is taken out of `used`, so that what is left is everyone else's.
    const take = (pids: number[]) => {
      let sum = 0;
      for (const pid of pids) {
        sum += used.get(pid)?.seconds ?? 0;
        used.delete(pid);
      }
      return sum;
    };
    const cpu = {
      receiver: take([receiver.pid]),
      deliver: workers.map((w) => take([w.child.pid!])),
      pgBackends: take([...new Set([...pg0.backends, ...pg1.backends])]),
      pgBackground: take([...new Set([...pg0.background, ...pg1.background])]),
      bench: take([process.pid]),
      // What else ran, by command name, and the busy time no process seen at either end accounts for.
      others: [...used.values()].reduce((by, { comm, seconds }) => by.set(comm, (by.get(comm) ?? 0) + seconds), new Map<string, number>()),
      unseen: 0,
      machine: machine1.busy - machine0.busy,
      steal: machine1.steal - machine0.steal,
    };
    cpu.unseen = cpu.machine - [cpu.receiver, ...cpu.deliver, cpu.pgBackends, cpu.pgBackground, cpu.bench, ...cpu.others.values()].reduce((a, b) => a + b, 0);
    // Backends report their transaction counts when they exit, at the latest.
    await Promise.all(workers.map((w) => w.stop()));
    const transactions = (await committedTransactions(db)) - transactions0 - own;
    return {
      processes,
      perSecond: (EVENTS / (count.lastNewAt - start)) * 1000,
      receiptS: (count.lastNewAt - start) / 1000,
      drainS: (end - start) / 1000,
      duplicates: count.requests - before.requests - EVENTS,
      transactions,
      backends: [...states].map(([what, n]): [string, number] => [what, n / samples]).sort((a, b) => b[1] - a[1]),
      pools: pools ?? [],
      cpu,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await db.close();
  }
}

const seconds = (s: number) => s.toFixed(1).padStart(5);

function report(r: RunResult, baseline: RunResult): string {
  const { cpu } = r;
  const deliver = cpu.deliver.reduce((a, b) => a + b, 0);
  const postgres = cpu.pgBackends + cpu.pgBackground;
  const others = [...cpu.others].sort((a, b) => b[1] - a[1]);
  const other = others.reduce((sum, [, s]) => sum + s, 0) + cpu.unseen;
  const cores = (s: number) => (s / r.drainS).toFixed(2);
  return [
    `${String(r.processes).padStart(2)} deliver process(es)  ${r.perSecond.toFixed(0).padStart(6)} deliveries/s  ×${(r.perSecond / baseline.perSecond).toFixed(2)}` +
      `   last receipt ${r.receiptS.toFixed(1)} s, all recorded ${r.drainS.toFixed(1)} s, ${r.duplicates} duplicate POSTs`,
    `   CPU s over the drain: receiver ${seconds(cpu.receiver)}   deliver ${seconds(deliver)} (${cpu.deliver.map((c) => c.toFixed(1)).join(" + ")})` +
      `   postgres ${seconds(postgres)} (backends ${cpu.pgBackends.toFixed(1)}, background ${cpu.pgBackground.toFixed(1)})   this bench ${seconds(cpu.bench)}   other ${seconds(other)}`,
    `   in cores (of ${os.availableParallelism()}): receiver ${cores(cpu.receiver)}   deliver ${cores(deliver)}   postgres ${cores(postgres)}   this bench ${cores(cpu.bench)}` +
      `   other ${cores(other)}   machine busy ${cores(cpu.machine)}, steal ${cores(cpu.steal)}`,
    `   other, in cores: ${[...others.filter(([, s]) => s / r.drainS >= 0.01).map(([comm, s]) => `${comm} ${cores(s)}`), `exited or interrupts ${cores(cpu.unseen)}`].join(", ")}`,
    `   deliver processes' database transactions: ${r.transactions} (${((r.transactions / EVENTS) * 1000).toFixed(0)} per 1 000 deliveries)`,
    `   bench database backends, average over the drain: ${r.backends.filter(([, n]) => n >= 0.05).map(([what, n]) => `${what} ${n.toFixed(1)}`).join(", ")}`,
    `   deliver pools half-way: ${r.pools.join("; ")}`,
  ].join("\n");
}

export async function run(): Promise<void> {
  // The default pool per process; lower it if 4 processes × (pool + LISTEN) exceed the server's max_connections.
  const env: Record<string, string> = process.env.BENCH_SCALE_POOL_MAX ? { DB_POOL_MAX: process.env.BENCH_SCALE_POOL_MAX } : {};
  console.log(
    `${EVENTS} events over ${ENDPOINTS} endpoints, drained by ${PROCESS_COUNTS.join(", ")} \`lumenpay start --roles deliver\` processes` +
      ` (DB_POOL_MAX ${env.DB_POOL_MAX ?? "default"}); ${os.availableParallelism()} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} before`,
  );
  const receiver = await startReceiver();
  try {
    const results: RunResult[] = [];
    for (const processes of PROCESS_COUNTS) {
      const result = await drain(processes, receiver, env);
      results.push(result);
      console.log(report(result, results[0]!));
    }
  } finally {
    await receiver.close();
  }
}
