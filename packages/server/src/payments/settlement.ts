import { createHash } from "node:crypto";
import type { Db } from "../db/pool.js";
import type { EventType } from "../events/types.js";
import type { Metrics } from "../metrics/registry.js";
import { STROOPS_PER_UNIT } from "../stellar/amount.js";
import { assetLabel, type Asset } from "../stellar/assets.js";
import { memoFromHorizon, type HorizonMemo } from "../stellar/memo.js";
import { recordPaymentEvent, type PaymentLinks } from "./service.js";
import * as store from "./store.js";
import type { PaymentStatus, Settlement } from "./store.js";

/** The joined transaction, as far as matching reads it. */
export interface HorizonTransaction extends HorizonMemo {
  hash: string;
  successful: boolean;
}

/**
 * A Horizon payment-stream record (JSON as Horizon returns it) with the transaction joined
 * (`join=transactions`). Raw JSON carries the transaction as `transaction`; the SDK's call builders
 * move it to `transaction_attr` and put a function in its place. Both shapes are accepted.
 */
export interface HorizonPaymentRecord {
  /** The operation id (a TOID: the ledger sequence is in its top 32 bits). */
  id: string;
  type: string;
  /** Close time of the operation's ledger. */
  created_at: string;
  transaction_hash: string;
  transaction_successful?: boolean;
  /** payment, path_payment_strict_receive, path_payment_strict_send. */
  from?: string;
  to?: string;
  to_muxed_id?: string;
  asset_type?: string;
  asset_code?: string;
  asset_issuer?: string;
  /** What the destination received (also for strict-send path payments). */
  amount?: string;
  /** create_account. */
  funder?: string;
  account?: string;
  starting_balance?: string;
  transaction?: HorizonTransaction | (() => unknown);
  transaction_attr?: HorizonTransaction;
}

export type SettlementOutcome =
  | { kind: "ignored"; reason: string }
  | { kind: "duplicate" }
  | {
      kind: "applied";
      paymentId: string;
      merchantId: string;
      status: PaymentStatus;
      eventType: EventType;
      /** `XLM` or `CODE:ISSUER`. */
      asset: string;
      late: boolean;
      /** Set when this operation confirmed the payment: seconds from its creation. */
      confirmationLatencySeconds?: number;
    };

export interface SettlementContext {
  now: Date;
  networkPassphrase: string;
  links: PaymentLinks;
  /** Apply only to this payment (verification on a merchant's request must not touch other payments). */
  paymentId?: string;
}

/** What an operation delivered, in the terms payments are matched on. */
interface Delivery {
  key: store.PaymentKey;
  assetType: string;
  asset: Asset;
  settlement: Omit<Settlement, "late">;
}

const ignored = (reason: string): SettlementOutcome => ({ kind: "ignored", reason });

/**
 * The id of the event an operation causes: derived from the network, the operation and the event
 * type, so re-ingesting the operation (replay, a second instance) can never create a second event.
 */
export function chainEventId(networkPassphrase: string, operationId: string, type: EventType): string {
  const digest = createHash("sha256").update(`${networkPassphrase}\n${operationId}\n${type}`).digest("hex");
  return `evt_${digest.slice(0, 22)}`;
}

/** Horizon's 7-decimal amount ("12.5000000") as stroops, without a float in between. */
function stroops(value: string): bigint {
  const match = /^(\d+)(?:\.(\d{1,7}))?$/.exec(value);
  if (!match) throw new TypeError(`not a Horizon amount: ${value}`);
  return BigInt(match[1]!) * STROOPS_PER_UNIT + BigInt((match[2] ?? "").padEnd(7, "0"));
}

function required(record: HorizonPaymentRecord, name: keyof HorizonPaymentRecord): string {
  const value = record[name];
  if (typeof value !== "string") throw new TypeError(`Horizon ${record.type} record ${record.id} lacks ${name}`);
  return value;
}

/** The asset type Stellar gives an asset: the code length decides between the two credit types. */
function assetType(asset: Asset): string {
  if (asset.issuer === null) return "native";
  return asset.code.length <= 4 ? "credit_alphanum4" : "credit_alphanum12";
}

function joinedTransaction(record: HorizonPaymentRecord): HorizonTransaction {
  const joined = record.transaction_attr ?? (typeof record.transaction === "object" ? record.transaction : undefined);
  if (!joined) throw new TypeError(`Horizon record ${record.id} has no joined transaction; request it with join=transactions`);
  return joined;
}

