import {
  type Asset,
  FeeBumpTransaction,
  Memo,
  MuxedAccount,
  type Operation,
  StrKey,
  type Transaction,
  TransactionBuilder,
  type xdr,
} from "@stellar/stellar-sdk";
import { parseStroops } from "./format.js";
import type { AccountRef, AssetRef, DecodedTx, DecoratedSignature, MemoView, OpSpec } from "./types.js";

/** Thrown for an envelope that is not a transaction at all (Horizon's `transaction_malformed`). */
export class MalformedEnvelopeError extends Error {
  override name = "MalformedEnvelopeError";
}

export function accountRef(address: string): AccountRef {
  if (!StrKey.isValidMed25519PublicKey(address)) return { account: address };
  const muxed = MuxedAccount.fromAddress(address, "0");
  return { account: muxed.baseAccount().accountId(), muxed: { address, id: muxed.id() } };
}

export function assetRef(asset: Asset): AssetRef {
  if (asset.isNative()) return { type: "native" };
  const type = asset.getAssetType();
  if (type !== "credit_alphanum4" && type !== "credit_alphanum12") throw new MalformedEnvelopeError(`Unsupported asset type ${type}.`);
  return { type, code: asset.getCode(), issuer: asset.getIssuer() };
}

export function memoView(memo: Memo): MemoView {
  switch (memo.type) {
    case "id":
      return { type: "id", id: String(memo.value) };
    case "text": {
      const value = (memo as Memo<"text">).value;
      return { type: "text", bytes: typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value) };
    }
    case "hash":
    case "return":
      return { type: memo.type, bytes: Buffer.from((memo as Memo<"hash">).value) };
    default:
      return { type: "none" };
  }
}

const signatures = (list: readonly xdr.DecoratedSignature[]): DecoratedSignature[] =>
  list.map((s) => ({ hint: Buffer.from(s.hint()), signature: Buffer.from(s.signature()) }));

function opSpec(op: Operation): OpSpec {
  const source = op.source ? accountRef(op.source) : null;
  switch (op.type) {
    case "createAccount":
      return { source, type: "create_account", destination: op.destination, startingBalance: parseStroops(op.startingBalance) };
    case "payment":
      return { source, type: "payment", to: accountRef(op.destination), asset: assetRef(op.asset), amount: parseStroops(op.amount) };
    case "pathPaymentStrictReceive":
      return {
        source,
        type: "path_payment_strict_receive",
        to: accountRef(op.destination),
        sendAsset: assetRef(op.sendAsset),
        sendMax: parseStroops(op.sendMax),
        destAsset: assetRef(op.destAsset),
        destAmount: parseStroops(op.destAmount),
        path: op.path.map(assetRef),
      };
    case "pathPaymentStrictSend":
      return {
        source,
        type: "path_payment_strict_send",
        to: accountRef(op.destination),
        sendAsset: assetRef(op.sendAsset),
        sendAmount: parseStroops(op.sendAmount),
        destAsset: assetRef(op.destAsset),
        destMin: parseStroops(op.destMin),
        path: op.path.map(assetRef),
      };
    case "accountMerge":
      return { source, type: "account_merge", to: accountRef(op.destination) };
    case "changeTrust":
      if (!("isNative" in op.line)) return { source, type: "unsupported", name: "change_trust (liquidity pool)" };
      return { source, type: "change_trust", asset: assetRef(op.line), limit: parseStroops(op.limit) };
    case "manageData":
      return { source, type: "manage_data", name: op.name, value: op.value ? Buffer.from(op.value) : null };
    case "bumpSequence":
      return { source, type: "bump_sequence", bumpTo: BigInt(op.bumpTo) };
    case "setOptions":
      return { source, type: "set_options" };
    default:
      return { source, type: "unsupported", name: op.type };
  }
}

function decodeInner(tx: Transaction): Omit<DecodedTx, "envelopeXdr" | "feeBump"> {
  const hashBytes = tx.hash();
  return {
    hash: hashBytes.toString("hex"),
    hashBytes,
    source: accountRef(tx.source),
    sequence: BigInt(tx.sequence),
    fee: BigInt(tx.fee),
    memo: memoView(tx.memo),
    timeBounds: tx.timeBounds ? { min: BigInt(tx.timeBounds.minTime), max: BigInt(tx.timeBounds.maxTime) } : null,
    signatures: signatures(tx.signatures),
    ops: tx.operations.map(opSpec),
  };
}

/** Decodes an SDK transaction, a fee bump, or a base64 envelope signed for `networkPassphrase`. */
export function decodeTransaction(input: Transaction | FeeBumpTransaction | string, networkPassphrase: string): DecodedTx {
  // Re-reading an SDK object under our passphrase makes a transaction signed for another network fail
  // its signature check, as it would on a real one.
  const envelopeXdr = typeof input === "string" ? input : input.toEnvelope().toXDR("base64");
  let tx: Transaction | FeeBumpTransaction;
  try {
    tx = TransactionBuilder.fromXDR(envelopeXdr, networkPassphrase);
  } catch (error) {
    throw new MalformedEnvelopeError(error instanceof Error ? error.message : String(error));
  }
  if (!(tx instanceof FeeBumpTransaction)) return { ...decodeInner(tx), envelopeXdr, feeBump: null };
  const hashBytes = tx.hash();
  return {
    ...decodeInner(tx.innerTransaction),
    envelopeXdr,
    feeBump: {
      hash: hashBytes.toString("hex"),
      hashBytes,
      feeSource: accountRef(tx.feeSource),
      fee: BigInt(tx.fee),
      signatures: signatures(tx.signatures),
    },
  };
}
