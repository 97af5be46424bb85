import { Address, Asset, nativeToScVal, StrKey, xdr } from "@stellar/stellar-sdk";
import type { AccountRef, AssetRef, MemoView, OpRow, TxRow } from "../local-horizon/types.js";

/**
 * CAP-67 unified events of a transaction, as stellar-core emits them from protocol 23: a `fee` event for
 * the fee charged (transaction-level, before any transaction applies), and per operation the Stellar
 * Asset Contract's `transfer`, `mint` or `burn` for every asset movement. A failed transaction keeps
 * its fee event only: its operations changed nothing.
 */
export interface TransactionEvents {
  fee: xdr.ContractEvent;
  /** One list per operation, in order; empty when the transaction failed. */
  operations: xdr.ContractEvent[][];
}

const NATIVE: AssetRef = { type: "native" };

const symbol = (name: string) => xdr.ScVal.scvSymbol(name);
const address = (account: string) => new Address(account).toScVal();
const i128 = (amount: bigint) => nativeToScVal(amount, { type: "i128" });
const u64 = (decimal: string) => xdr.ScVal.scvU64(new xdr.Uint64(BigInt(decimal)));

/** SEP-11's form of an asset, the last topic of every SAC event. */
const sep11 = (asset: AssetRef) => (asset.type === "native" ? "native" : `${asset.code}:${asset.issuer}`);

/** How a non-muxed destination carries the transaction memo (CAP-67, rule 2); none for MEMO_NONE. */
function memoScVal(memo: MemoView): xdr.ScVal | undefined {
  switch (memo.type) {
    case "none":
      return undefined;
    case "id":
      return u64(memo.id);
    case "text":
      return xdr.ScVal.scvString(memo.bytes);
    default:
      // Hash and return memos are indistinguishable in events.
      return xdr.ScVal.scvBytes(memo.bytes);
  }
}

/**
 * The event data of a `transfer` or `mint`: the i128 amount alone, or a map with `to_muxed_id` when the
 * destination is muxed (its id, rule 1, which wins over the memo) or the transaction has a memo (rule 2).
 */
function amountData(amount: bigint, to: AccountRef, memo: MemoView): xdr.ScVal {
  const muxedId = to.muxed ? u64(to.muxed.id) : memoScVal(memo);
  if (!muxedId) return i128(amount);
  // An ScMap is sorted by key: "amount" < "to_muxed_id".
  return xdr.ScVal.scvMap([
    new xdr.ScMapEntry({ key: symbol("amount"), val: i128(amount) }),
    new xdr.ScMapEntry({ key: symbol("to_muxed_id"), val: muxedId }),
  ]);
}

const contractEvent = (contract: Buffer, topics: xdr.ScVal[], data: xdr.ScVal) =>
  new xdr.ContractEvent({
    ext: new xdr.ExtensionPoint(0),
    // The SDK types a Hash as Opaque[] ("workaround, cause unknown"); it reads and writes a 32-byte Buffer.
    contractId: contract as unknown as xdr.Hash,
    type: xdr.ContractEventType.contract(),
    body: new xdr.ContractEventBody(0, new xdr.ContractEventV0({ topics, data })),
  });

const sameAsset = (a: AssetRef, b: AssetRef) => sep11(a) === sep11(b);
const issuerOf = (asset: AssetRef) => (asset.type === "native" ? undefined : asset.issuer);

export type EventBuilder = (row: TxRow) => TransactionEvents;

/** Builds the events of transactions on the network with `networkPassphrase` (which names each asset's contract). */
export function createEventBuilder(networkPassphrase: string): EventBuilder {
  // Deriving a SAC's id hashes its preimage; a network has few assets and many events.
  const contractIds = new Map<string, Buffer>();
  const contractOf = (asset: AssetRef): Buffer => {
    const key = sep11(asset);
    let id = contractIds.get(key);
    if (!id) {
      const sdkAsset = asset.type === "native" ? Asset.native() : new Asset(asset.code, asset.issuer);
      contractIds.set(key, (id = StrKey.decodeContract(sdkAsset.contractId(networkPassphrase))));
    }
    return id;
  };
  /** A Stellar Asset Contract event: the asset's contract, its SEP-11 name as the last topic. */
  const sacEvent = (asset: AssetRef, topics: xdr.ScVal[], data: xdr.ScVal) =>
    contractEvent(contractOf(asset), [...topics, xdr.ScVal.scvString(sep11(asset))], data);

  const transfer = (asset: AssetRef, from: string, to: AccountRef, amount: bigint, memo: MemoView) =>
    sacEvent(asset, [symbol("transfer"), address(from), address(to.account)], amountData(amount, to, memo));
  const burn = (asset: AssetRef, from: string, amount: bigint) => sacEvent(asset, [symbol("burn"), address(from)], i128(amount));

  /** A payment's movement: `mint` when the issuer sends, `burn` when it receives, `transfer` otherwise (and issuer to issuer). */
  const movement = (asset: AssetRef, from: string, to: AccountRef, amount: bigint, memo: MemoView): xdr.ContractEvent => {
    const fromIssuer = from === issuerOf(asset);
    const toIssuer = to.account === issuerOf(asset);
    if (fromIssuer && !toIssuer) return sacEvent(asset, [symbol("mint"), address(to.account)], amountData(amount, to, memo));
    if (toIssuer && !fromIssuer) return burn(asset, from, amount);
    return transfer(asset, from, to, amount, memo);
  };

  /**
   * A path payment that converts (another asset, or a path) ends with a transfer (a burn when the destination
   * is the issuer) from the source to the destination of what it delivered. On the real network the trades'
   * events with the offers' owners come first; the local network converts 1:1 with no order book, so it has
   * no trade to report.
   */
  const finalHop = (asset: AssetRef, from: string, to: AccountRef, amount: bigint, memo: MemoView) =>
    to.account === issuerOf(asset) ? burn(asset, from, amount) : transfer(asset, from, to, amount, memo);

  const operationEvents = (op: OpRow, memo: MemoView): xdr.ContractEvent[] => {
    const { spec } = op;
    const from = op.source.account;
    switch (spec.type) {
      case "create_account":
        return [movement(NATIVE, from, { account: spec.destination }, spec.startingBalance, memo)];
      case "payment":
        return [movement(spec.asset, from, spec.to, spec.amount, memo)];
      case "path_payment_strict_receive":
      case "path_payment_strict_send": {
        const delivered = spec.type === "path_payment_strict_receive" ? spec.destAmount : (op.amount ?? 0n);
        // With no path and one asset it is a payment (CAP-67).
        if (spec.path.length === 0 && sameAsset(spec.sendAsset, spec.destAsset)) return [movement(spec.destAsset, from, spec.to, delivered, memo)];
        return [finalHop(spec.destAsset, from, spec.to, delivered, memo)];
      }
      case "account_merge":
        return [movement(NATIVE, from, spec.to, op.amount ?? 0n, memo)];
      default:
        // Trust lines, data, sequence bumps and options move no asset.
        return [];
    }
  };

  return (row) => {
    const { tx } = row;
    // The fee account: a fee bump's fee source, else the transaction's source.
    const payer = (tx.feeBump?.feeSource ?? tx.source).account;
    return {
      // The fee event has no asset topic.
      fee: contractEvent(contractOf(NATIVE), [symbol("fee"), address(payer)], i128(row.feeCharged)),
      operations: row.successful ? row.ops.map((op) => operationEvents(op, tx.memo)) : [],
    };
  };
}
