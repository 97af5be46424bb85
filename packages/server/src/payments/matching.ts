import type { Db } from "../db/pool.js";
import { sameAsset } from "../stellar/assets.js";
import type { IncomingOperation } from "../stellar/incoming.js";
import type { Payment, PaymentRow } from "./store.js";

/**
 * How an on-chain operation is matched to a payment. Everything here is decided by the ledger: the
 * operation's close time against the payment's creation, deadline and monitoring window — never by
 * when Lumenpay happened to see the operation.
 *
 * 1. The operation names a payment by its destination account plus muxed id (an M address) or
 *    memo (compared as bytes). Only payments of the merchant that owns the account count.
 * 2. A payment is eligible when the operation closed no earlier than `CLOCK_SLACK_MS` before the
 *    payment was created, and no later than `monitor_for` seconds after it expired.
 * 3. Among eligible payments (a memo can be reused once a payment is closed): a muxed id beats a
 *    memo; a payment created before the operation closed beats one reached only through the slack;
 *    a payment the operation is on time for beats one it is late for; then the newest. So an old
 *    operation for a canceled "order-42" never settles a new "order-42".
 * 4. The asset must be the payment's, exactly (code and issuer).
 * 5. On time means closed at or before the deadline — `expires_at`, or `canceled_at` if earlier —
 *    and before the payment was fully paid. Anything else that matches is late.
 *
 * An incoming operation that matches nothing is unmatched, with the reason.
 */

/**
 * Allowance for the difference between this server's clock (a payment's `created_at`) and the
 * network's close times: an operation may close this long before its payment was created.
 */
export const CLOCK_SLACK_MS = 30_000;

export type Timing = "on_time" | "late";

export type UnmatchedReason = "no_memo" | "unknown_memo" | "wrong_asset" | "before_payment" | "after_monitoring_window";

export type Match =
  | { kind: "payment"; payment: Payment; timing: Timing }
  | { kind: "unmatched"; merchantId: string; reason: UnmatchedReason; paymentId: string | null }
  /** The account belongs to no merchant, or it was attached after the operation closed. */
  | { kind: "not_ours" };

/** The time after which an operation no longer counts towards `payment`. */
export function deadline(payment: Pick<Payment, "expiresAt" | "canceledAt">): Date {
  return payment.canceledAt && payment.canceledAt < payment.expiresAt ? payment.canceledAt : payment.expiresAt;
}

/** Whether an operation closing at `closedAt` is on time for `payment`, which it matches. */
export function timing(payment: Pick<Payment, "status" | "expiresAt" | "canceledAt">, closedAt: Date): Timing {
  return payment.status !== "confirmed" && closedAt <= deadline(payment) ? "on_time" : "late";
}

