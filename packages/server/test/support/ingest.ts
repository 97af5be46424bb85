import { Keypair } from "@stellar/stellar-sdk";
import { systemClock, type Clock } from "../../src/clock.js";
import { loadConfig, type Config } from "../../src/config.js";
import type { Pool } from "../../src/db/pool.js";
import { createLogger } from "../../src/logger.js";
import { createMerchant } from "../../src/merchants/service.js";
import type { Merchant } from "../../src/merchants/store.js";
import { createMetrics, type Metrics } from "../../src/metrics/registry.js";
import { startPaymentIngestion, type PaymentIngestion, type PaymentIngestionDeps } from "../../src/stellar/ingest.js";
import type { LocalHorizon } from "../../src/stellar/local-horizon/index.js";
import type { TestDatabase } from "./db.js";
import { waitFor } from "./wait.js";

export type IngestionOptions<T> = Pick<
  PaymentIngestionDeps<T>,
  "apply" | "observe" | "horizonUrl" | "networkPassphrase" | "watchdogMs" | "leaseTtlMs"
> & {
  /** Default: `db.pool`. */
  pool?: Pool;
  /** The advisory-lock connection; default `db.url`, undefined for leases (a database behind a pooler). */
  connectionString?: string | undefined;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: `loadConfig({})`. */
  config?: Config;
  /** Default: fresh metrics over `db.pool`. */
  metrics?: Metrics;
};

/**
 * An ingesting instance in this process over `db`, re-reading merchant accounts every 100 ms.
 * `stop` aborts it and resolves once it has wound down; calling it again returns the same promise.
 */
export function startIngestion<T>(
  db: TestDatabase,
  { config = loadConfig({}), metrics = createMetrics(db.pool), clock = systemClock, pool = db.pool, ...deps }: IngestionOptions<T>,
) {
  const controller = new AbortController();
  const ingestion = startPaymentIngestion({
    config,
    pool,
    connectionString: "connectionString" in deps ? deps.connectionString : db.url,
    clock,
    log: createLogger("silent"),
    metrics,
    signal: controller.signal,
    pollAccountsMs: 100,
    ...deps,
  });
  let stopped: Promise<void> | undefined;
  const stop = () => {
    controller.abort();
    return (stopped ??= ingestion.done);
  };
  return { metrics, stop, streamState: ingestion.streamState };
}

/** The value of metric `name` in the first series carrying all of `labels`. */
export async function metricValue(metrics: Pick<Metrics, "registry">, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))?.value;
}

/** 1 while `instance` streams `account`'s payments, 0 while it reconnects, undefined when it does not hold the account. */
export const connected = async (instance: Pick<PaymentIngestion, "streamState">, account: string) => instance.streamState(account);

/** Resolves once the wall clock is in a later second than `closedAt`: ledger close times have whole seconds. */
export const pastTheSecondOf = (closedAt: string) =>
  waitFor(async () => Math.floor(Date.now() / 1000) > Math.floor(Date.parse(closedAt) / 1000), "the next second", 5_000);

/**
 * A merchant ("Shop") whose only account is a fresh one on `horizon`, funded with 1 XLM and attached
 * in a later second, as a real account is funded before it is attached: ingestion then starts after
 * the funding and every record a test sees is its own.
 */
export async function newMerchant(pool: Pool, horizon: LocalHorizon): Promise<{ merchant: Merchant; account: string }> {
  const account = Keypair.random().publicKey();
  await pastTheSecondOf((await horizon.fund(account, "1")).created_at);
  const { merchant } = await createMerchant(pool, { name: "Shop", email: "shop@example.test", accounts: [account] }, new Date());
  return { merchant, account };
}

/** The operation's paging token: its transaction's TOID with operation index 1. */
export const opToken = (tx: { paging_token: string }) => (BigInt(tx.paging_token) + 1n).toString();

/** The paging token stored as `account`'s cursor on the network, if any. */
export async function storedCursor(pool: Pool, networkPassphrase: string, account: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ paging_token: string }>(
    "select paging_token from stellar_cursors where network_passphrase = $1 and account = $2",
    [networkPassphrase, account],
  );
  return rows[0]?.paging_token;
}

/** Which of `children` holds the session advisory lock `key` (each names its pid in its application_name); undefined when none does. */
export async function advisoryLockHolder<C extends { pid?: number }>(pool: Pool, key: string, children: C[]): Promise<C | undefined> {
  const { rows } = await pool.query<{ application_name: string }>(
    `select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid
     where l.locktype = 'advisory' and l.granted and ((l.classid::int8 << 32) | l.objid::int8) = $1::int8`,
    [key],
  );
  const pid = rows.length === 1 ? Number(/^lumenpay-ingest (\d+)@/.exec(rows[0]!.application_name)?.[1]) : undefined;
  return children.find((c) => c.pid === pid);
}
