/**
 * `npm run chaos [-- --short]`: payments through the whole path — created through the API, paid on the
 * local network, detected, confirmed, sent as webhooks — while processes are SIGKILLed and restarted,
 * PostgreSQL restarts and the network pauses for longer than a payment's expiry. Then every payment's
 * state is checked against the ledger, every event against what each receiver verified, and the API's
 * error rate during each fault is printed. Meanwhile the suite's OpenAPI fuzzer sends hostile requests to
 * both API instances: no 5xx but from an instance that is down, no write by a refused request. Exits 1
 * if anything was lost, double-confirmed or mis-stated, or the fuzzer broke a property. Loopback only;
 * stops by itself.
 */
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { Keypair } from "@stellar/stellar-sdk";
import { loadConfig } from "../packages/server/src/config.js";
import { createPool } from "../packages/server/src/db/pool.js";
import { createMerchant } from "../packages/server/src/merchants/service.js";
import { startTestDns } from "../packages/server/test/support/dns.js";
import { withChaosSection } from "../bench/support/report.js";
import { Database, Lumenpay, lumenpayEnv, newEncryptionKey, runDirectory, startNetwork } from "./cluster.js";
import { drive, failureOf, fund, type ApiAttempt, type DriverResult } from "./driver.js";
import { compare, readLedger } from "./oracle.js";
import { startReceiver, type Receiver } from "./receivers.js";
import { startFuzz, type FuzzFailure } from "./fuzz.js";

const short = process.argv.includes("--short");
const PAYMENTS = Number(process.env.CHAOS_PAYMENTS ?? (short ? 1_000 : 20_000));
const PAYERS = short ? 60 : 100;
const EXPIRES_IN_S = 60;
// Long enough to outlast the late receiver's downtime, short enough to finish: 2½ minutes of retries (short), 5 (full).
const RETRY_SCHEDULE = ["1s", "2s", "4s", ...Array(47).fill(short ? "3s" : "6s")].join(",");
// Hostile requests while the payments are driven: loops per API instance, each at most 10 a second
// (under the full run's load a loop manages about 2, in the short run 5 to 7), and the fewest the run accepts.
const FUZZ_LOOPS = short ? 1 : 2;
const FUZZ_RATE = 10;
const FUZZ_MINIMUM = short ? 1_000 : 10_000;

interface Fault {
  name: string;
  start: number;
  /** When the fault's own action ended: the process restarted, the database up, the network resumed. */
  end: number;
  /** When both API instances answered a request again after `end`. */
  recovered: number;
  /** The API instances it takes down (their 5xx and failed connections are excused until `recovered`). */
  downs: string[];
}

