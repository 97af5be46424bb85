import type { xdr } from "@stellar/stellar-sdk";
import { assetFields, formatStroops } from "./format.js";
import { operationResult, transactionResultXdr, type TxCode } from "./results.js";
import type { SignatureVerifier } from "./crypto.js";
import type { AccountRef, AssetRef, DecodedTx, EffectRow, OpSpec, OpType, SupportedOpSpec } from "./types.js";

/** Stellar's minimum fee per operation; the local network never surge-prices. */
export const BASE_FEE = 100n;
const MAX_INT64 = 9_223_372_036_854_775_807n;
const NATIVE: AssetRef = { type: "native" };

type CreditAsset = Extract<AssetRef, { code: string }>;

export interface TrustLine {
  asset: CreditAsset;
  balance: bigint;
  limit: bigint;
}

export interface AccountState {
  id: string;
  sequence: bigint;
  lastModifiedLedger: number;
  native: bigint;
  /** Credit balances by `CODE:ISSUER`. */
  lines: Map<string, TrustLine>;
  data: Map<string, Buffer>;
}

export type EffectSpec = Omit<EffectRow, "op" | "index">;

export interface OpOutcome {
  spec: SupportedOpSpec;
  source: AccountRef;
  code: string;
  sourceAmount?: bigint;
  amount?: bigint;
  effects: EffectSpec[];
}

export interface ResultCodes {
  transaction: string;
  inner_transaction?: string;
  operations?: string[];
}

/** Included in a ledger: the fee and sequence number are spent; `successful` says whether the operations took effect. */
export interface Applied {
  kind: "applied";
  successful: boolean;
  feeCharged: bigint;
  ops: OpOutcome[];
  resultXdr: string;
  resultCodes: ResultCodes;
}

/** Refused before reaching a ledger (bad sequence, bad auth…): nothing changed. */
export interface Rejected {
  kind: "rejected";
  resultXdr: string;
  resultCodes: ResultCodes;
}

export interface ApplyContext {
  ledger: number;
  /** Unix seconds, checked against time bounds. */
  closeTime: bigint;
  /** Record the transaction as failed even though its operations would succeed. */
  forceFailure: boolean;
  /** Skip signature checks for envelopes this process signed itself (bulk generation). */
  trustSignatures: boolean;
}

const lineKey = (asset: CreditAsset) => `${asset.code}:${asset.issuer}`;

export function newAccount(id: string, native: bigint, ledger: number): AccountState {
  // A new account's sequence number starts at its creation ledger << 32, as on the real network.
  return { id, sequence: BigInt(ledger) << 32n, lastModifiedLedger: ledger, native, lines: new Map(), data: new Map() };
}

const cloneAccount = (a: AccountState): AccountState => ({
  ...a,
  lines: new Map([...a.lines].map(([key, line]) => [key, { ...line }])),
  data: new Map(a.data),
});

/** Copy-on-write view of the accounts for one transaction's operations, dropped if any of them fails. */
class Overlay {
  private readonly changed = new Map<string, AccountState | null>();
  constructor(
    private readonly base: ReadonlyMap<string, AccountState>,
    private readonly ledger: number,
  ) {}

  exists(id: string): boolean {
    const changed = this.changed.get(id);
    return changed === undefined ? this.base.has(id) : changed !== null;
  }

  get(id: string): AccountState | undefined {
    if (this.changed.has(id)) return this.changed.get(id) ?? undefined;
    const found = this.base.get(id);
    if (!found) return undefined;
    const copy = cloneAccount(found);
    this.changed.set(id, copy);
    return copy;
  }

  create(id: string, native: bigint): AccountState {
    const created = newAccount(id, native, this.ledger);
    this.changed.set(id, created);
    return created;
  }

  /** Payments to unknown accounts create them (the real network answers `op_no_destination`): simpler tests. */
  getOrCreate(id: string): AccountState {
    return this.get(id) ?? this.create(id, 0n);
  }

