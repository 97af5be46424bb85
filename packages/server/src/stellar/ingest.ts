import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { Horizon } from "@stellar/stellar-sdk";
import pg from "pg";
import client from "prom-client";
import type { Clock } from "../clock.js";
import type { Config } from "../config.js";
import type { Pool } from "../db/pool.js";
import type { Metrics } from "../metrics/registry.js";
import { ingestAccount, reconnectDelayMs, type ApplyRecord, type IngestLog, type IngestMetrics } from "./ingest-account.js";
import { listMerchantAccounts } from "./ingest-store.js";

export { parsePagingToken } from "./ingest-store.js";
export { reconnectDelayMs, type ApplyContext, type ApplyRecord } from "./ingest-account.js";

export interface PaymentIngestionDeps<T> {
  config: Config;
  pool: Pool;
  /** For the connection holding the advisory locks, which must not come from the pool. */
  connectionString: string;
  clock: Clock;
  log: IngestLog;
  metrics: Pick<Metrics, "registry">;
  signal: AbortSignal;
  /** Applies one payment record in the transaction that advances the cursor (`applyPaymentRecord`). */
  apply: ApplyRecord<T>;
  /** Called with each outcome of `apply` after its transaction committed (e.g. `observeSettlement`). */
  observe?: (outcome: T) => void;
  /** Default: `config.stellar.horizonUrl`. */
  horizonUrl?: string;
  /** Default: `config.stellar.networkPassphrase`. */
  networkPassphrase?: string;
  /** How often merchant accounts are re-read and unheld locks retried; default 10 s. */
  pollAccountsMs?: number;
  /** A stream silent this long is reconnected; default 60 s. */
  watchdogMs?: number;
}

const DEFAULT_POLL_ACCOUNTS_MS = 10_000;
const DEFAULT_WATCHDOG_MS = 60_000;

/** The advisory lock of one account on one network: 64 bits of a hash, namespaced against other lock users. */
export function ingestLockKey(networkPassphrase: string, account: string): string {
  return createHash("sha256").update(`lumenpay:ingest\n${networkPassphrase}\n${account}`).digest().readBigInt64BE(0).toString();
}

