import { Account, MuxedAccount } from "@stellar/stellar-sdk";
import { envelopeOf, recordEvent } from "../events/outbox.js";
import type { EventType } from "../events/types.js";
import { Batcher } from "../db/batcher.js";
import type { Db, Pool } from "../db/pool.js";
import { badRequest, HttpError, notFound } from "../http/errors.js";
import type { IdempotencyScope } from "../http/idempotency.js";
import { newId, randomUint64 } from "../ids.js";
import type { Merchant } from "../merchants/store.js";
import { formatAmount, parseAmount } from "../stellar/amount.js";
import { assetLabel, assetOut, parseAsset, sameAsset, type AssetIn, type AssetOut } from "../stellar/assets.js";
import { parseMemo, randomIdMemo, type Memo, type MemoType } from "../stellar/memo.js";
import { sep7PayUri } from "../stellar/sep7.js";
import * as store from "./store.js";
import type { Payment, PaymentStatus, Settlement } from "./store.js";

export const DEFAULT_EXPIRES_IN_S = 3600;
export const MIN_EXPIRES_IN_S = 60;
export const MAX_EXPIRES_IN_S = 7 * 24 * 3600;

/** A payment request as the API accepts it; sizes and shapes are already checked by the route schema. */
export interface PaymentIn {
  amount: string;
  asset: AssetIn;
  destination?: string;
  memo_type?: MemoType;
  memo?: string;
  /** Pay an M address with a generated id instead of using a memo. */
  muxed?: boolean;
  description?: string;
  metadata?: Record<string, string>;
  expires_in?: number;
  /** Seconds after expiry during which operations are still recorded against it, as late. */
  monitor_for?: number;
  /** Where the checkout's "Continue" link leads once the payment is paid. */
  success_url?: string;
}

/** What a payment takes from the configuration when the request leaves it out. */
export interface PaymentDefaults {
  monitoringWindowS: number;
  /** Accept `http://localhost` and `http://127.0.0.1` success URLs, for development; never in production. Absent: https only. */
  allowLocalHttpSuccessUrl?: boolean;
}

export interface SettlementOut {
  transaction_hash: string;
  operation_id: string;
  ledger: number;
  closed_at: string;
  amount: string;
  asset: AssetOut;
  from: string;
  late: boolean;
}

export interface PaymentOut {
  id: string;
  object: "payment";
  status: PaymentStatus;
  amount: string;
  asset: AssetOut;
  /** What the customer pays: the M address of a muxed payment, else the G account. */
  destination: string;
  destination_account: string;
  muxed_id: string | null;
  memo_type: MemoType | null;
  memo: string | null;
  amount_received: string;
  overpaid: boolean;
  settlements: SettlementOut[];
  description: string | null;
  metadata: Record<string, string>;
  success_url: string | null;
  payment_url: string;
  sep7_uri: string;
  expires_at: string;
  monitor_for: number;
  created_at: string;
  updated_at: string;
  canceled_at: string | null;
  confirmed_at: string | null;
  expired_at: string | null;
}

/** What `paymentOut` needs from the configuration to build links. */
export interface PaymentLinks {
  publicBaseUrl: string;
  networkPassphrase: string;
}

/** The M address that pays G account `account` with muxed id `id`. */
export const muxedAddress = (account: string, id: string) => new MuxedAccount(new Account(account, "0"), id).accountId();

/** Never 0: Horizon leaves a zero `to_muxed_id` out of its records. */
function randomMuxedId(): string {
  const id = randomUint64();
  return id === 0n ? randomMuxedId() : id.toString();
}

const settlementOut = (s: Settlement, p: Payment): SettlementOut => ({
  transaction_hash: s.transactionHash,
  operation_id: s.operationId,
  ledger: s.ledger,
  closed_at: s.closedAt.toISOString(),
  amount: formatAmount(s.amountStroops),
  // Only an exact asset match settles a payment.
  asset: assetOut(p.asset),
  from: s.from,
  late: s.late,
});

export function paymentOut(p: Payment, links: PaymentLinks): PaymentOut {
  const amount = formatAmount(p.amountStroops);
  const destination = p.muxedId === null ? p.destination : muxedAddress(p.destination, p.muxedId);
  return {
    id: p.id,
    object: "payment",
    status: p.status,
    amount,
    asset: assetOut(p.asset),
    destination,
    destination_account: p.destination,
    muxed_id: p.muxedId,
    memo_type: p.memo?.type ?? null,
    memo: p.memo?.value ?? null,
    amount_received: formatAmount(p.amountReceivedStroops),
    overpaid: p.amountReceivedStroops > p.amountStroops,
    settlements: p.settlements.map((s) => settlementOut(s, p)),
    description: p.description,
    metadata: p.metadata,
    success_url: p.successUrl,
    payment_url: `${links.publicBaseUrl}/pay/${p.id}`,
    sep7_uri: sep7PayUri({
      destination,
      amount,
      asset: p.asset,
      memo: p.memo,
      msg: p.description,
      networkPassphrase: links.networkPassphrase,
    }),
    expires_at: p.expiresAt.toISOString(),
    monitor_for: p.monitorForS,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
    canceled_at: p.canceledAt?.toISOString() ?? null,
    confirmed_at: p.confirmedAt?.toISOString() ?? null,
    expired_at: p.expiredAt?.toISOString() ?? null,
  };
}