  remove(id: string): void {
    this.changed.set(id, null);
  }

  commit(into: Map<string, AccountState>): void {
    for (const [id, account] of this.changed) {
      if (account === null) {
        into.delete(id);
      } else {
        account.lastModifiedLedger = this.ledger;
        into.set(id, account);
      }
    }
  }
}

/** Issuers create their asset by sending it; there are no trust lines to open first. */
function debit(account: AccountState, asset: AssetRef, amount: bigint): boolean {
  if (asset.type === "native") {
    if (account.native < amount) return false;
    account.native -= amount;
    return true;
  }
  if (asset.issuer === account.id) return true;
  const line = account.lines.get(lineKey(asset));
  if (!line || line.balance < amount) return false;
  line.balance -= amount;
  return true;
}

/** Paying an issuer burns its asset; other credit balances appear on first receipt. */
function credit(account: AccountState, asset: AssetRef, amount: bigint): void {
  if (asset.type === "native") {
    account.native += amount;
    return;
  }
  if (asset.issuer === account.id) return;
  const key = lineKey(asset);
  const line = account.lines.get(key) ?? { asset, balance: 0n, limit: MAX_INT64 };
  line.balance += amount;
  account.lines.set(key, line);
}

const EFFECT_TYPE_I: Record<string, number> = {
  account_created: 0,
  account_removed: 1,
  account_credited: 2,
  account_debited: 3,
  signer_created: 10,
};

const effect = (type: string, account: AccountRef, details: Record<string, unknown> = {}): EffectSpec => ({
  type,
  typeI: EFFECT_TYPE_I[type] ?? -1,
  account,
  details,
});

const moved = (asset: AssetRef, amount: bigint) => ({ ...assetFields(asset), amount: formatStroops(amount) });

type Outcome = Omit<OpOutcome, "spec" | "source">;
const failed = (code: string): Outcome => ({ code, effects: [] });

/**
 * Path payments convert 1:1: there is no order book, so the amount sent equals the amount received and
 * `send_max`/`dest_min` only bound it.
 */
