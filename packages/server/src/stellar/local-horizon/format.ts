import type { AssetRef } from "./types.js";

const STROOPS_PER_UNIT = 10_000_000n;
const DECIMAL = /^(\d+)(?:\.(\d{1,7}))?$/;

/** Horizon renders every amount with exactly seven decimals: 125000000n → "12.5000000". */
export function formatStroops(stroops: bigint): string {
  return `${stroops / STROOPS_PER_UNIT}.${(stroops % STROOPS_PER_UNIT).toString().padStart(7, "0")}`;
}

/** The SDK hands amounts over as decimal strings; they become stroops without touching a float. */
export function parseStroops(value: string): bigint {
  const match = DECIMAL.exec(value);
  if (!match) throw new TypeError(`Not a Stellar amount: "${value}".`);
  return BigInt(match[1]!) * STROOPS_PER_UNIT + BigInt((match[2] ?? "").padEnd(7, "0"));
}

/** Horizon's asset fields, optionally prefixed (`source_asset_type`…); the issuer and code only for credit assets. */
export function assetFields(asset: AssetRef, prefix = ""): Record<string, string> {
  if (asset.type === "native") return { [`${prefix}asset_type`]: "native" };
  return { [`${prefix}asset_type`]: asset.type, [`${prefix}asset_code`]: asset.code, [`${prefix}asset_issuer`]: asset.issuer };
}