function rejectNul(value: string, param: string): void {
  // PostgreSQL text and jsonb cannot store U+0000; refuse it here rather than fail with a 500.
  if (value.includes("\u0000")) throw badRequest("invalid_request", "Text must not contain NUL characters.", param);
}

export const SUCCESS_URL_MAX_LENGTH = 2048;
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1"]);

/**
 * The URL as stored and shown (canonical, so what the customer is sent to is what was checked): https,
 * or http to this machine in development; never credentials, which would be shown to every customer.
 */
function parseSuccessUrl(value: string, allowLocalHttp: boolean): string {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  const schemeAllowed = url?.protocol === "https:" || (url?.protocol === "http:" && allowLocalHttp && LOCAL_HOSTS.has(url.hostname));
  if (!url || !schemeAllowed || url.username !== "" || url.password !== "" || url.href.length > SUCCESS_URL_MAX_LENGTH) {
    const http = allowLocalHttp ? " (or http to localhost or 127.0.0.1)" : "";
    throw badRequest(
      "invalid_success_url",
      `success_url must be an https URL${http} without credentials, at most ${SUCCESS_URL_MAX_LENGTH} characters.`,
      "success_url",
    );
  }
  return url.href;
}

/** A validated request; `memo` is undefined when one (or a muxed id) is to be generated. */
type PaymentFields = Omit<store.NewPayment, "id" | "memo" | "muxedId"> & { memo: Memo | undefined; muxed: boolean };

/** Checks what the schema cannot (amount, asset, destination, memo) against the merchant's settings. */
function validatePayment(merchant: Merchant, input: PaymentIn, now: Date, defaults: PaymentDefaults): PaymentFields {
  const amountStroops = parseAmount(input.amount, "amount");
  const asset = parseAsset(input.asset, "asset");
  if (!merchant.acceptedAssets.some((a) => sameAsset(a, asset))) {
    throw badRequest("asset_not_accepted", `${assetLabel(asset)} is not among your accepted_assets.`, "asset");
  }
  const destination = input.destination ?? merchant.accounts[0];
  if (destination === undefined) {
    throw new HttpError(409, "no_account", "You have no Stellar account to be paid on; attach one first.", "destination");
  }
  if (!merchant.accounts.includes(destination)) {
    throw badRequest("invalid_destination", "destination must be one of your merchant accounts.", "destination");
  }
  if ((input.memo_type === undefined) !== (input.memo === undefined)) {
    throw badRequest("invalid_memo", "Give memo_type and memo together, or neither.", input.memo === undefined ? "memo" : "memo_type");
  }
  const memo = input.memo_type !== undefined && input.memo !== undefined ? parseMemo(input.memo_type, input.memo, "memo") : undefined;
  if (input.muxed && memo) throw badRequest("invalid_memo", "A muxed payment is identified by its M address; give no memo.", "memo");
  if (input.description !== undefined) rejectNul(input.description, "description");
  for (const [key, value] of Object.entries(input.metadata ?? {})) {
    rejectNul(key, "metadata");
    rejectNul(value, `metadata.${key}`);
  }
  return {
    merchantId: merchant.id,
    amountStroops,
    asset,
    destination,
    memo,
    muxed: input.muxed ?? false,
    description: input.description ?? null,
    metadata: input.metadata ?? {},
    successUrl: input.success_url === undefined ? null : parseSuccessUrl(input.success_url, defaults.allowLocalHttpSuccessUrl ?? false),
    expiresAt: new Date(now.getTime() + (input.expires_in ?? DEFAULT_EXPIRES_IN_S) * 1000),
    monitorForS: input.monitor_for ?? defaults.monitoringWindowS,
    createdAt: now,
  };
}

const GENERATED_MEMO_ATTEMPTS = 5;

/**
 * Where `createPayment` writes: a batch (`createPaymentBatch`), perhaps with the request's
 * Idempotency-Key (`withIdempotencyKey`), or the caller's transaction (`inTransaction`).
 */
export interface PaymentWriter {
  submit(insert: store.PaymentInsert): Promise<store.PaymentWritten>;
}

/** Concurrent creations written together, outside any transaction: see db/batcher.ts. */
export type PaymentBatch = Batcher<store.PaymentInsert, store.PaymentWritten>;

/**
 * Each payment by one statement in `tx`, the caller's transaction (the dashboard's, with its form's
 * record); named when `prepared`, as the batch's is: planning it was most of PostgreSQL's work per
 * creation.
 */
export const inTransaction = (tx: Db, prepared: boolean): PaymentWriter => ({
  submit: async (insert) => (await store.insertPaymentsWithEvents(tx, [insert], prepared))[0]!,
});

