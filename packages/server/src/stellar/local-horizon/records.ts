import { assetFields, formatStroops } from "./format.js";
import { EMPTY_FEE_META_XDR } from "./results.js";
import type { PageQuery } from "./history.js";
import type { AccountState } from "./state.js";
import type { AccountRef, AssetRef, EffectRow, MemoView, OpRow, OpType, TxRow } from "./types.js";

export type Json = Record<string, unknown>;

/** Horizon's `created_at`: ISO 8601 at second precision. */
export const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

export const link = (href: string, templated = false) => (templated ? { href, templated: true } : { href });

/** `<name>_muxed` and `<name>_muxed_id` for an M address; Horizon omits a zero id (`omitempty` on a uint64). */
function muxedFields(ref: AccountRef, name: string): Json {
  if (!ref.muxed) return {};
  if (ref.muxed.id === "0") return { [`${name}_muxed`]: ref.muxed.address };
  return { [`${name}_muxed`]: ref.muxed.address, [`${name}_muxed_id`]: ref.muxed.id };
}

/** How payments and path payments begin, in Horizon's order: the asset delivered, then sender and receiver. */
function transferFields(asset: AssetRef, from: AccountRef, to: AccountRef): Json {
  return { ...assetFields(asset), from: from.account, ...muxedFields(from, "from"), to: to.account, ...muxedFields(to, "to") };
}

/** Text memos as the string plus `memo_bytes` (base64); id as a decimal string; hash and return as base64. */
function memoFields(memo: MemoView): Json {
  switch (memo.type) {
    case "none":
      return {};
    case "id":
      return { memo: memo.id };
    case "text":
      return { memo: memo.bytes.toString("utf8"), memo_bytes: memo.bytes.toString("base64") };
    default:
      return { memo: memo.bytes.toString("base64") };
  }
}

/** The hash a transaction's records carry: a fee bump's outer hash. */
export const recordHash = (row: TxRow) => row.tx.feeBump?.hash ?? row.tx.hash;

/**
 * A transaction resource. Requested by a fee bump's inner hash, it shows that hash and the inner signatures,
 * as Horizon does.
 */
export function transactionJson(row: TxRow, base: string, requestedHash?: string): Json {
  const { tx } = row;
  const bump = tx.feeBump;
  const outer = bump !== null && requestedHash !== tx.hash;
  const hash = outer ? bump.hash : tx.hash;
  const signatures = (outer ? bump.signatures : tx.signatures).map((s) => s.signature.toString("base64"));
  const token = row.id.toString();
  return {
    // Horizon marshals the memo first.
    ...memoFields(tx.memo),
    _links: {
      self: link(`${base}/transactions/${hash}`),
      account: link(`${base}/accounts/${tx.source.account}`),
      ledger: link(`${base}/ledgers/${row.ledger.sequence}`),
      operations: link(`${base}/transactions/${hash}/operations{?cursor,limit,order}`, true),
      effects: link(`${base}/transactions/${hash}/effects{?cursor,limit,order}`, true),
      precedes: link(`${base}/transactions?order=asc&cursor=${token}`),
      succeeds: link(`${base}/transactions?order=desc&cursor=${token}`),
      transaction: link(`${base}/transactions/${hash}`),
    },
    id: hash,
    paging_token: token,
    successful: row.successful,
    hash,
    ledger: row.ledger.sequence,
    created_at: isoSeconds(row.ledger.closedAt),
    source_account: tx.source.account,
    ...muxedFields(tx.source, "account"),
    source_account_sequence: tx.sequence.toString(),
    fee_account: bump ? bump.feeSource.account : tx.source.account,
    ...muxedFields(bump ? bump.feeSource : tx.source, "fee_account"),
    fee_charged: row.feeCharged.toString(),
    max_fee: (bump ? bump.fee : tx.fee).toString(),
    operation_count: tx.ops.length,
    envelope_xdr: tx.envelopeXdr,
    result_xdr: row.resultXdr,
    result_meta_xdr: row.resultMetaXdr,
    fee_meta_xdr: EMPTY_FEE_META_XDR,
    memo_type: tx.memo.type,
    signatures,
    ...(tx.timeBounds && {
      preconditions: {
        // Horizon leaves out an unbounded max_time.
        timebounds: { min_time: tx.timeBounds.min.toString(), ...(tx.timeBounds.max !== 0n && { max_time: tx.timeBounds.max.toString() }) },
      },
    }),
    ...(bump && {
      fee_bump_transaction: { hash: bump.hash, signatures: bump.signatures.map((s) => s.signature.toString("base64")) },
      inner_transaction: { hash: tx.hash, signatures: tx.signatures.map((s) => s.signature.toString("base64")), max_fee: tx.fee.toString() },
    }),
  };
}

