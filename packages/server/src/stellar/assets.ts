import { StrKey } from "@stellar/stellar-sdk";
import { badRequest } from "../http/errors.js";

/** An asset as Lumenpay stores it: the native asset is `{ code: "XLM", issuer: null }`. */
export interface Asset {
  code: string;
  issuer: string | null;
}

/** Wire form: `"XLM"` for the native asset, `{code, issuer}` for an issued one. */
export type AssetIn = "XLM" | { code: string; issuer: string };
export type AssetOut = AssetIn;

export const assetSchema = {
  oneOf: [
    { type: "string", enum: ["XLM"], description: "The native asset (lumens)." },
    {
      type: "object",
      additionalProperties: false,
      required: ["code", "issuer"],
      properties: {
        code: { type: "string", maxLength: 12, description: "Asset code, 1–12 letters or digits." },
        issuer: { type: "string", maxLength: 56, description: "Issuing account (G…).", example: "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN" },
      },
    },
  ],
} as const;

const ASSET_CODE = /^[A-Za-z0-9]{1,12}$/;

/** Validates a wire asset; `param` names the field in the error. */
export function parseAsset(input: AssetIn, param: string): Asset {
  if (input === "XLM") return { code: "XLM", issuer: null };
  if (!ASSET_CODE.test(input.code)) {
    throw badRequest("invalid_asset", "Asset code must be 1–12 letters or digits.", `${param}.code`);
  }
  if (!StrKey.isValidEd25519PublicKey(input.issuer)) {
    throw badRequest("invalid_asset", "Asset issuer must be a valid Stellar account (G…).", `${param}.issuer`);
  }
  return { code: input.code, issuer: input.issuer };
}

export function assetOut(asset: Asset): AssetOut {
  return asset.issuer === null ? "XLM" : { code: asset.code, issuer: asset.issuer };
}

export const sameAsset = (a: Asset, b: Asset) => a.code === b.code && a.issuer === b.issuer;

/** `XLM` or `CODE:ISSUER`, as used on the command line and in metrics labels. */
export function assetLabel(asset: Asset): string {
  return asset.issuer === null ? "XLM" : `${asset.code}:${asset.issuer}`;
}
