import type { OpRow, TxRow } from "./types.js";

/** An account's (or the network's) payment-type operations in ascending id order; failed ones only in `all`. */
export interface OpIndex {
  all: OpRow[];
  successful: OpRow[];
}

export interface PageQuery {
  /** Exclusive bound: records after it (asc) or before it (desc); null starts at the beginning or end. */
  cursor: bigint | null;
  order: "asc" | "desc";
  limit: number;
}

const PAYMENT_TYPES = new Set(["create_account", "payment", "path_payment_strict_receive", "path_payment_strict_send", "account_merge"]);

export const paymentsTopic = (account?: string) => (account ? `payments:${account}` : "payments");

/** Accounts a payment record is listed under: the operation's source and its counterparty. */
function participants(op: OpRow): string[] {
  const spec = op.spec;
  const other = spec.type === "create_account" ? spec.destination : "to" in spec ? spec.to.account : undefined;
  return other && other !== op.source.account ? [op.source.account, other] : [op.source.account];
}

function append(index: OpIndex, op: OpRow): void {
  index.all.push(op);
  if (op.tx.successful) index.successful.push(op);
}

/**
 * Published (closed-ledger) records with the indexes Horizon's endpoints need. Records arrive in id order,
 * so every index is an append-only sorted array.
 */
export class History {
  private readonly txs = new Map<string, TxRow>();
  /** Every published transaction in id (application) order, whole ledgers at a time. */
  readonly transactions: TxRow[] = [];
  private readonly ops = new Map<bigint, OpRow>();
  readonly payments: OpIndex = { all: [], successful: [] };
  private readonly accountPayments = new Map<string, OpIndex>();
  private readonly listeners = new Map<string, Set<() => void>>();

  /** By hash; a fee bump is found by its outer and its inner hash. */
  transaction(hash: string): TxRow | undefined {
    return this.txs.get(hash);
  }

  operation(id: bigint): OpRow | undefined {
    return this.ops.get(id);
  }

  paymentsOf(account: string): OpIndex | undefined {
    return this.accountPayments.get(account);
  }

  publish(rows: readonly TxRow[]): void {
    const touched = new Set<string>();
    for (const tx of rows) {
      this.transactions.push(tx);
      this.txs.set(tx.tx.hash, tx);
      if (tx.tx.feeBump) this.txs.set(tx.tx.feeBump.hash, tx);
      for (const op of tx.ops) {
        this.ops.set(op.id, op);
        if (!PAYMENT_TYPES.has(op.spec.type)) continue;
        append(this.payments, op);
        touched.add(paymentsTopic());
        for (const account of participants(op)) {
          let index = this.accountPayments.get(account);
          if (!index) this.accountPayments.set(account, (index = { all: [], successful: [] }));
          append(index, op);
          touched.add(paymentsTopic(account));
        }
      }
    }
    for (const topic of touched) for (const listener of this.listeners.get(topic) ?? []) listener();
  }

  /** Calls `listener` after each ledger that adds records under `topic`; returns the unsubscribe function. */
  subscribe(topic: string, listener: () => void): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(topic);
    };
  }
}

/** First index whose key is > value (`strict`) or >= value, in rows sorted by ascending key. */
export function bound<T>(rows: readonly T[], key: (row: T) => bigint, value: bigint, strict: boolean): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = key(rows[mid]!);
    if (strict ? k <= value : k < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One page of rows sorted by ascending key, found by binary search: O(log n + limit) whatever the history size. */
export function pageOf<T>(rows: readonly T[], key: (row: T) => bigint, query: PageQuery): T[] {
  if (query.order === "asc") {
    const start = query.cursor === null ? 0 : bound(rows, key, query.cursor, true);
    return rows.slice(start, start + query.limit);
  }
  const end = query.cursor === null ? rows.length : bound(rows, key, query.cursor, false);
  return rows.slice(Math.max(0, end - query.limit), end).reverse();
}
