/**
 * The chaos run's fuzz stage: the suite's OpenAPI fuzzer (test/support/fuzz.ts) against each API
 * instance while the run kills and restarts them. One tenant per instance is fuzzed (its own requests
 * are the only ones that may change its data); tenant A is the control nobody may change.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import type pg from "pg";
import {
  answerViolations,
  createTenant,
  describe,
  digestSql,
  merchantDigestSql,
  requestArbitrary,
  send,
  type Snapshot,
  type Tenant,
} from "../packages/server/test/support/fuzz.js";

/**
 * What of a merchant only its API requests write: background work (expiry, ingestion, deliveries,
 * recoveries, automatic disabling) changes the rest, and may do so while a request is in flight.
 * A payment's event_sequence is the background's too: each event it writes for a payment bumps it.
 */
const API_WRITES = [
  ["merchants", "id", "select * from merchants"],
  ["merchant_accounts", "merchant_id", "select * from merchant_accounts"],
  ["api_keys", "merchant_id", "select id, merchant_id, hash, prefix, created_at, expires_at, revoked_at from api_keys"],
  ["payments", "merchant_id", "select merchant_id, to_jsonb(p) - 'status' - 'updated_at' - 'amount_received_stroops' - 'confirmed_at' - 'expired_at' - 'event_sequence' as p from payments p"],
  ["events", "merchant_id", "select * from events where type in ('payment.created', 'payment.canceled', 'webhook.test')"],
  ["webhook_endpoints", "merchant_id", "select merchant_id, to_jsonb(e) - 'failing_since' - 'updated_at' as e from webhook_endpoints e"],
  ["webhook_recoveries", "merchant_id", "select r.id, r.since, r.until, r.created_at, e.merchant_id from webhook_recoveries r join webhook_endpoints e on e.id = r.endpoint_id"],
  ["idempotency_keys", "merchant_id", "select * from idempotency_keys"],
  ["account_challenges", "merchant_id", "select * from account_challenges"],
] as const;

/** SQL for one digest of what the API writes for the merchant whose id is `$1`. */
export const apiWritesDigestSql = digestSql(API_WRITES, "where t.$col = $1");

/** One fuzz request whose answer was a 5xx or no answer at all: allowed only while its instance is down. */
export interface FuzzFailure {
  sent: number;
  at: number;
  instance: string;
  outcome: string;
}

export interface FuzzReport {
  requests: number;
  byStatus: Record<string, number>;
  /** 5xx answers and failed connections, to be checked against the faults' windows. */
  failures: FuzzFailure[];
  /** Broken properties of answered requests (internal detail, 4xx without code, writes by a refused request, tenant A touched or shown). */
  problems: string[];
}

export interface FuzzStage {
  readonly requests: number;
  stop(): Promise<FuzzReport>;
}

interface Options {
  pool: pg.Pool;
  /** The API instance of each fuzzing loop (name one twice for two loops); every loop fuzzes a tenant of its own. */
  instances: string[];
  /** Accounts for tenant A and for each loop's tenant, funded on the network, so that ingestion follows real accounts. */
  accounts: string[];
  /** Requests per second per loop, at most. */
  rate: number;
  seed: number;
}

