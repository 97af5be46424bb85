import { badRequest } from "../http/errors.js";

/** Stellar amounts are int64 counts of stroops; one unit (1 XLM, 1 USDC…) is 10^7 stroops. */
export const STROOPS_PER_UNIT = 10_000_000n;
export const MAX_STROOPS = 9_223_372_036_854_775_807n;

// Digits, then at most seven decimals: no sign, exponent, spaces, separators or bare "." at either end.
const AMOUNT = /^(\d+)(?:\.(\d{1,7}))?$/;

/** Parses a wire amount ("12.50") into stroops (125000000n) with string and BigInt arithmetic only. */
export function parseAmount(value: string, param: string): bigint {
  const match = AMOUNT.exec(value);
  if (!match) {
    throw badRequest("invalid_amount", "Amount must be a decimal string with at most 7 decimals, e.g. \"12.50\".", param);
  }
  const stroops = BigInt(match[1]!) * STROOPS_PER_UNIT + BigInt((match[2] ?? "").padEnd(7, "0"));
  if (stroops <= 0n) throw badRequest("invalid_amount", "Amount must be greater than zero.", param);
  if (stroops > MAX_STROOPS) {
    throw badRequest("invalid_amount", "Amount must not exceed 922337203685.4775807.", param);
  }
  return stroops;
}

/** Canonical decimal form of a stroop count: no trailing zeros, no trailing "." (125000000n → "12.5"). */
export function formatAmount(stroops: bigint): string {
  if (stroops < 0n) throw new RangeError("amount must not be negative");
  const units = (stroops / STROOPS_PER_UNIT).toString();
  const fraction = (stroops % STROOPS_PER_UNIT).toString().padStart(7, "0").replace(/0+$/, "");
  return fraction === "" ? units : `${units}.${fraction}`;
}
