import type { Db } from "../db/pool.js";
import { sameAsset } from "../stellar/assets.js";
import type { IncomingOperation } from "../stellar/incoming.js";
import { COLUMNS, toPayment, type Payment, type PaymentRow } from "./store.js";

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

/** The eligible payments (rules 1–2), locked in id order so that concurrent matchers cannot deadlock. */
async function lockEligible(db: Db, op: IncomingOperation): Promise<Payment[]> {
  if (op.muxedId === null && !op.memo) return [];
  const { rows } = await db.query<PaymentRow>(
    `select ${COLUMNS} from payments
     where destination = $1 and (muxed_id = $2 or (memo_type = $3 and memo = $4))
       and merchant_id = (select merchant_id from merchant_accounts where account = $1)
       and created_at <= $5::timestamptz + $6 * interval '1 millisecond'
       and $5::timestamptz <= expires_at + monitor_for_s * interval '1 second'
     order by id
     for update`,
    [op.to, op.muxedId, op.memo?.type ?? null, op.memo?.value ?? null, op.closedAt, CLOCK_SLACK_MS],
  );
  return rows.map(toPayment);
}

/**
 * Why no payment was eligible, and the payment the operation most likely meant: the newest one
 * created before it closed (whose monitoring had ended), else the oldest created after it.
 */
async function whyUnmatched(db: Db, op: IncomingOperation, merchantId: string): Promise<{ reason: UnmatchedReason; paymentId: string | null }> {
  if (op.muxedId === null && op.memo === null) return { reason: "no_memo", paymentId: null };
  if (op.muxedId === null && op.memo === undefined) return { reason: "unknown_memo", paymentId: null };
  const { rows } = await db.query<{ id: string; before: boolean }>(
    `(select id, false as before from payments
      where destination = $1 and (muxed_id = $2 or (memo_type = $3 and memo = $4)) and merchant_id = $6 and created_at <= $5
      order by created_at desc limit 1)
     union all
     (select id, true from payments
      where destination = $1 and (muxed_id = $2 or (memo_type = $3 and memo = $4)) and merchant_id = $6 and created_at > $5
      order by created_at limit 1)`,
    [op.to, op.muxedId, op.memo?.type ?? null, op.memo?.value ?? null, op.closedAt, merchantId],
  );
  const named = rows.find((r) => !r.before) ?? rows[0];
  if (!named) return { reason: "unknown_memo", paymentId: null };
  return { reason: named.before ? "before_payment" : "after_monitoring_window", paymentId: named.id };
}

/**
 * Finds what `op` pays, in the caller's transaction `tx`. A matched payment comes back locked
 * (`for update`), so that instances applying operations to one payment serialize.
 */
export async function matchOperation(tx: Db, op: IncomingOperation): Promise<Match> {
  const eligible = await lockEligible(tx, op);
  const best = eligible.sort((a, b) => compare(preference(a, op), preference(b, op)))[0];
  if (best && sameAsset(best.asset, op.asset)) return { kind: "payment", payment: best, timing: timing(best, op.closedAt) };

  const { rows } = await tx.query<{ merchant_id: string; attached_at: Date }>(
    // Close times have whole seconds: an operation in the second of the attachment may be after it.
    "select merchant_id, date_trunc('second', created_at) as attached_at from merchant_accounts where account = $1",
    [op.to],
  );
  const owner = rows[0];
  // Before the merchant attached the account, what it received was none of the merchant's business.
  if (!owner || op.closedAt < owner.attached_at) return { kind: "not_ours" };
  if (best) return { kind: "unmatched", merchantId: owner.merchant_id, reason: "wrong_asset", paymentId: best.id };
  return { kind: "unmatched", merchantId: owner.merchant_id, ...(await whyUnmatched(tx, op, owner.merchant_id)) };
}