const TYPE_I: Record<OpType, number> = {
  create_account: 0,
  payment: 1,
  path_payment_strict_receive: 2,
  set_options: 5,
  change_trust: 6,
  account_merge: 8,
  manage_data: 10,
  bump_sequence: 11,
  path_payment_strict_send: 13,
};

/** The type-specific fields, in Horizon's order. A failed path payment moved nothing, so its computed side is 0. */
function operationDetails(op: OpRow): Json {
  const { spec, source } = op;
  const moved = (amount: bigint | undefined) => formatStroops(op.tx.successful ? (amount ?? 0n) : 0n);
  switch (spec.type) {
    case "create_account":
      return { starting_balance: formatStroops(spec.startingBalance), funder: source.account, ...muxedFields(source, "funder"), account: spec.destination };
    case "payment":
      return { ...transferFields(spec.asset, source, spec.to), amount: formatStroops(spec.amount) };
    case "path_payment_strict_receive":
      return {
        ...transferFields(spec.destAsset, source, spec.to),
        amount: formatStroops(spec.destAmount),
        path: spec.path.map((asset) => assetFields(asset)),
        source_amount: moved(op.sourceAmount),
        source_max: formatStroops(spec.sendMax),
        ...assetFields(spec.sendAsset, "source_"),
      };
    case "path_payment_strict_send":
      return {
        ...transferFields(spec.destAsset, source, spec.to),
        amount: moved(op.amount),
        path: spec.path.map((asset) => assetFields(asset)),
        source_amount: formatStroops(spec.sendAmount),
        destination_min: formatStroops(spec.destMin),
        ...assetFields(spec.sendAsset, "source_"),
      };
    case "account_merge":
      return { account: source.account, ...muxedFields(source, "account"), into: spec.to.account, ...muxedFields(spec.to, "into") };
    case "change_trust":
      return {
        ...assetFields(spec.asset),
        limit: formatStroops(spec.limit),
        trustee: "issuer" in spec.asset ? spec.asset.issuer : undefined,
        trustor: source.account,
        ...muxedFields(source, "trustor"),
      };
    case "manage_data":
      return { name: spec.name, value: spec.value?.toString("base64") ?? "" };
    case "bump_sequence":
      return { bump_to: spec.bumpTo.toString() };
    case "set_options":
      return {};
  }
}

/** An operation resource; `join` embeds its transaction as `transaction`, like `?join=transactions`. */
export function operationJson(op: OpRow, base: string, join: boolean): Json {
  const id = op.id.toString();
  const hash = recordHash(op.tx);
  return {
    _links: {
      self: link(`${base}/operations/${id}`),
      transaction: link(`${base}/transactions/${hash}`),
      effects: link(`${base}/operations/${id}/effects`),
      // Horizon's own (odd) neighbour links for operations point at effects.
      succeeds: link(`${base}/effects?order=desc&cursor=${id}`),
      precedes: link(`${base}/effects?order=asc&cursor=${id}`),
    },
    id,
    paging_token: id,
    transaction_successful: op.tx.successful,
    source_account: op.source.account,
    ...muxedFields(op.source, "source_account"),
    type: op.spec.type,
    type_i: TYPE_I[op.spec.type],
    created_at: isoSeconds(op.tx.ledger.closedAt),
    transaction_hash: hash,
    ...(join && { transaction: transactionJson(op.tx, base) }),
    ...operationDetails(op),
  };
}