/** Gauges computed at scrape time from the per-account state, which never leaves the process. */
function createIngestMetrics(registry: client.Registry): IngestMetrics {
  const streams = new Map<string, 0 | 1>();
  const lag = new Map<string, number>();
  new client.Gauge({
    name: "horizon_streams_connected",
    help: "Merchant accounts whose payments this instance streams from Horizon now.",
    registers: [registry],
    collect() {
      this.set([...streams.values()].filter((s) => s === 1).length);
    },
  });
  new client.Gauge({
    name: "horizon_streams_reconnecting",
    help: "Merchant accounts this instance holds but whose stream is (re)connecting.",
    registers: [registry],
    collect() {
      this.set([...streams.values()].filter((s) => s === 0).length);
    },
  });
  new client.Gauge({
    name: "horizon_ingest_lag_seconds",
    help: "The largest time, over this instance's accounts, from the ledger close of the last processed payment to its commit.",
    registers: [registry],
    collect() {
      this.set(Math.max(0, ...lag.values()));
    },
  });
  return {
    streams,
    lag,
    reconnects: new client.Counter({
      name: "horizon_stream_reconnects_total",
      help: "Payment streams restarted, by reason (silence, overflow, error, aborted).",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}

export interface PaymentIngestion {
  /** Resolves once ingestion has stopped (see `startPaymentIngestion`). */
  done: Promise<void>;
  /** 1 while `account`'s payments stream here, 0 while (re)connecting, undefined when another instance (or none) holds it. */
  streamState(account: string): 0 | 1 | undefined;
}

interface Running {
  stop: AbortController;
  done: Promise<void>;
}

/**
 * Ingests the payments of every merchant account on one network. Any number of instances may run
 * it against one database: each account is ingested by the instance holding its session advisory
 * lock, on a dedicated connection. When that connection dies the locks go with it and the instance
 * stops ingesting, while another takes the accounts over from their stored cursors. Accounts are
 * re-read and unheld locks retried every `pollAccountsMs`. Resolves once `signal` has aborted,
 * the streams are closed and the locks released.
 */
export function startPaymentIngestion<T>(deps: PaymentIngestionDeps<T>): PaymentIngestion {
  const { config, signal, log } = deps;
  const horizonUrl = deps.horizonUrl ?? config.stellar.horizonUrl;
  const networkPassphrase = deps.networkPassphrase ?? config.stellar.networkPassphrase;
  const pollAccountsMs = deps.pollAccountsMs ?? DEFAULT_POLL_ACCOUNTS_MS;
  const watchdogMs = deps.watchdogMs ?? DEFAULT_WATCHDOG_MS;
  // An http:// Horizon is only ever one the operator configured explicitly.
  const server = new Horizon.Server(horizonUrl, { allowHttp: new URL(horizonUrl).protocol === "http:" });
  server.httpClient.defaults.timeout = watchdogMs;
  // The SDK's requests get keep-alive agents of their own, away from the global ones its EventSource
  // streams use. axios sends them through follow-redirects, whose request timeout leaves
  // `socket.destroy` listening for the socket's "timeout" event after the request is done; a stream
  // reusing such a socket from the global agent (whose sockets time out after 5 s idle) was destroyed
  // by the first 5 s without a payment ("payment stream failed: connection lost").
  const agentOptions = { keepAlive: true, timeout: 5_000 };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  // The client is an axios instance (the SDK's build with axios), though its type leaves these options out.
  Object.assign(server.httpClient.defaults, { httpAgent: agents.http, httpsAgent: agents.https });
  const metrics = createIngestMetrics(deps.metrics.registry);
  const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase };

  const startAccount = (account: string, lost: AbortSignal): Running => {
    const stop = new AbortController();
    const done = ingestAccount({
      server,
      pool: deps.pool,
      key: { networkPassphrase, account },
      apply: deps.apply,
      observe: deps.observe,
      links,
      clock: deps.clock,
      log,
      metrics,
      watchdogMs,
      signal: AbortSignal.any([lost, stop.signal]),
    });
    log.info({ account }, "ingesting the account's payments");
    return { stop, done };
  };

  /** One lock connection's lifetime; throws when the connection fails, returns when `signal` aborts. */
  const lockSession = async (onEstablished: () => void): Promise<void> => {
    const lost = new AbortController();
    const onAbort = () => lost.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const locks = new pg.Client({
      connectionString: deps.connectionString,
      application_name: `lumenpay-ingest ${process.pid}@${hostname()}`.slice(0, 63),
      keepAlive: true,
    });
    let failure: unknown;
    locks.on("error", (error) => {
      failure ??= error;
      lost.abort();
    });
    locks.on("end", () => lost.abort());
    const running = new Map<string, Running>();
    try {
      await locks.connect();
      while (!lost.signal.aborted) {
        const accounts = new Set(await listMerchantAccounts(deps.pool));
        for (const [account, r] of running) {
          if (accounts.has(account)) continue;
          r.stop.abort();
          await r.done;
          running.delete(account);
          await locks.query("select pg_advisory_unlock($1::int8)", [ingestLockKey(networkPassphrase, account)]);
          log.info({ account }, "stopped ingesting an account no merchant uses");
        }
        const wanted = [...accounts].filter((a) => !running.has(a));
        // One round trip for every lock, which doubles as a liveness check of the lock connection.
        const { rows } = await locks.query<{ account: string; locked: boolean }>(
          "select account, pg_try_advisory_lock(key) as locked from unnest($1::text[], $2::int8[]) as t(account, key)",
          [wanted, wanted.map((a) => ingestLockKey(networkPassphrase, a))],
        );
        for (const { account, locked } of rows) if (locked) running.set(account, startAccount(account, lost.signal));
        onEstablished();
        await sleep(pollAccountsMs, undefined, { signal: lost.signal }).catch(() => undefined);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      // Streams stop before the locks go, so that no other instance starts while a batch commits here.
      for (const r of running.values()) r.stop.abort();
      await Promise.all([...running.values()].map((r) => r.done));
      locks.removeAllListeners("end");
      await locks.end().catch(() => undefined);
    }
    if (!signal.aborted) throw failure ?? new Error("the advisory lock connection closed");
  };

  const done = (async () => {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await lockSession(() => (failures = 0));
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        log.error({ err: error, failures }, "payment ingestion lost its database lock connection; reconnecting");
        await sleep(reconnectDelayMs(failures, Math.random), undefined, { signal }).catch(() => undefined);
      }
    }
  })().finally(() => {
    agents.http.destroy();
    agents.https.destroy();
  });
  return { done, streamState: (account) => metrics.streams.get(account) };
}
