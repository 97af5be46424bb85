/** Seeding and counting shared by the ingestion benchmark's scenarios (bench/ingest). */
import pg from "pg";
import { newId } from "../../packages/server/src/ids.js";
import type { Metrics } from "../../packages/server/src/metrics/registry.js";

/**
 * One merchant per account, inserted in two statements (createMerchant's round trips would make
 * 10 000 accounts take longer than the measurement). `createdAt` backdates the merchants and their
 * accounts, so that a first start reaches back over a chain written before them. Returns each
 * account's merchant id, in the order of `accounts`.
 */
export async function seedMerchantAccounts(pool: pg.Pool, accounts: string[], createdAt: Date): Promise<string[]> {
  const ids = accounts.map(() => newId("mer"));
  await pool.query(
    `insert into merchants (id, name, email, created_at, updated_at)
     select id, 'Bench ' || n, 'bench' || n || '@example.test', $2, $2 from unnest($1::text[]) with ordinality as t(id, n)`,
    [ids, createdAt],
  );
  await pool.query(
    `insert into merchant_accounts (account, merchant_id, position, created_at)
     select account, merchant_id, 1, $3 from unnest($1::text[], $2::text[]) as t(account, merchant_id)`,
    [accounts, ids, createdAt],
  );
  return ids;
}

export interface SeededPayment {
  merchantId: string;
  account: string;
  /** An id memo, as the payment API writes it (plain decimal). */
  memo: string;
}

/**
 * Pending payments of 1 XLM waiting for an id memo, in one statement; `createdAt` must be before the
 * on-chain payments that settle them (an operation closed before a payment was created pays nothing).
 */
export async function seedPayments(pool: pg.Pool, payments: SeededPayment[], createdAt: Date): Promise<void> {
  await pool.query(
    `insert into payments (id, merchant_id, amount_stroops, asset_code, destination, memo_type, memo, expires_at, monitor_for_s, created_at, updated_at)
     select id, merchant_id, 10000000, 'XLM', destination, 'id', memo, now() + interval '1 hour', 86400, $5, $5
     from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as t(id, merchant_id, destination, memo)`,
    [payments.map(() => newId("pay")), payments.map((p) => p.merchantId), payments.map((p) => p.account), payments.map((p) => p.memo), createdAt],
  );
}

export interface QueryCount {
  /** Queries sent: each one round trip, as node-postgres does not pipeline. */
  queries: number;
  /** Milliseconds during which at least one query was waiting for its answer. */
  busyMs: number;
}

/**
 * Counts the queries every pg.Client of this process sends, and the time some query is outstanding,
 * until `stop` is called.
 */
export function countQueries(): { stop(): QueryCount } {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  let queries = 0;
  let busyMs = 0;
  let outstanding = 0;
  let since = 0;
  const begin = () => {
    queries++;
    if (outstanding++ === 0) since = performance.now();
  };
  const end = () => {
    if (--outstanding === 0) busyMs += performance.now() - since;
  };
  proto.query = function (this: unknown, ...args: unknown[]) {
    begin();
    // pg-pool passes a callback; callers of a client get a promise.
    const last = args.at(-1);
    if (typeof last === "function") {
      args[args.length - 1] = (...results: unknown[]) => {
        end();
        return (last as (...r: unknown[]) => unknown)(...results);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result instanceof Promise) result.then(end, end);
    else end();
    return result;
  };
  let stopped: QueryCount | undefined;
  return {
    /** Restores the client; called again, returns the same count. */
    stop() {
      if (!stopped) {
        proto.query = original;
        stopped = { queries, busyMs };
      }
      return stopped;
    },
  };
}

/** Requests made to Stellar RPC by method, from the `stellar_rpc_requests_total` counter of `metrics`. */
export async function rpcRequests(metrics: Pick<Metrics, "registry">): Promise<Map<string, number>> {
  const metric = await metrics.registry.getSingleMetric("stellar_rpc_requests_total")?.get();
  return new Map((metric?.values ?? []).map((v) => [String(v.labels.method), v.value]));
}