/** The destination side of an operation, or why it cannot pay a payment. */
function delivery(record: HorizonPaymentRecord, tx: HorizonTransaction): Delivery | string {
  let to: string, from: string, amount: string, muxedId: string | null, asset: Asset, type: string;
  switch (record.type) {
    case "payment":
    case "path_payment_strict_receive":
    case "path_payment_strict_send":
      to = required(record, "to");
      from = required(record, "from");
      amount = required(record, "amount");
      muxedId = record.to_muxed_id ?? null;
      type = required(record, "asset_type");
      asset = type === "native" ? { code: "XLM", issuer: null } : { code: required(record, "asset_code"), issuer: required(record, "asset_issuer") };
      break;
    case "create_account":
      to = required(record, "account");
      from = required(record, "funder");
      amount = required(record, "starting_balance");
      muxedId = null;
      type = "native";
      asset = { code: "XLM", issuer: null };
      break;
    default:
      return "unsupported_operation";
  }
  const memo = memoFromHorizon(tx) ?? null;
  if (memo === null && muxedId === null) return "no_memo_or_muxed_id";
  const amountStroops = stroops(amount);
  if (amountStroops <= 0n) return "zero_amount";
  return {
    key: { destination: to, muxedId, memo },
    assetType: type,
    asset,
    settlement: {
      operationId: record.id,
      transactionHash: record.transaction_hash,
      ledger: Number(BigInt(record.id) >> 32n),
      closedAt: new Date(record.created_at),
      amountStroops,
      from,
    },
  };
}

/**
 * Applies one Horizon payment record inside the caller's transaction `tx`: finds the payment it
 * pays (destination plus memo or muxed id, exact asset), locks it, records the settlement and moves
 * the payment on with its event. Exact or more → confirmed; less → partially_paid, accumulating;
 * a payment no longer open (expired, canceled, confirmed) is not reopened: the operation is recorded
 * as late with `payment.late_payment_received`. An operation already recorded is a `duplicate`.
 * Call `observeSettlement` once `tx` has committed.
 */
export async function applyPaymentRecord(tx: Db, record: HorizonPaymentRecord, ctx: SettlementContext): Promise<SettlementOutcome> {
  const transaction = joinedTransaction(record);
  if (record.transaction_successful === false || !transaction.successful) return ignored("transaction_failed");
  const d = delivery(record, transaction);
  if (typeof d === "string") return ignored(d);

  const payment = await store.lockPaymentByKey(tx, d.key);
  if (!payment) return ignored("no_matching_payment");
  if (ctx.paymentId !== undefined && payment.id !== ctx.paymentId) return ignored("other_payment");
  // A "USDC" from another issuer is not USDC.
  if (d.assetType !== assetType(payment.asset) || d.asset.code !== payment.asset.code || d.asset.issuer !== payment.asset.issuer) {
    return ignored("asset_mismatch");
  }
  const late = payment.status !== "pending" && payment.status !== "partially_paid";
  if (!(await store.insertSettlement(tx, payment.id, { ...d.settlement, late }, ctx.now))) return { kind: "duplicate" };

  const received = late ? payment.amountReceivedStroops : payment.amountReceivedStroops + d.settlement.amountStroops;
  const status: PaymentStatus = late ? payment.status : received >= payment.amountStroops ? "confirmed" : "partially_paid";
  const confirmed = !late && status === "confirmed";
  const { payment: updated, eventSequence } = await store.setPaymentReceived(tx, payment.id, {
    status,
    amountReceivedStroops: received,
    confirmedAt: confirmed ? ctx.now : null,
    now: ctx.now,
  });
  const eventType: EventType = late ? "payment.late_payment_received" : confirmed ? "payment.confirmed" : "payment.partially_paid";
  const eventId = chainEventId(ctx.networkPassphrase, record.id, eventType);
  await recordPaymentEvent(tx, updated, eventType, ctx.now, ctx.links, eventId, eventSequence);
  return {
    kind: "applied",
    paymentId: payment.id,
    merchantId: payment.merchantId,
    status,
    eventType,
    asset: assetLabel(payment.asset),
    late,
    ...(confirmed && { confirmationLatencySeconds: (ctx.now.getTime() - payment.createdAt.getTime()) / 1000 }),
  };
}

/** Counts a confirmation; call after the transaction that applied `outcome` committed. */
export function observeSettlement(metrics: Metrics, outcome: SettlementOutcome): void {
  if (outcome.kind !== "applied" || outcome.eventType !== "payment.confirmed") return;
  metrics.paymentsConfirmed.inc({ asset: outcome.asset });
  if (outcome.confirmationLatencySeconds !== undefined) metrics.paymentConfirmationLatency.observe(outcome.confirmationLatencySeconds);
}
