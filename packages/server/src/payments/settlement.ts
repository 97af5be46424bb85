import { createHash } from "node:crypto";
import { recordEvent } from "../events/outbox.js";
import type { Db } from "../db/pool.js";
import type { EventType } from "../events/types.js";
import { newId } from "../ids.js";
import type { Metrics } from "../metrics/registry.js";
import { assetLabel } from "../stellar/assets.js";
import { incomingOperation, type HorizonPaymentRecord, type IncomingOperation } from "../stellar/incoming.js";
import { matchOperation, type Timing, type UnmatchedReason } from "./matching.js";
import { recordPaymentEvent, type PaymentLinks } from "./service.js";
import * as store from "./store.js";
import type { Payment, PaymentStatus } from "./store.js";
import { insertUnmatched } from "./unmatched-store.js";
import { unmatchedOut } from "./unmatched-routes.js";

export type SettlementOutcome =
  | { kind: "ignored"; reason: string }
  | { kind: "duplicate" }
  | { kind: "unmatched"; merchantId: string; reason: UnmatchedReason }
  | {
      kind: "applied";
      paymentId: string;
      merchantId: string;
      status: PaymentStatus;
      /** What the operation did to the payment: confirmed, partially_paid or late_payment_received. */
      eventType: EventType;
      /** `XLM` or `CODE:ISSUER`. */
      asset: string;
      late: boolean;
      /** Set when this operation confirmed the payment: seconds from its creation to now. */
      confirmationLatencySeconds?: number;
    };

export interface SettlementContext {
  now: Date;
  networkPassphrase: string;
  links: PaymentLinks;
  /** The merchant account whose records these are: operations paying out of it are not incoming. */
  account: string;
  /** Apply only to this payment (verification on a merchant's request must not touch anything else). */
  paymentId?: string;
}

/**
 * The id of the event an operation causes: derived from the network, the operation and the event
 * type, so re-ingesting the operation (replay, a second instance) can never create a second event.
 */
export function chainEventId(networkPassphrase: string, operationId: string, type: EventType): string {
  const digest = createHash("sha256").update(`${networkPassphrase}\n${operationId}\n${type}`).digest("hex");
  return `evt_${digest.slice(0, 22)}`;
}

/** A payment after an operation counted, with the events that tell it, in order. */
export interface Transition {
  status: PaymentStatus;
  amountReceivedStroops: bigint;
  confirmedAt: Date | null;
  expiredAt: Date | null;
  /** Each event with the status its object shows. */
  events: Array<{ type: EventType; status: PaymentStatus }>;
}

/**
 * What one matched operation does to a payment (pure, so the whole table is tested directly):
 *
 * - On time and the payment now holds its amount: `confirmed`, whatever the status was — an expired
 *   or canceled payment the customer paid in time is paid. `confirmed_at` is the operation's close time.
 * - On time but short: an open payment becomes `partially_paid`. A payment already expired or
 *   canceled stays so, with `payment.partially_paid` then its `payment.expired`/`payment.canceled`
 *   again, so the last event still shows the status.
 * - Late: recorded but not counted, with `payment.late_payment_received`. An open payment whose
 *   deadline the operation proves passed is expired first (`payment.expired`).
 */
export function transition(
  payment: Pick<Payment, "status" | "amountStroops" | "amountReceivedStroops" | "confirmedAt" | "expiredAt">,
  op: Pick<IncomingOperation, "amountStroops" | "closedAt">,
  timing: Timing,
  now: Date,
): Transition {
  const { status } = payment;
  const open = status === "pending" || status === "partially_paid";
  const unchanged = { amountReceivedStroops: payment.amountReceivedStroops, confirmedAt: payment.confirmedAt, expiredAt: payment.expiredAt };
  if (timing === "late") {
    if (!open) return { ...unchanged, status, events: [{ type: "payment.late_payment_received", status }] };
    return {
      ...unchanged,
      status: "expired",
      expiredAt: now,
      events: [
        { type: "payment.expired", status: "expired" },
        { type: "payment.late_payment_received", status: "expired" },
      ],
    };
  }
  const received = payment.amountReceivedStroops + op.amountStroops;
  if (received >= payment.amountStroops) {
    return { ...unchanged, amountReceivedStroops: received, status: "confirmed", confirmedAt: op.closedAt, events: [{ type: "payment.confirmed", status: "confirmed" }] };
  }
  if (open) return { ...unchanged, amountReceivedStroops: received, status: "partially_paid", events: [{ type: "payment.partially_paid", status: "partially_paid" }] };
  return {
    ...unchanged,
    amountReceivedStroops: received,
    status,
    events: [
      { type: "payment.partially_paid", status: "partially_paid" },
      { type: status === "canceled" ? "payment.canceled" : "payment.expired", status },
    ],
  };
}

