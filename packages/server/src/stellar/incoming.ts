import { STROOPS_PER_UNIT } from "./amount.js";
import type { Asset } from "./assets.js";
import { memoFromHorizon, memoShown, type HorizonMemo, type Memo, type ShownMemo } from "./memo.js";

/** The joined transaction, as far as Lumenpay reads it. */
export interface HorizonTransaction extends HorizonMemo {
  hash: string;
  successful: boolean;
}

/**
 * A record of Horizon's payments or operations lists with `join=transactions`, as JSON: the one
 * type ingestion and verification read. Raw JSON carries the transaction as `transaction`; the SDK's
 * call builders move it to `transaction_attr` and put a function in its place. Both are accepted.
 */
export interface HorizonPaymentRecord {
  /** The operation id (a TOID: the ledger sequence is in its top 32 bits). */
  id: string;
  paging_token: string;
  type: string;
  /** Close time of the operation's ledger. */
  created_at: string;
  transaction_hash: string;
  transaction_successful?: boolean;
  /** payment, path_payment_strict_receive, path_payment_strict_send. */
  from?: string;
  to?: string;
  to_muxed?: string;
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

/**
 * The records of an SDK call-builder page (or stream message) as `HorizonPaymentRecord`s: the SDK
 * types each operation kind separately, Lumenpay reads them all through one shape. The fields every
 * record must have are checked here, so a malformed record fails loudly instead of matching wrongly.
 */
export function asPaymentRecords(records: readonly object[]): HorizonPaymentRecord[] {
  for (const r of records as Partial<HorizonPaymentRecord>[]) {
    for (const field of ["id", "paging_token", "type", "created_at", "transaction_hash"] as const) {
      if (typeof r[field] !== "string") throw new TypeError(`Horizon record ${String(r.id)} lacks ${field}`);
    }
  }
  return records as HorizonPaymentRecord[];
}

/** An operation that moved money into one of our accounts, in the terms payments are matched on. */
export interface IncomingOperation {
  operationId: string;
  transactionHash: string;
  ledger: number;
  /** Close time of its ledger: the time that decides whether it was on time. */
  closedAt: Date;
  /** The G account credited. */
  to: string;
  /** Set when it was paid to an M address. */
  muxedId: string | null;
  /** The transaction's memo in canonical form; `undefined` when no payment can carry it (invalid bytes). */
  memo: Memo | null | undefined;
  /** The memo as shown to the merchant, whatever it holds. */
  shownMemo: ShownMemo;
  asset: Asset;
  /** What the destination received. */
  amountStroops: bigint;
  from: string;
  /** A create_account: the account's own funding, unless it pays a payment. */
  createsAccount: boolean;
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

function joinedTransaction(record: HorizonPaymentRecord): HorizonTransaction {
  const joined = record.transaction_attr ?? (typeof record.transaction === "object" ? record.transaction : undefined);
  if (!joined) throw new TypeError(`Horizon record ${record.id} has no joined transaction; request it with join=transactions`);
  return joined;
}

/** The asset a payment record moved (the network ties a credit asset's type to its code's length). */
function recordAsset(record: HorizonPaymentRecord): Asset {
  if (required(record, "asset_type") === "native") return { code: "XLM", issuer: null };
  return { code: required(record, "asset_code"), issuer: required(record, "asset_issuer") };
}

/**
 * What `record` brought into `account`, or why it brought nothing: a failed transaction, an
 * operation that pays out of the account rather than into it, or one that moves no money.
 */
export function incomingOperation(record: HorizonPaymentRecord, account: string): IncomingOperation | { ignored: string } {
  const tx = joinedTransaction(record);
  if (record.transaction_successful === false || !tx.successful) return { ignored: "transaction_failed" };
  let to: string, from: string, amount: string, muxedId: string | null, asset: Asset;
  switch (record.type) {
    case "payment":
    case "path_payment_strict_receive":
    case "path_payment_strict_send":
      to = required(record, "to");
      from = required(record, "from");
      amount = required(record, "amount");
      muxedId = record.to_muxed_id ?? null;
      asset = recordAsset(record);
      break;
    case "create_account":
      to = required(record, "account");
      from = required(record, "funder");
      amount = required(record, "starting_balance");
      muxedId = null;
      asset = { code: "XLM", issuer: null };
      break;
    default:
      return { ignored: "unsupported_operation" };
  }
  if (to !== account) return { ignored: "not_incoming" };
  const amountStroops = stroops(amount);
  if (amountStroops <= 0n) return { ignored: "zero_amount" };
  return {
    operationId: record.id,
    transactionHash: record.transaction_hash,
    ledger: Number(BigInt(record.id) >> 32n),
    closedAt: new Date(record.created_at),
    to,
    muxedId,
    memo: memoFromHorizon(tx),
    shownMemo: memoShown(tx),
    asset,
    amountStroops,
    from,
    createsAccount: record.type === "create_account",
  };
}