function applyOp(o: Overlay, spec: SupportedOpSpec, source: AccountRef): Outcome {
  const from = o.get(source.account);
  if (!from) return failed("op_no_source_account");
  switch (spec.type) {
    case "create_account": {
      if (spec.startingBalance < 0n || spec.destination === from.id) return failed("op_malformed");
      if (o.exists(spec.destination)) return failed("op_already_exists");
      if (!debit(from, NATIVE, spec.startingBalance)) return failed("op_underfunded");
      o.create(spec.destination, spec.startingBalance);
      const created = { account: spec.destination };
      return {
        code: "op_success",
        effects: [
          effect("account_created", created, { starting_balance: formatStroops(spec.startingBalance) }),
          effect("account_debited", source, moved(NATIVE, spec.startingBalance)),
          effect("signer_created", created, { weight: 1, public_key: spec.destination, key: "" }),
        ],
      };
    }
    case "payment": {
      if (spec.amount <= 0n) return failed("op_malformed");
      if (!debit(from, spec.asset, spec.amount)) return failed("op_underfunded");
      credit(o.getOrCreate(spec.to.account), spec.asset, spec.amount);
      return {
        code: "op_success",
        effects: [effect("account_credited", spec.to, moved(spec.asset, spec.amount)), effect("account_debited", source, moved(spec.asset, spec.amount))],
      };
    }
    case "path_payment_strict_receive": {
      if (spec.destAmount <= 0n) return failed("op_malformed");
      if (spec.destAmount > spec.sendMax) return failed("op_over_source_max");
      if (!debit(from, spec.sendAsset, spec.destAmount)) return failed("op_underfunded");
      credit(o.getOrCreate(spec.to.account), spec.destAsset, spec.destAmount);
      return {
        code: "op_success",
        sourceAmount: spec.destAmount,
        effects: [
          effect("account_credited", spec.to, moved(spec.destAsset, spec.destAmount)),
          effect("account_debited", source, moved(spec.sendAsset, spec.destAmount)),
        ],
      };
    }
    case "path_payment_strict_send": {
      if (spec.sendAmount <= 0n) return failed("op_malformed");
      if (spec.sendAmount < spec.destMin) return failed("op_under_dest_min");
      if (!debit(from, spec.sendAsset, spec.sendAmount)) return failed("op_underfunded");
      credit(o.getOrCreate(spec.to.account), spec.destAsset, spec.sendAmount);
      return {
        code: "op_success",
        amount: spec.sendAmount,
        effects: [
          effect("account_credited", spec.to, moved(spec.destAsset, spec.sendAmount)),
          effect("account_debited", source, moved(spec.sendAsset, spec.sendAmount)),
        ],
      };
    }
    case "account_merge": {
      if (spec.to.account === from.id) return failed("op_malformed");
      const into = o.get(spec.to.account);
      if (!into) return failed("op_no_destination");
      if (from.lines.size > 0 || from.data.size > 0) return failed("op_has_sub_entries");
      const amount = from.native;
      into.native += amount;
      o.remove(from.id);
      return {
        code: "op_success",
        amount,
        effects: [effect("account_debited", source, moved(NATIVE, amount)), effect("account_credited", spec.to, moved(NATIVE, amount)), effect("account_removed", source)],
      };
    }
    case "change_trust": {
      if (spec.asset.type === "native" || spec.asset.issuer === from.id) return failed("op_malformed");
      const key = lineKey(spec.asset);
      const line = from.lines.get(key);
      if (spec.limit === 0n) {
        if (line && line.balance > 0n) return failed("op_malformed");
        from.lines.delete(key);
      } else {
        from.lines.set(key, { asset: spec.asset, balance: line?.balance ?? 0n, limit: spec.limit });
      }
      return { code: "op_success", effects: [] };
    }
    case "manage_data":
      if (spec.value === null) from.data.delete(spec.name);
      else from.data.set(spec.name, spec.value);
      return { code: "op_success", effects: [] };
    case "bump_sequence":
      if (spec.bumpTo > from.sequence) from.sequence = spec.bumpTo;
      return { code: "op_success", effects: [] };
    case "set_options":
      return { code: "op_success", effects: [] };
  }
}

/** The failure a test asks for with `successful: false`, shown on the first operation. */
const FORCED_FAILURE: Record<OpType, string> = {
  create_account: "op_underfunded",
  payment: "op_underfunded",
  path_payment_strict_receive: "op_underfunded",
  path_payment_strict_send: "op_underfunded",
  account_merge: "op_no_destination",
  change_trust: "op_not_supported",
  manage_data: "op_not_supported",
  bump_sequence: "op_not_supported",
  set_options: "op_not_supported",
};

const isSupported = (op: OpSpec): op is SupportedOpSpec => op.type !== "unsupported";

/** Accounts and the rules that move them, in the order stellar-core checks a transaction. */
export class LedgerState {
  readonly accounts = new Map<string, AccountState>();

  constructor(private readonly verifier: SignatureVerifier) {}