/** Answers 204 to every webhook of the fuzz tenants, so that their deliveries finish. */
async function startSink(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => req.resume().on("end", () => res.writeHead(204).end()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

/** Retries `query` while PostgreSQL restarts (for two minutes at most). */
async function persistently<T>(query: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      return await query();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
}

/**
 * Sets up the tenants (A's webhooks delivered before its digest is taken) and starts the fuzzing
 * loops, each at `rate` requests per second at most, until `stop()`.
 */
export async function startFuzz(options: Options): Promise<FuzzStage> {
  const { pool, instances } = options;
  const sink = await startSink();
  const first = new URL(instances[0]!);
  const a = await createTenant(pool, first, "fuzz-control", { account: options.accounts[0]!, endpointUrl: sink.url });
  const tenants = await Promise.all(
    instances.map((url, i) => createTenant(pool, new URL(url), `fuzz-${i}`, { account: options.accounts[i + 1]!, endpointUrl: sink.url })),
  );
  for (let tries = 0; !(await settled(pool, a)); tries++) {
    if (tries > 240) throw new Error("tenant A's webhooks were not all delivered within a minute");
    await sleep(250);
  }
  const doc = (await (await fetch(new URL("/openapi.json", first))).json()) as Parameters<typeof requestArbitrary>[0];

  const report: FuzzReport = { requests: 0, byStatus: {}, failures: [], problems: [] };
  let running = true;
  // Tenant A's digest reads all its rows, webhook deliveries included (a sequential scan of a table that
  // grows by thousands a minute here): it is compared after every 100 requests of each loop, and at the end.
  const digestOfA = () => persistently(async () => (await pool.query<{ a: string }>(`select ${merchantDigestSql("$1")} as a`, [a.merchantId])).rows[0]!.a);
  const control = await digestOfA();
  let controlChecked = Date.now();
  const checkControl = async () => {
    const since = controlChecked;
    controlChecked = Date.now();
    if ((await digestOfA()) !== control) report.problems.push(`tenant A's data changed between ${new Date(since).toISOString()} and ${new Date().toISOString()}`);
  };
  // Per request, what the fuzzing tenant's own requests write; `a` is left equal (A is checked above).
  const digestOfB = (b: Tenant) =>
    persistently(async (): Promise<Snapshot> => ({ all: (await pool.query<{ b: string }>(`select ${apiWritesDigestSql} as b`, [b.merchantId])).rows[0]!.b, a: control }));
  const loops = instances.map(async (instance, i) => {
    const b = tenants[i]!;
    const origin = new URL(instance);
    const requests = requestArbitrary(doc, a, b);
    for (let batch = 0; running; batch++) {
      for (const req of fc.sample(requests, { numRuns: 100, seed: options.seed + 1000 * i + batch })) {
        if (!running) break;
        const paced = sleep(1000 / options.rate);
        const before = await digestOfB(b);
        const sent = Date.now();
        const res = await send(origin, req, 10_000).catch((error: NodeJS.ErrnoException) => error);
        report.requests++;
        if (res instanceof Error) {
          report.failures.push({ sent, at: Date.now(), instance, outcome: res.code ?? res.message });
        } else {
          report.byStatus[res.status] = (report.byStatus[res.status] ?? 0) + 1;
          if (res.status >= 500) report.failures.push({ sent, at: Date.now(), instance, outcome: String(res.status) });
          const problems = answerViolations(req, res, before, await digestOfB(b), a);
          if (problems.length > 0) report.problems.push(`${instance}: ${problems.join("; ")}\n    request: ${describe(req)}\n    answer: ${res.status} ${res.body.slice(0, 300)}`);
        }
        await paced;
      }
      await checkControl();
    }
  });
  let stopped: Promise<FuzzReport> | undefined;
  return {
    get requests() {
      return report.requests;
    },
    stop: () =>
      (stopped ??= (async () => {
        running = false;
        await Promise.all(loops);
        await checkControl();
        await sink.close();
        return report;
      })()),
  };
}

/** Whether every webhook of `tenant` was delivered and its recovery finished: from then on nothing but a request changes its data. */
async function settled(pool: pg.Pool, tenant: Tenant): Promise<boolean> {
  const { rows } = await pool.query<{ busy: boolean }>(
    `select exists (select from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id where e.merchant_id = $1 and d.status <> 'succeeded')
         or exists (select from webhook_recoveries r join webhook_endpoints e on e.id = r.endpoint_id where e.merchant_id = $1 and r.finished_at is null) as busy`,
    [tenant.merchantId],
  );
  return !rows[0]!.busy;
}
