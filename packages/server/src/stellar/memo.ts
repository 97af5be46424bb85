import { badRequest } from "../http/errors.js";
import { randomUint64 } from "../ids.js";

export type MemoType = "text" | "id" | "hash";
export const MEMO_TYPES: readonly MemoType[] = ["text", "id", "hash"];

/**
 * A transaction memo in canonical form, which is how incoming payments are matched:
 * text as given, id as a decimal without leading zeros, hash as 64 lower-case hex digits.
 */
export interface Memo {
  type: MemoType;
  value: string;
}

export const MAX_TEXT_MEMO_BYTES = 28;
const MAX_ID_MEMO = 2n ** 64n - 1n;
// In a `u` regex a well-formed surrogate pair is one code point, so \p{Cs} only matches lone halves.
const LONE_SURROGATE = /\p{Cs}/u;

/** Validates and canonicalises a memo; `param` names the field in the error. */
export function parseMemo(type: MemoType, value: string, param: string): Memo {
  switch (type) {
    case "text": {
      const bytes = Buffer.byteLength(value, "utf8");
      if (bytes === 0 || bytes > MAX_TEXT_MEMO_BYTES) {
        throw badRequest("invalid_memo", `A text memo must be 1–${MAX_TEXT_MEMO_BYTES} bytes of UTF-8 (got ${bytes}).`, param);
      }
      // PostgreSQL text cannot hold NUL, and a lone surrogate has no UTF-8 form to match on-chain.
      if (value.includes("\u0000") || LONE_SURROGATE.test(value)) {
        throw badRequest("invalid_memo", "A text memo must be valid UTF-8 text without NUL characters.", param);
      }
      return { type, value };
    }
    case "id": {
      if (!/^\d{1,20}$/.test(value) || BigInt(value) > MAX_ID_MEMO) {
        throw badRequest("invalid_memo", "An id memo must be a decimal string between 0 and 18446744073709551615.", param);
      }
      return { type, value: BigInt(value).toString() };
    }
    case "hash": {
      if (!/^[0-9a-fA-F]{64}$/.test(value)) {
        throw badRequest("invalid_memo", "A hash memo must be 32 bytes written as 64 hexadecimal digits.", param);
      }
      return { type, value: value.toLowerCase() };
    }
  }
}

/** A random id memo: 64 bits make a collision among open payments on one account very unlikely. */
export function randomIdMemo(): Memo {
  return { type: "id", value: randomUint64().toString() };
}

/** A transaction memo as Horizon renders it (`memo_type`, `memo`, `memo_bytes`). */
export interface HorizonMemo {
  memo_type: string;
  memo?: string;
  memo_bytes?: string;
}

/**
 * The canonical form of a transaction's memo, comparing bytes rather than Horizon's strings: text
 * from `memo_bytes` (its `memo` is lossy for invalid UTF-8), hash and return decoded from base64.
 * A return memo carries 32 bytes like a hash memo, and a customer who picked the wrong type still
 * sent the payment's bytes, so it reads as a hash memo. `null` for no memo, `undefined` for a memo
 * no payment can carry (invalid UTF-8, NUL, wrong length).
 */
export function memoFromHorizon(m: HorizonMemo): Memo | null | undefined {
  switch (m.memo_type) {
    case "none":
      return null;
    case "text": {
      const bytes = m.memo_bytes !== undefined ? Buffer.from(m.memo_bytes, "base64") : Buffer.from(m.memo ?? "", "utf8");
      const value = bytes.toString("utf8");
      // A round trip that changes the bytes means invalid UTF-8, which no stored text memo can equal.
      if (!Buffer.from(value, "utf8").equals(bytes) || value.includes("\u0000") || bytes.length === 0) return undefined;
      return { type: "text", value };
    }
    case "id":
      return m.memo !== undefined && /^\d{1,20}$/.test(m.memo) ? { type: "id", value: BigInt(m.memo).toString() } : undefined;
    case "hash":
    case "return": {
      const bytes = Buffer.from(m.memo ?? "", "base64");
      return bytes.length === 32 ? { type: "hash", value: bytes.toString("hex") } : undefined;
    }
    default:
      return undefined;
  }
}

export type ShownMemoType = "none" | "text" | "id" | "hash" | "return";

/** A memo as shown to people, whatever its bytes: text as UTF-8 (bad bytes and NUL replaced), hash and return as hex. */
export interface ShownMemo {
  type: ShownMemoType;
  /** Null for no memo. */
  value: string | null;
}

export function memoShown(m: HorizonMemo): ShownMemo {
  switch (m.memo_type) {
    case "text": {
      const bytes = m.memo_bytes !== undefined ? Buffer.from(m.memo_bytes, "base64") : Buffer.from(m.memo ?? "", "utf8");
      // PostgreSQL text cannot hold NUL.
      return { type: "text", value: bytes.toString("utf8").replaceAll("\u0000", "\uFFFD") };
    }
    case "id":
      return { type: "id", value: m.memo ?? "" };
    case "hash":
    case "return":
      return { type: m.memo_type, value: Buffer.from(m.memo ?? "", "base64").toString("hex") };
    default:
      return { type: "none", value: null };
  }
}