/** Effect ids are the zero-padded operation id and index; paging tokens are `<operation id>-<index>`. */
export function effectJson(effect: EffectRow, base: string): Json {
  const opId = effect.op.id.toString();
  const token = `${opId}-${effect.index}`;
  return {
    _links: {
      operation: link(`${base}/operations/${opId}`),
      succeeds: link(`${base}/effects?order=desc&cursor=${token}`),
      precedes: link(`${base}/effects?order=asc&cursor=${token}`),
    },
    id: `${opId.padStart(19, "0")}-${String(effect.index).padStart(10, "0")}`,
    paging_token: token,
    account: effect.account.account,
    ...muxedFields(effect.account, "account"),
    type: effect.type,
    type_i: effect.typeI,
    created_at: isoSeconds(effect.op.tx.ledger.closedAt),
    ...effect.details,
  };
}

const ZERO = formatStroops(0n);

/** An account resource, enough for the SDK's `loadAccount` and its memo-required check (`data`). */
export function accountJson(account: AccountState, base: string, lastModifiedAt: Date): Json {
  const self = `${base}/accounts/${account.id}`;
  const lines = [...account.lines.values()].map((line) => ({
    balance: formatStroops(line.balance),
    limit: formatStroops(line.limit),
    buying_liabilities: ZERO,
    selling_liabilities: ZERO,
    last_modified_ledger: account.lastModifiedLedger,
    is_authorized: true,
    is_authorized_to_maintain_liabilities: true,
    is_clawback_enabled: false,
    ...assetFields(line.asset),
  }));
  return {
    _links: {
      self: link(self),
      transactions: link(`${self}/transactions{?cursor,limit,order}`, true),
      operations: link(`${self}/operations{?cursor,limit,order}`, true),
      payments: link(`${self}/payments{?cursor,limit,order}`, true),
      effects: link(`${self}/effects{?cursor,limit,order}`, true),
      offers: link(`${self}/offers{?cursor,limit,order}`, true),
      trades: link(`${self}/trades{?cursor,limit,order}`, true),
      data: link(`${self}/data/{key}`, true),
    },
    id: account.id,
    account_id: account.id,
    sequence: account.sequence.toString(),
    subentry_count: account.lines.size + account.data.size,
    last_modified_ledger: account.lastModifiedLedger,
    last_modified_time: isoSeconds(lastModifiedAt),
    thresholds: { low_threshold: 0, med_threshold: 0, high_threshold: 0 },
    flags: { auth_required: false, auth_revocable: false, auth_immutable: false, auth_clawback_enabled: false },
    // Horizon lists the native balance last.
    balances: [...lines, { balance: formatStroops(account.native), buying_liabilities: ZERO, selling_liabilities: ZERO, asset_type: "native" }],
    signers: [{ weight: 1, key: account.id, type: "ed25519_public_key" }],
    data: Object.fromEntries([...account.data].map(([name, value]) => [name, value.toString("base64")])),
    num_sponsoring: 0,
    num_sponsored: 0,
    paging_token: account.id,
  };
}

export interface PageLinks {
  base: string;
  path: string;
  /** The request's query: other parameters (`join`, `include_failed`) carry over into the links. */
  params: URLSearchParams;
  /** The cursor as requested ("" when absent). */
  cursor: string;
  query: PageQuery;
}

/** A `_links` + `_embedded.records` page; `next` continues after the last record, `prev` reverses from the first. */
export function pageJson(links: PageLinks, records: Json[]): Json {
  const href = (cursor: string, order: string) => {
    const params = new URLSearchParams(links.params);
    params.set("cursor", cursor);
    params.set("limit", String(links.query.limit));
    params.set("order", order);
    params.sort();
    return `${links.base}${links.path}?${params.toString()}`;
  };
  const first = records[0]?.paging_token;
  const last = records.at(-1)?.paging_token;
  const order = links.query.order;
  return {
    _links: {
      self: link(href(links.cursor, order)),
      next: link(href(typeof last === "string" ? last : links.cursor, order)),
      prev: link(href(typeof first === "string" ? first : links.cursor, order === "asc" ? "desc" : "asc")),
    },
    _embedded: { records },
  };
}