const log = (message: string) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}`);

/** Waits until `check` holds, for `timeoutMs`, or as long as `progress` (when given) changed within the last `timeoutMs`. */
async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs: number, progress?: () => number): Promise<boolean> {
  let deadline = Date.now() + timeoutMs;
  let last = progress?.();
  while (!(await check())) {
    if (progress && progress() !== last) {
      last = progress();
      deadline = Date.now() + timeoutMs;
    }
    if (Date.now() > deadline) {
      log(`gave up waiting for ${what}`);
      return false;
    }
    await sleep(250);
  }
  return true;
}

/** One payment list from `instance`, as a merchant's integration would ask it. */
async function listPayments(instance: string, apiKey: string): Promise<ApiAttempt> {
  try {
    const res = await fetch(`${instance}/v1/payments?limit=1`, { headers: { authorization: `Bearer ${apiKey}` }, signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return { at: Date.now(), instance, ok: res.status === 200, outcome: String(res.status) };
  } catch (error) {
    return { at: Date.now(), instance, ok: false, outcome: failureOf(error) };
  }
}

/** A steady client of each API instance (a payment list every 100 ms): what a merchant's integration sees during each fault. */
function probe(urls: string[], apiKey: string): { attempts: ApiAttempt[]; stop(): Promise<void> } {
  const attempts: ApiAttempt[] = [];
  let running = true;
  const loops = urls.map(async (instance) => {
    while (running) {
      attempts.push(await listPayments(instance, apiKey));
      await sleep(100);
    }
  });
  return { attempts, stop: async () => void ((running = false), await Promise.all(loops)) };
}

/** The failures among `attempts` by outcome, e.g. ": 503 ×40, ECONNREFUSED ×12". */
function outcomes(attempts: ApiAttempt[]): string {
  const counts = new Map<string, number>();
  for (const a of attempts) if (!a.ok) counts.set(a.outcome, (counts.get(a.outcome) ?? 0) + 1);
  return counts.size === 0 ? "" : `: ${[...counts].map(([outcome, n]) => `${outcome} ×${n}`).join(", ")}`;
}

/** Whether `failure` happened while a fault had its instance down. */
const excused = (failure: FuzzFailure, faults: Fault[]) =>
  faults.some((f) => f.downs.includes(failure.instance) && failure.at >= f.start && failure.sent <= f.recovered);

/** The probe's error rate from a fault's start until every instance answered again, and how long that took after the fault ended. */
function faultReport(fault: Fault, attempts: ApiAttempt[]): string {
  const window = attempts.filter((a) => a.at >= fault.start && a.at <= fault.recovered);
  const failed = window.filter((a) => !a.ok).length;
  const rate = window.length === 0 ? 0 : (100 * failed) / window.length;
  const after = `${((fault.recovered - fault.end) / 1000).toFixed(1)} s after it ended`;
  return `${fault.name.padEnd(52)} ${((fault.end - fault.start) / 1000).toFixed(1).padStart(5)} s   API errors ${failed}/${window.length} (${rate.toFixed(1)} %${outcomes(window)})   answering again ${after}`;
}

async function main(): Promise<number> {
  const started = Date.now();
  const dir = await runDirectory();
  const cleanups: Array<() => Promise<unknown>> = [dir.remove];
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      for (const cleanup of cleanups) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    })());
  // Stopped from outside (the suite's test timed out, Ctrl-C): its processes and PostgreSQL stop with it, not orphaned.
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the run's processes`);
      void cleanUp().then(() => process.exit(1));
    });
  }
  try {
    const db = await Database.start(dir.root);
    cleanups.unshift(() => db.stop());
    const network = await startNetwork(dir.root);
    cleanups.unshift(() => network.stop());
    const key = newEncryptionKey();
    // Home-domain checks of fuzzed merchants ask a DNS server that knows no names, not the machine's.
    const dns = await startTestDns();
    cleanups.unshift(() => dns.close());
    const env = (name: string) => ({ ...lumenpayEnv(dir.root, name, db, network, RETRY_SCHEDULE, key), DNS_SERVERS: dns.address });
    const [a, b] = await Promise.all([Lumenpay.create("api-a", env("a")), Lumenpay.create("api-b", env("b"))]);
    const deliver = await Lumenpay.create("deliver", { ...env("c"), LUMENPAY_ROLES: "deliver" });
    const processes = [a, b, deliver];
    cleanups.unshift(() => Promise.all(processes.map((p) => p.stop())));
    // One at a time: each migrates the database at start.
    for (const p of processes) await p.start();
    log(`PostgreSQL ${db.url}, network ${network.horizonUrl}, Lumenpay ${processes.map((p) => `${p.name} ${p.url}`).join(", ")}`);

    const pool = createPool(db.url, { ...loadConfig({}).db, poolMin: 0, poolMax: 4 });
    cleanups.unshift(() => pool.end());
    const accounts = [Keypair.random().publicKey(), Keypair.random().publicKey()];
    const fuzzAccounts = Array.from({ length: 1 + 2 * FUZZ_LOOPS }, () => Keypair.random().publicKey());
    await fund(network.horizonUrl, [...accounts, ...fuzzAccounts]);
    const { merchant, secret: apiKey } = await createMerchant(pool, { name: "Chaos", email: "chaos@example.test", accounts }, new Date());

    const receivers: Receiver[] = await Promise.all((["healthy", "flaky", "late"] as const).map(startReceiver));
    cleanups.unshift(() => Promise.all(receivers.map((r) => r.close())));
    for (const receiver of receivers) {
      const res = await fetch(`${a.url}/v1/webhook_endpoints`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ url: receiver.url, enabled_events: ["*"] }),
      });
      if (res.status !== 201) throw new Error(`creating the ${receiver.name} endpoint answered ${res.status}: ${await res.text()}`);
      receiver.useSecret(((await res.json()) as { secret: string }).secret);
    }

    const fuzzLoops = Array.from({ length: FUZZ_LOOPS }, () => [a.url, b.url]).flat();
    const fuzz = await startFuzz({ pool, instances: fuzzLoops, accounts: fuzzAccounts, rate: FUZZ_RATE, seed: Date.now() % 2 ** 31 });
    cleanups.unshift(() => fuzz.stop());
    const probes = probe([a.url, b.url], apiKey);
    cleanups.unshift(() => probes.stop());
    log(`driving ${PAYMENTS} payments with ${PAYERS} customers`);
    let result: DriverResult | undefined;
    let progress = 0;
    const driving = drive({
      apiUrls: [a.url, b.url],
      apiKey,
      horizonUrl: network.horizonUrl,
      merchantAccounts: accounts,
      payments: PAYMENTS,
      payers: PAYERS,
      expiresInS: EXPIRES_IN_S,
      progress: (created) => (progress = created),
    }).then((r) => (result = r));
    const at = (share: number) => waitUntil(() => progress >= PAYMENTS * share || result !== undefined, `${share * 100} % of the payments`, 30 * 60_000);

    const faults: Fault[] = [];
    const answering = async (url: string) => (await listPayments(url, apiKey)).ok;
    /** Runs one fault, then waits until both API instances answer again, and 3 s more so that faults do not overlap. */
    const fault = async (name: string, downs: string[], action: () => Promise<void>) => {
      const start = Date.now();
      log(`fault: ${name}`);
      await action();
      const end = Date.now();
      await waitUntil(async () => (await answering(a.url)) && (await answering(b.url)), `the API after "${name}"`, 10 * 60_000);
      faults.push({ name, start, end, recovered: Date.now(), downs });
      await sleep(3000);
    };
    const restart = (p: Lumenpay) =>
      fault(`SIGKILL ${p.name}, restarted 2 s later`, [p.url], async () => {
        await p.kill();
        await sleep(2000);
        await p.start();
      });
    await at(0.15);
    await restart(a);
    const everyInstance = [a.url, b.url];
    const restartDatabase = () =>
      fault("PostgreSQL stopped for 3 s and restarted", everyInstance, async () => {
        await db.stop();
        await sleep(3000);
        await db.start();
      });
    await at(0.35);
    await restartDatabase();
    await at(0.5);
    await receivers[2]!.up();
    log("the late receiver is up");
    await at(0.55);
    await fault(`local network paused ${EXPIRES_IN_S + 5} s (longer than an expiry)`, everyInstance, async () => {
      network.pause();
      await sleep((EXPIRES_IN_S + 5) * 1000);
      network.resume();
    });
    await at(0.7);
    await restart(deliver);
    await at(0.85);
    await restart(b);
    await driving;
    const driven = result!;
    log(`${driven.created.length} payments created, ${driven.submitted} transactions submitted in ${((Date.now() - started) / 1000).toFixed(0)} s; ${fuzz.requests} fuzz requests`);
    // The fuzz stage goes on, with faults of its own, until it has sent its minimum and had one round of
    // them at least: api-a SIGKILLed and restarted, then api-b, then PostgreSQL restarted.
    const fuzzedWithPayments = fuzz.requests;
    const paymentFaults = faults.length;
    for (let round = 0; round < 3 || fuzz.requests < FUZZ_MINIMUM; round++) await [() => restart(a), () => restart(b), restartDatabase][round % 3]!();
    const fuzzed = await fuzz.stop();
    const fuzzFaults = faults.slice(paymentFaults);
    log(`${fuzzed.requests} fuzz requests sent`);

    // Settle: every payment past its expiry (the expiry job runs every 5 s), ingestion caught up with the
    // ledger, every delivery done.
    const lastExpiry = Math.max(...driven.created.map((p) => Date.parse(p.expires_at)));
    await sleep(Math.max(0, lastExpiry + 8000 - Date.now()));
    const merchantAccounts = new Set(accounts);
    let ledger = await readLedger(network.dataDir, merchantAccounts);
    await waitUntil(async () => {
      ledger = await readLedger(network.dataDir, merchantAccounts);
      const { rows } = await pool.query<{ n: number }>(
        `select (select count(*) from payment_settlements s join payments p on p.id = s.payment_id where p.merchant_id = $1)
              + (select count(*) from unmatched_payments where merchant_id = $1) as n`,
        [merchant.id],
      );
      return Number(rows[0]!.n) >= ledger.length;
    }, "ingestion to reach the ledger", 180_000);
    const eventIds = async () => (await pool.query<{ id: string }>("select id from events where merchant_id = $1", [merchant.id])).rows.map((r) => r.id);
    await waitUntil(async () => {
      const ids = await eventIds();
      return receivers.every((r) => ids.every((id) => r.accepted.has(id)));
    }, "every event at every receiver", 120_000, () => receivers.reduce((sum, r) => sum + r.accepted.size, 0));

    const verdict = await compare(pool, merchant.id, driven.created, ledger);
    const ids = await eventIds();
    const lost = receivers.map((r) => ids.filter((id) => !r.accepted.has(id)).length);
    const duplicates = receivers.map((r) => [...r.accepted.values()].reduce((sum, n) => sum + n - 1, 0));
    const badSignatures = receivers.reduce((sum, r) => sum + r.badSignatures, 0);

    await probes.stop();
    const outside = [...probes.attempts, ...driven.attempts].filter((p) => !p.ok && !faults.some((f) => p.at >= f.start && p.at <= f.recovered));
    const problems = [...verdict.misstated, ...verdict.wrongSettlements, ...verdict.confirmationEvents, ...verdict.unmatchedMissing.map((op) => `unmatched operation ${op} not listed`), ...verdict.unmatchedExtra.map((op) => `operation ${op} listed as unmatched`)];
    const crashes = processes.flatMap((p) => p.crashes.map((c) => `${p.name} ${c}`));
    const fuzzOutside = fuzzed.failures.filter((f) => !excused(f, faults));
    const fuzzFailed = fuzzed.requests < FUZZ_MINIMUM || fuzzOutside.length > 0 || fuzzed.problems.length > 0;
    // Even during a fault the API answers 503 (with Retry-After) or nothing at all, never 500.
    const internalErrors = [...probes.attempts, ...driven.attempts, ...fuzzed.failures].filter((x) => x.outcome === "500").length;
    const failed = crashes.length > 0 || problems.length > 0 || lost.some((n) => n > 0) || badSignatures > 0 || outside.length > 0 || fuzzFailed || internalErrors > 0;
    const summary = [
      `chaos run${short ? " (short)" : ""}: ${((Date.now() - started) / 1000).toFixed(0)} s, ${PAYMENTS} payments, ${ledger.length} payment operations on the ledger`,
      `payments by state (from the ledger): ${JSON.stringify(verdict.byStatus)}; unmatched operations ${verdict.unmatched}`,
      `mis-stated payments: ${verdict.misstated.length}; wrong or missing settlements: ${verdict.wrongSettlements.length}; payments without exactly one payment.confirmed when confirmed (none otherwise): ${verdict.confirmationEvents.length}`,
      `unmatched operations not listed: ${verdict.unmatchedMissing.length}; listed but not unmatched: ${verdict.unmatchedExtra.length}; payments nobody created: ${verdict.extraPayments.length}`,
      `events ${ids.length}; lost per receiver ${receivers.map((r, i) => `${r.name} ${lost[i]}`).join(", ")}; duplicates ${receivers.map((r, i) => `${r.name} ${duplicates[i]}`).join(", ")}; requests ${receivers.map((r) => `${r.name} ${r.requests}`).join(", ")}; signatures that did not verify: ${badSignatures}`,
      `faults (a client listing payments on each instance every 100 ms; the driver's own create calls: ${driven.attempts.filter((x) => !x.ok).length} failed of ${driven.attempts.length}${outcomes(driven.attempts)}, each retried with its Idempotency-Key 100 ms later):`,
      ...faults.slice(0, paymentFaults).map((f) => `  ${faultReport(f, probes.attempts)}`),
      `  and after the payments, the fuzz stage's own: ${fuzzFaults.length} faults (${fuzzFaults.filter((f) => f.name.startsWith("SIGKILL")).length} SIGKILLs of an API process, ${fuzzFaults.filter((f) => f.name.startsWith("PostgreSQL")).length} PostgreSQL restarts) in ${((fuzzFaults.at(-1)!.recovered - fuzzFaults[0]!.start) / 1000).toFixed(0)} s`,
      `  API errors outside the faults: ${outside.length} of ${probes.attempts.length + driven.attempts.length} requests (the client's and the driver's)${outside.length ? ` (${outside.slice(0, 5).map((o) => `${new Date(o.at).toISOString().slice(11, 23)} ${o.instance} ${o.outcome}`).join(", ")})` : ""}`,
      ...problems.slice(0, 20).map((line) => `  ✗ ${line}`),
      `fuzz stage (the OpenAPI fuzzer: ${FUZZ_LOOPS} loop(s) per API instance, each with a tenant of its own, at most ${FUZZ_RATE} requests/s each): ${fuzzed.requests} requests, ${fuzzedWithPayments} of them while the payments were driven, the rest during the fuzz stage's own faults; answers by status ${JSON.stringify(fuzzed.byStatus)}`,
      `  5xx or no answer while the instance was down: ${fuzzed.failures.length - fuzzOutside.length}; at other times: ${fuzzOutside.length}${fuzzOutside.length ? ` (${fuzzOutside.slice(0, 5).map((f) => `${new Date(f.at).toISOString().slice(11, 23)} ${f.instance} ${f.outcome}`).join(", ")})` : ""}`,
      `  properties broken (internal detail shown, 4xx without a code, data written by a refused request, tenant A changed or shown): ${fuzzed.problems.length}`,
      ...fuzzed.problems.slice(0, 5).map((line) => `  ✗ ${line}`),
      `500 answers at any time (a fault should give 503 or no answer): ${internalErrors}`,
      `processes that exited by themselves: ${crashes.length}`,
      ...crashes.map((crash) => `  ✗ ${crash}`),
      failed ? "FAILED" : "PASSED",
    ];
    console.log(`\n${summary.join("\n")}`);
    if (failed) for (const p of processes) if (p.problems()) console.log(`${p.name} logged:\n${p.problems().slice(-4000)}`);
    if (!short && process.env.CHAOS_PAYMENTS === undefined) {
      const report = new URL("../BENCHMARKS.md", import.meta.url);
      const measured = `Measured on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "unknown CPU"}, Node.js ${process.version}; reproduce with \`npm run chaos\`.`;
      await writeFile(report, withChaosSection(await readFile(report, "utf8"), [measured, "```", ...summary, "```"]));
      log("wrote its summary into BENCHMARKS.md");
    }
    return failed ? 1 : 0;
  } finally {
    await cleanUp();
  }
}

process.exit(await main());