/** Rule 3 as a sort key: lower sorts first. */
function preference(payment: Payment, op: IncomingOperation): number[] {
  return [
    op.muxedId !== null && payment.muxedId === op.muxedId ? 0 : 1,
    payment.createdAt <= op.closedAt ? 0 : 1,
    timing(payment, op.closedAt) === "on_time" ? 0 : 1,
    -payment.createdAt.getTime(),
  ];
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The merchant that owns an account, and since when (close times have whole seconds: truncated). */
export interface Owner {
  merchantId: string;
  attachedAt: Date;
}

/**
 * A payment an operation's memo or muxed id names although it is not eligible: the newest created
 * before the operation closed (`before: false`), or the oldest created after it (`before: true`).
 */
export interface NamedPayment {
  id: string;
  before: boolean;
}

/** The page's operations as parameters $2–$6 of an `unnest` named `o`. */
const OPS = "unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) as o(i, muxed_id, memo_type, memo, closed_at)";
const opParams = (ops: IncomingOperation[]) => [
  ops.map((_, i) => i),
  ops.map((op) => op.muxedId),
  ops.map((op) => op.memo?.type ?? null),
  ops.map((op) => op.memo?.value ?? null),
  ops.map((op) => op.closedAt),
];
/** Rule 1 for operation `o` and payments `p`, without the owner (each query names it its own way). */
const NAMES = "p.destination = $1 and (p.muxed_id = o.muxed_id or (p.memo_type = o.memo_type and p.memo = o.memo))";

/** A payment row as `lockEligible` returns it: without its settlements, with its event sequence. */
export type LockedPaymentRow = Omit<PaymentRow, "settlements"> & { event_sequence: number };

/**
 * The payments each of `ops` (the incoming operations of one page, to `account`) is eligible for
 * (rules 1–2): per operation, their ids in id order, and the rows. They are locked (`for update`)
 * in the caller's transaction, all in id order so that concurrent matchers cannot deadlock, until it
 * ends: instances applying operations to one payment serialize, and each row is returned as the
 * last transaction holding it left it. Eligibility depends only on columns settlement never
 * changes, so it holds for the whole page while the payments' states move on.
 */
export async function lockEligible(
  tx: Db,
  account: string,
  ops: IncomingOperation[],
): Promise<{ eligible: string[][]; rows: Map<string, LockedPaymentRow> }> {
  const eligible: string[][] = ops.map(() => []);
  const locked = new Map<string, LockedPaymentRow>();
  if (!ops.some((op) => op.muxedId !== null || op.memo)) return { eligible, rows: locked };
  // `offset 0` keeps the planner from flattening the lateral subquery into a join it may reorder:
  // with stale statistics (payments just created in bulk) it then filtered every payment of the
  // account against every operation. Each operation looks its payments up by index instead.
  const { rows } = await tx.query<LockedPaymentRow & { i: number }>(
    `select o.i, locked.* from ${OPS}
     cross join lateral (
       select p.id from payments p
       where ${NAMES}
         and p.merchant_id = (select merchant_id from merchant_accounts where account = $1)
         and p.created_at <= o.closed_at + $7 * interval '1 millisecond'
         and o.closed_at <= p.expires_at + p.monitor_for_s * interval '1 second'
       offset 0
     ) eligible
     join payments locked on locked.id = eligible.id
     order by locked.id, o.i
     for update of locked`,
    [account, ...opParams(ops), CLOCK_SLACK_MS],
  );
  for (const { i, ...row } of rows) {
    eligible[i]!.push(row.id);
    locked.set(row.id, row);
  }
  return { eligible, rows: locked };
}

/**
 * Whether matching `op` may pay no payment, and so look at `UnmatchedFacts`: none is eligible, or
 * one is in another asset. Eligibility and assets never change, so this holds for a whole page.
 */
export const mayBeUnmatched = (op: IncomingOperation, eligible: Array<Pick<Payment, "asset">>): boolean =>
  eligible.length === 0 || eligible.some((p) => !sameAsset(p.asset, op.asset));

/** What matching an operation that pays no payment looks at. */
export interface UnmatchedFacts {
  owner: Owner | undefined;
  /** Per operation with no eligible payment, what its memo or muxed id names (empty for the others). */
  named: NamedPayment[][];
}

/** Reads `UnmatchedFacts` for `ops`, whose eligible payments (ids) `lockEligible` found. */
export async function readUnmatchedFacts(tx: Db, account: string, ops: IncomingOperation[], eligible: string[][]): Promise<UnmatchedFacts> {
  const unnamed = ops.flatMap((_, i) => (eligible[i]!.length === 0 ? [i] : []));
  const { rows } = await tx.query<{ merchant_id: string; attached_at: Date; i: number | null; id: string | null; before: boolean | null }>(
    `with owner as (select merchant_id, date_trunc('second', created_at) as attached_at from merchant_accounts where account = $1)
     select owner.merchant_id, owner.attached_at, n.i, n.id, n.before from owner left join lateral (
       select o.i, p.id, p.before from ${OPS} cross join lateral (
         (select p.id, false as before from payments p where ${NAMES} and p.merchant_id = owner.merchant_id and p.created_at <= o.closed_at
          order by p.created_at desc limit 1)
         union all
         (select p.id, true from payments p where ${NAMES} and p.merchant_id = owner.merchant_id and p.created_at > o.closed_at
          order by p.created_at limit 1)
       ) p
     ) n on true`,
    [account, ...opParams(unnamed.map((i) => ops[i]!))],
  );
  const named: NamedPayment[][] = ops.map(() => []);
  for (const r of rows) if (r.i !== null) named[unnamed[r.i]!]!.push({ id: r.id!, before: r.before! });
  const owner = rows[0] && { merchantId: rows[0].merchant_id, attachedAt: rows[0].attached_at };
  return { owner, named };
}

/** Why no payment was eligible, and the payment the operation most likely meant (see `NamedPayment`). */
function whyUnmatched(op: IncomingOperation, named: NamedPayment[]): { reason: UnmatchedReason; paymentId: string | null } {
  if (op.muxedId === null && op.memo === null) return { reason: "no_memo", paymentId: null };
  if (op.muxedId === null && op.memo === undefined) return { reason: "unknown_memo", paymentId: null };
  const it = named.find((r) => !r.before) ?? named[0];
  if (!it) return { reason: "unknown_memo", paymentId: null };
  return { reason: it.before ? "before_payment" : "after_monitoring_window", paymentId: it.id };
}

/**
 * What `op` pays (pure): `eligible` are its eligible payments as they stand now, in id order —
 * after the operations before it in the same page. `owner` and `named` (`readUnmatchedFacts`) are
 * looked at only when `mayBeUnmatched(op, eligible)`.
 */
export function matchOperation(op: IncomingOperation, eligible: Payment[], owner: Owner | undefined, named: NamedPayment[]): Match {
  const best = [...eligible].sort((a, b) => compare(preference(a, op), preference(b, op)))[0];
  if (best && sameAsset(best.asset, op.asset)) return { kind: "payment", payment: best, timing: timing(best, op.closedAt) };
  // Before the merchant attached the account, what it received was none of the merchant's business.
  if (!owner || op.closedAt < owner.attachedAt) return { kind: "not_ours" };
  if (best) return { kind: "unmatched", merchantId: owner.merchantId, reason: "wrong_asset", paymentId: best.id };
  return { kind: "unmatched", merchantId: owner.merchantId, ...whyUnmatched(op, named) };
}