/** Through `writer`, recording the request's Idempotency-Key with the payment, answered with `record.status` (http/idempotency.ts). */
export const withIdempotencyKey = (writer: PaymentWriter, record: IdempotencyScope & { status: number }): PaymentWriter => ({
  submit: (insert) => writer.submit({ ...insert, idempotency: record }),
});

/**
 * The batch the API's creations go through, with an Idempotency-Key or not. One statement at a time:
 * fewer, larger batches cost PostgreSQL less (on a 2-core machine, with the statement prepared, one
 * gave 8 % more payments/s than two, and three 8 % fewer; bench/api). A second starts beside one that
 * has run for 20 ms, several times its usual time, so a slow statement (a lock wait on a memo another
 * transaction is writing) does not hold up every creation of the process. `prepared`: its statement is
 * named (not through a transaction pooler; db/pool.ts `statement`).
 */
export function createPaymentBatch(pool: Pool, prepared: boolean, onBatch?: (size: number) => void): PaymentBatch {
  return new Batcher((inserts) => store.insertPaymentsWithEvents(pool, inserts, prepared), {
    maxInFlight: 2,
    overlapAfterMs: 20,
    maxBatch: 100,
    onBatch,
  });
}

/**
 * Creates a pending payment and its `payment.created` event (the outbox) in one statement through
 * `writer`: the caller's transaction when it writes other rows atomically with it (the dashboard's
 * form record), or a batch (one statement with other requests' payments, in an implicit
 * transaction). A generated id memo or muxed id is retried on the rare collision, which wrote nothing; a
 * memo the merchant chose that is already open is a 409. `queued`: the event was queued for delivery,
 * so wake the workers once the payment has committed; `out`: the payment's public shape, as its event
 * carries it.
 */
export async function createPayment(
  writer: PaymentWriter,
  merchant: Merchant,
  input: PaymentIn,
  now: Date,
  links: PaymentLinks,
  defaults: PaymentDefaults,
): Promise<{ payment: Payment; out: PaymentOut; queued: boolean }> {
  const { muxed, ...fields } = validatePayment(merchant, input, now, defaults);
  for (let attempt = 0; attempt < GENERATED_MEMO_ATTEMPTS; attempt++) {
    const identity = muxed ? { muxedId: randomMuxedId(), memo: null } : { muxedId: null, memo: fields.memo ?? randomIdMemo() };
    // A new payment is known whole before it is written: its event is written by the same statement.
    const payment: Payment = {
      ...fields,
      ...identity,
      id: newId("pay"),
      status: "pending",
      amountReceivedStroops: 0n,
      canceledAt: null,
      confirmedAt: null,
      expiredAt: null,
      updatedAt: fields.createdAt,
      settlements: [],
    };
    const out = paymentOut(payment, links);
    const event = envelopeOf({ merchantId: merchant.id, type: "payment.created", object: out, now, payment: { id: payment.id, sequence: 1 } });
    const written = await writer.submit({ payment, event });
    if (written.created) return { payment, out, queued: written.queued };
    if (fields.memo) {
      throw new HttpError(409, "memo_in_use", "Another open payment to this destination already uses this memo.", "memo");
    }
  }
  throw new Error(`no free id memo or muxed id after ${GENERATED_MEMO_ATTEMPTS} attempts for ${fields.destination}`);
}

/** Cancels a pending payment inside the caller's transaction `tx` (see `createPayment`, also for `queued`). */
export async function cancelPayment(tx: Db, merchantId: string, id: string, now: Date, links: PaymentLinks): Promise<{ payment: Payment; queued: boolean }> {
  const payment = await store.getPayment(tx, merchantId, id, { forUpdate: true });
  if (!payment) throw notFound("payment");
  if (payment.status !== "pending") {
    throw new HttpError(409, "payment_not_cancelable", `Only pending payments can be canceled; this one is ${payment.status}.`);
  }
  const canceled = await store.setPaymentCanceled(tx, id, now);
  const { queued } = await recordPaymentEvent(tx, canceled, "payment.canceled", now, links);
  return { payment: canceled, queued };
}

/**
 * Writes a payment's event in `tx` (the outbox), bumping the payment's sequence so receivers can
 * drop stale updates; wake the workers after the commit when it returns `queued`. (Ingestion
 * writes its events a page at a time: payments/settlement.ts.)
 */
export async function recordPaymentEvent(tx: Db, payment: Payment, type: EventType, now: Date, links: PaymentLinks) {
  const { rows } = await tx.query<{ event_sequence: number }>(
    "update payments set event_sequence = event_sequence + 1 where id = $1 returning event_sequence",
    [payment.id],
  );
  return recordEvent(tx, {
    merchantId: payment.merchantId,
    type,
    object: paymentOut(payment, links),
    now,
    payment: { id: payment.id, sequence: rows[0]!.event_sequence },
  });
}

export async function getPayment(db: Db, merchantId: string, id: string): Promise<Payment> {
  const payment = await store.getPayment(db, merchantId, id);
  if (!payment) throw notFound("payment");
  return payment;
}