/** Records `op` as unmatched with its `payment.unmatched_received` event. */
async function recordUnmatched(tx: Db, op: IncomingOperation, merchantId: string, reason: UnmatchedReason, paymentId: string | null, ctx: SettlementContext): Promise<SettlementOutcome> {
  const unmatched = await insertUnmatched(tx, { id: newId("unm"), merchantId, op, reason, paymentId, now: ctx.now });
  if (!unmatched) return { kind: "duplicate" };
  await recordEvent(tx, {
    merchantId,
    type: "payment.unmatched_received",
    object: unmatchedOut(unmatched),
    now: ctx.now,
    id: chainEventId(ctx.networkPassphrase, op.operationId, "payment.unmatched_received"),
  });
  return { kind: "unmatched", merchantId, reason };
}

/**
 * Applies one Horizon payment record inside the caller's transaction `tx`: finds what it pays
 * (matching.ts), records the settlement and moves the payment on with its events (`transition`), or
 * records it as unmatched. An operation already recorded is a `duplicate`. Call
 * `observeSettlement` once `tx` has committed.
 */
export async function applyPaymentRecord(tx: Db, record: HorizonPaymentRecord, ctx: SettlementContext): Promise<SettlementOutcome> {
  const op = incomingOperation(record, ctx.account);
  if ("ignored" in op) return { kind: "ignored", reason: op.ignored };
  const match = await matchOperation(tx, op);
  if (match.kind === "not_ours") return { kind: "ignored", reason: "not_ours" };
  if (match.kind === "unmatched") {
    if (ctx.paymentId !== undefined) return { kind: "ignored", reason: match.reason };
    // A merchant account's own funding is no customer's payment.
    if (op.createsAccount) return { kind: "ignored", reason: "account_creation" };
    return recordUnmatched(tx, op, match.merchantId, match.reason, match.paymentId, ctx);
  }
  const { payment, timing } = match;
  if (ctx.paymentId !== undefined && payment.id !== ctx.paymentId) return { kind: "ignored", reason: "other_payment" };
  const late = timing === "late";
  if (!(await store.insertSettlement(tx, payment.id, { ...op, late }, ctx.now))) return { kind: "duplicate" };

  const next = transition(payment, op, timing, ctx.now);
  const { payment: updated, eventSequence } = await store.setPaymentReceived(tx, payment.id, { ...next, events: next.events.length, now: ctx.now });
  const first = eventSequence - next.events.length + 1;
  for (const [i, event] of next.events.entries()) {
    const id = chainEventId(ctx.networkPassphrase, op.operationId, event.type);
    await recordPaymentEvent(tx, { ...updated, status: event.status }, event.type, ctx.now, ctx.links, id, first + i);
  }
  const confirmed = next.status === "confirmed" && payment.status !== "confirmed";
  return {
    kind: "applied",
    paymentId: payment.id,
    merchantId: payment.merchantId,
    status: next.status,
    eventType: late ? "payment.late_payment_received" : confirmed ? "payment.confirmed" : "payment.partially_paid",
    asset: assetLabel(payment.asset),
    late,
    ...(confirmed && { confirmationLatencySeconds: (ctx.now.getTime() - payment.createdAt.getTime()) / 1000 }),
  };
}

/** Counts a confirmation or an unmatched operation; call after the transaction that applied `outcome` committed. */
export function observeSettlement(metrics: Metrics, outcome: SettlementOutcome): void {
  if (outcome.kind === "unmatched") metrics.paymentsUnmatched.inc({ reason: outcome.reason });
  if (outcome.kind !== "applied" || outcome.eventType !== "payment.confirmed") return;
  metrics.paymentsConfirmed.inc({ asset: outcome.asset });
  if (outcome.confirmationLatencySeconds !== undefined) metrics.paymentConfirmationLatency.observe(outcome.confirmationLatencySeconds);
}
