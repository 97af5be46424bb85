import { createHash } from "node:crypto";
import type { NewEvent } from "../events/outbox.js";
import type { Db } from "../db/pool.js";
import type { EventType } from "../events/types.js";
import type { Metrics } from "../metrics/registry.js";
import { assetLabel } from "../stellar/assets.js";
import { incomingOperation, type HorizonPaymentRecord, type IncomingOperation } from "../stellar/incoming.js";
import { lockEligible, matchOperation, mayBeUnmatched, readUnmatchedFacts, type Match, type Timing, type UnmatchedReason } from "./matching.js";
import { paymentOut, type PaymentLinks } from "./service.js";
import { readSettlements, writeSettlements, type PaymentState } from "./settlement-store.js";
import type { Payment, PaymentStatus, Settlement } from "./store.js";
import { insertUnmatchedPayments, type NewUnmatched } from "./unmatched-store.js";
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

/** The id an unmatched operation is listed under: derived like `chainEventId`, so every source and replay names it alike. */
export function chainUnmatchedId(networkPassphrase: string, operationId: string): string {
  return `unm_${createHash("sha256").update(`${networkPassphrase}\n${operationId}\nunmatched`).digest("hex").slice(0, 22)}`;
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

/** A payment after `next`, as the database holds it once the page is written. */
function afterTransition(state: PaymentState, next: Transition, settlement: Settlement, now: Date): PaymentState {
  const settlements = [...state.payment.settlements, settlement].sort((a, b) => (BigInt(a.operationId) < BigInt(b.operationId) ? -1 : 1));
  const { status, amountReceivedStroops, confirmedAt, expiredAt } = next;
  return {
    payment: { ...state.payment, status, amountReceivedStroops, confirmedAt, expiredAt, updatedAt: now, settlements },
    eventSequence: state.eventSequence + next.events.length,
  };
}

/** The page's writes, gathered while its records are applied in order and written at the end. */
interface PageWrites {
  settlements: Array<Settlement & { paymentId: string }>;
  events: NewEvent[];
  unmatched: Array<NewUnmatched & { index: number }>;
}

/**
 * Applies one matched operation to the payment as it stands after the page's earlier records;
 * `settled` holds the operations recorded already, this one included once it counts.
 */
function applyMatch(
  op: IncomingOperation,
  match: Extract<Match, { kind: "payment" }>,
  states: Map<string, PaymentState>,
  settled: Set<string>,
  writes: PageWrites,
  ctx: SettlementContext,
): SettlementOutcome {
  const { payment, timing } = match;
  if (ctx.paymentId !== undefined && payment.id !== ctx.paymentId) return { kind: "ignored", reason: "other_payment" };
  if (settled.has(op.operationId)) return { kind: "duplicate" };
  settled.add(op.operationId);
  const late = timing === "late";
  const { operationId, transactionHash, ledger, closedAt, amountStroops, from } = op;
  const settlement = { operationId, transactionHash, ledger, closedAt, amountStroops, from, late };
  writes.settlements.push({ ...settlement, paymentId: payment.id });

  const next = transition(payment, op, timing, ctx.now);
  const state = afterTransition(states.get(payment.id)!, next, settlement, ctx.now);
  states.set(payment.id, state);
  const first = state.eventSequence - next.events.length + 1;
  for (const [i, event] of next.events.entries()) {
    writes.events.push({
      merchantId: payment.merchantId,
      type: event.type,
      object: paymentOut({ ...state.payment, status: event.status }, ctx.links),
      now: ctx.now,
      payment: { id: payment.id, sequence: first + i },
      id: chainEventId(ctx.networkPassphrase, op.operationId, event.type),
    });
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

/**
 * Applies a page of Horizon payment records to `ctx.account`, in their order, inside the caller's
 * transaction `tx`: finds what each pays (matching.ts), records the settlement and moves the payment
 * on with its events (`transition`), or records it as unmatched. Each record sees what the earlier
 * ones did (a second partial payment adds to the first; an operation after the one that confirmed a
 * payment is late for it). An operation already recorded is a `duplicate`, so a page applies again
 * as nothing. The facts are read, and the writes made, a few statements per page rather than per
 * record. Call `observeSettlement` with each outcome once `tx` has committed.
 */
export async function applyPaymentPage(tx: Db, records: HorizonPaymentRecord[], ctx: SettlementContext): Promise<SettlementOutcome[]> {
  return applyIncoming(tx, records.map((record) => incomingOperation(record, ctx.account)), ctx);
}

/**
 * `applyPaymentPage` for operations already read from their source (Horizon records or RPC events),
 * in ledger order, each an operation into `ctx.account` or the reason it is none.
 */
export async function applyIncoming(tx: Db, parsed: Array<IncomingOperation | { ignored: string }>, ctx: SettlementContext): Promise<SettlementOutcome[]> {
  const ops = parsed.filter((op): op is IncomingOperation => !("ignored" in op));
  const { eligible: eligibleIds, rows } = await lockEligible(tx, ctx.account, ops);
  const { states, settled } = await readSettlements(tx, rows, ops.map((op) => op.operationId));
  // What the eligible payments are (not how they stand) says whether an operation may pay none.
  const eligibleOf = (i: number) => eligibleIds[i]!.map((id) => states.get(id)!.payment);
  const unmatchedFacts = ops.some((op, i) => mayBeUnmatched(op, eligibleOf(i))) ? await readUnmatchedFacts(tx, ctx.account, ops, eligibleIds) : undefined;

  const writes: PageWrites = { settlements: [], events: [], unmatched: [] };
  const outcomes: SettlementOutcome[] = [];
  let i = 0;
  for (const op of parsed) {
    if ("ignored" in op) {
      outcomes.push({ kind: "ignored", reason: op.ignored });
      continue;
    }
    const match = matchOperation(op, eligibleOf(i), unmatchedFacts?.owner, unmatchedFacts?.named[i] ?? []);
    i++;
    if (match.kind === "payment") outcomes.push(applyMatch(op, match, states, settled, writes, ctx));
    else if (match.kind === "not_ours") outcomes.push({ kind: "ignored", reason: "not_ours" });
    else if (ctx.paymentId !== undefined) outcomes.push({ kind: "ignored", reason: match.reason });
    // A merchant account's own funding is no customer's payment.
    else if (op.createsAccount) outcomes.push({ kind: "ignored", reason: "account_creation" });
    else {
      const { merchantId, reason, paymentId } = match;
      writes.unmatched.push({ id: chainUnmatchedId(ctx.networkPassphrase, op.operationId), merchantId, op, reason, paymentId, now: ctx.now, index: outcomes.length });
      // Until the insert says otherwise: an operation recorded as unmatched before is a duplicate.
      outcomes.push({ kind: "duplicate" });
    }
  }

  const unmatchedByOperation = new Map(writes.unmatched.map((u) => [u.op.operationId, u]));
  for (const unmatched of await insertUnmatchedPayments(tx, writes.unmatched)) {
    const { op, merchantId, reason, index } = unmatchedByOperation.get(unmatched.operationId)!;
    outcomes[index] = { kind: "unmatched", merchantId, reason };
    writes.events.push({
      merchantId,
      type: "payment.unmatched_received",
      object: unmatchedOut(unmatched),
      now: ctx.now,
      id: chainEventId(ctx.networkPassphrase, op.operationId, "payment.unmatched_received"),
    });
  }
  const moved = [...new Set(writes.settlements.map((s) => s.paymentId))].map((id) => states.get(id)!);
  await writeSettlements(tx, { settlements: writes.settlements, payments: moved, events: writes.events, now: ctx.now });
  return outcomes;
}

/** Applies one Horizon payment record inside the caller's transaction `tx`, as `applyPaymentPage` applies a page. */
async function applyOne(tx: Db, record: HorizonPaymentRecord, ctx: SettlementContext): Promise<SettlementOutcome> {
  return (await applyPaymentPage(tx, [record], ctx))[0]!;
}

/**
 * Applies one record (`applyPaymentPage`); ingestion applies whole pages through `page`, in the
 * transaction that advances its cursor.
 */
export const applyPaymentRecord = Object.assign(applyOne, { page: applyPaymentPage });

/** Whether applying the operation wrote events (which may have queued webhook deliveries): wake the workers once it committed. */
export const wroteEvents = (outcome: SettlementOutcome): boolean => outcome.kind === "applied" || outcome.kind === "unmatched";

/** Counts a confirmation or an unmatched operation; call after the transaction that applied `outcome` committed. */
export function observeSettlement(metrics: Metrics, outcome: SettlementOutcome): void {
  if (outcome.kind === "unmatched") metrics.paymentsUnmatched.inc({ reason: outcome.reason });
  if (outcome.kind !== "applied" || outcome.eventType !== "payment.confirmed") return;
  metrics.paymentsConfirmed.inc({ asset: outcome.asset });
  if (outcome.confirmationLatencySeconds !== undefined) metrics.paymentConfirmationLatency.observe(outcome.confirmationLatencySeconds);
}
