import { Networks } from "@stellar/stellar-sdk";
import type { Asset } from "./assets.js";
import type { Memo, MemoType } from "./memo.js";

/** A SEP-7 `pay` request (https://github.com/stellar/stellar-protocol/blob/master/ecosystem/sep-0007.md). */
export interface PayRequest {
  destination: string;
  /** Canonical decimal amount, e.g. "12.5". */
  amount: string;
  asset: Asset;
  /** Null when the destination is an M address, which identifies the payment by itself. */
  memo: Memo | null;
  /** Shown by the wallet, never put on-chain; cut to the spec's 300 characters. */
  msg?: string | null;
  networkPassphrase: string;
}

export const SEP7_MSG_MAX_LENGTH = 300;

const MEMO_TYPES: Record<MemoType, string> = { text: "MEMO_TEXT", id: "MEMO_ID", hash: "MEMO_HASH" };

/**
 * RFC 3986 percent-encoding: encodeURIComponent also escapes `!'()*`, so only unreserved
 * characters stay literal and a space is `%20` (never `+`), as in the spec's examples.
 */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Cuts to at most `max` UTF-16 units without splitting a surrogate pair (so also ≤ `max` code points). */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/** Builds `web+stellar:pay?…`; the native asset and the public network are implied by omission. */
export function sep7PayUri(request: PayRequest): string {
  const params: [string, string][] = [
    ["destination", request.destination],
    ["amount", request.amount],
  ];
  if (request.asset.issuer !== null) {
    params.push(["asset_code", request.asset.code], ["asset_issuer", request.asset.issuer]);
  }
  if (request.memo) {
    // Hash memos travel base64-encoded (then percent-encoded); text and id memos as they are.
    const { type, value } = request.memo;
    const memo = type === "hash" ? Buffer.from(value, "hex").toString("base64") : value;
    params.push(["memo", memo], ["memo_type", MEMO_TYPES[type]]);
  }
  if (request.msg) params.push(["msg", truncate(request.msg, SEP7_MSG_MAX_LENGTH)]);
  if (request.networkPassphrase !== Networks.PUBLIC) params.push(["network_passphrase", request.networkPassphrase]);
  return `web+stellar:pay?${params.map(([k, v]) => `${k}=${percentEncode(v)}`).join("&")}`;
}