  apply(tx: DecodedTx, ctx: ApplyContext): Applied | Rejected {
    const bump = tx.feeBump;
    const feeCharged = BASE_FEE * BigInt(tx.ops.length + (bump ? 1 : 0));
    const innerHash = bump ? tx.hashBytes : undefined;
    // `onInner`: the inner transaction of a fee bump is at fault, so the outer result wraps its code.
    const reject = (code: TxCode, onInner: boolean, operations?: string[], opResults?: xdr.OperationResult[]): Rejected => ({
      kind: "rejected",
      resultXdr: transactionResultXdr({ feeCharged, code, opResults, innerHash: onInner ? innerHash : undefined }),
      resultCodes: onInner && bump ? { transaction: "tx_fee_bump_inner_failed", inner_transaction: code, operations } : { transaction: code, operations },
    });
    const rejectInner = (code: TxCode, operations?: string[], opResults?: xdr.OperationResult[]) => reject(code, true, operations, opResults);

    const feePayer = bump ? this.accounts.get(bump.feeSource.account) : undefined;
    if (bump) {
      if (!feePayer) return reject("tx_no_source_account", false);
      if (bump.fee < feeCharged) return reject("tx_insufficient_fee", false);
      const auth = ctx.trustSignatures ? "ok" : this.verifier.check(bump.hashBytes, bump.signatures, [feePayer.id]);
      if (auth !== "ok") return reject(auth, false);
      if (feePayer.native < feeCharged) return reject("tx_insufficient_balance", false);
    }
    if (tx.ops.length === 0) return rejectInner("tx_missing_operation");
    const specs = tx.ops;
    if (!specs.every(isSupported)) return rejectInner("tx_not_supported");
    if (tx.timeBounds && tx.timeBounds.min > ctx.closeTime) return rejectInner("tx_too_early");
    if (tx.timeBounds && tx.timeBounds.max !== 0n && tx.timeBounds.max < ctx.closeTime) return rejectInner("tx_too_late");
    if (!bump && tx.fee < feeCharged) return rejectInner("tx_insufficient_fee");
    const source = this.accounts.get(tx.source.account);
    if (!source) return rejectInner("tx_no_source_account");
    if (tx.sequence !== source.sequence + 1n) return rejectInner("tx_bad_seq");
    const opSources = specs.map((op) => (op.source && !this.accounts.has(op.source.account) ? "op_no_source_account" : "op_success"));
    if (opSources.includes("op_no_source_account")) {
      return rejectInner("tx_failed", opSources, specs.map((spec, i) => operationResult({ spec }, opSources[i]!)));
    }
    if (!ctx.trustSignatures) {
      const required = new Set([source.id, ...specs.flatMap((op) => (op.source ? [op.source.account] : []))]);
      const auth = this.verifier.check(tx.hashBytes, tx.signatures, [...required]);
      if (auth !== "ok") return rejectInner(auth);
    }
    const payer = feePayer ?? source;
    if (payer.native < feeCharged) return rejectInner("tx_insufficient_balance");

    // From here the transaction is in the ledger: its fee and sequence number are spent even if an operation fails.
    payer.native -= feeCharged;
    payer.lastModifiedLedger = ctx.ledger;
    source.sequence = tx.sequence;
    source.lastModifiedLedger = ctx.ledger;
    const overlay = new Overlay(this.accounts, ctx.ledger);
    const ops = specs.map((spec): OpOutcome => {
      const opSource = spec.source ?? tx.source;
      return { spec, source: opSource, ...applyOp(overlay, spec, opSource) };
    });
    // Forced only when it would otherwise succeed: a transaction that fails by itself keeps its own codes, so
    // replaying a journaled failure with `forceFailure` reproduces its result exactly.
    const first = ops[0]!;
    if (ctx.forceFailure && ops.every((op) => op.code === "op_success")) first.code = FORCED_FAILURE[first.spec.type];
    const successful = ops.every((op) => op.code === "op_success");
    if (successful) overlay.commit(this.accounts);
    const code: TxCode = successful ? "tx_success" : "tx_failed";
    const operations = ops.map((op) => op.code);
    return {
      kind: "applied",
      successful,
      feeCharged,
      ops,
      resultXdr: transactionResultXdr({ feeCharged, code, opResults: ops.map((op) => operationResult(op, op.code)), innerHash }),
      resultCodes: successful
        ? { transaction: bump ? "tx_fee_bump_inner_success" : "tx_success", operations }
        : bump
          ? { transaction: "tx_fee_bump_inner_failed", inner_transaction: "tx_failed", operations }
          : { transaction: "tx_failed", operations },
    };
  }
}
