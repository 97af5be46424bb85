import { setTimeout as sleep } from "node:timers/promises";
import client from "prom-client";
import { backoffMs } from "../backoff.js";
import type { Clock } from "../clock.js";
import type { Config } from "../config.js";
import type { Pool } from "../db/pool.js";
import type { Metrics } from "../metrics/registry.js";
import { advisoryLocks, leaseLocks } from "./account-locks.js";
import { horizonServer } from "./horizon-source.js";
import { ingestAccount, RECONNECT_BACKOFF, type ApplyRecord, type IngestLog, type IngestMetrics } from "./ingest-account.js";
import { listMerchantAccounts } from "./ingest-store.js";

export { parsePagingToken } from "./ingest-store.js";
export { type ApplyContext, type ApplyRecord } from "./ingest-account.js";

export interface PaymentIngestionDeps<T> {
  config: Config;
  pool: Pool;
  /**
   * A direct connection string for the connection holding the advisory locks (never a transaction
   * pooler's); without one, accounts are held with leases in the database (account-locks.ts).
   */
  connectionString: string | undefined;
  /** How long a lease lasts without renewal (lease mode); default 30 s. */
  leaseTtlMs?: number;
  clock: Clock;
  log: IngestLog;
  metrics: Pick<Metrics, "registry">;
  signal: AbortSignal;
  /** Applies payment records in the transaction that advances the cursor, a page at a time when it can (`applyPaymentRecord`). */
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
const DEFAULT_LEASE_TTL_MS = 30_000;

export { ingestLockKey } from "./account-locks.js";

/** Gauges computed at scrape time from the per-account state, which never leaves the process. */
export function createIngestMetrics(registry: client.Registry): IngestMetrics {
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
  const { server, close } = horizonServer(horizonUrl, watchdogMs);
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

  /** One lock holder's lifetime; throws when the locks fail, returns when `signal` aborts. */
  const lockSession = async (onEstablished: () => void): Promise<void> => {
    const locks = deps.connectionString
      ? await advisoryLocks(deps.connectionString, networkPassphrase)
      : leaseLocks(deps.pool, networkPassphrase, deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS);
    const lost = AbortSignal.any([signal, locks.lost]);
    const running = new Map<string, Running>();
    const stopAccount = async (account: string, why: string) => {
      const r = running.get(account)!;
      r.stop.abort();
      await r.done;
      running.delete(account);
      log.info({ account }, why);
    };
    try {
      while (!lost.aborted) {
        const accounts = new Set(await listMerchantAccounts(deps.pool));
        for (const account of [...running.keys()].filter((a) => !accounts.has(a))) {
          await stopAccount(account, "stopped ingesting an account no merchant uses");
          await locks.release(account);
        }
        for (const account of await locks.renew([...running.keys()])) await stopAccount(account, "lost the account's lease; another instance may ingest it");
        const taken = await locks.take([...accounts].filter((a) => !running.has(a)));
        for (const account of taken) running.set(account, startAccount(account, lost));
        onEstablished();
        await sleep(pollAccountsMs, undefined, { signal: lost }).catch(() => undefined);
      }
    } finally {
      // Streams stop before the locks go, so that no other instance starts while a batch commits here.
      for (const r of running.values()) r.stop.abort();
      await Promise.all([...running.values()].map((r) => r.done));
      await locks.close().catch(() => undefined);
    }
    if (!signal.aborted) throw locks.lost.reason ?? new Error("the ingestion locks were lost");
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
        await sleep(backoffMs(failures, RECONNECT_BACKOFF, Math.random), undefined, { signal }).catch(() => undefined);
      }
    }
  })().finally(close);
  return { done, streamState: (account) => metrics.streams.get(account) };
}
