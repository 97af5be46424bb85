/** An account as a transaction names it: the G account, plus the M address and its id when muxed. */
export interface AccountRef {
  account: string;
  muxed?: { address: string; id: string };
}

export type AssetRef =
  | { type: "native" }
  | { type: "credit_alphanum4" | "credit_alphanum12"; code: string; issuer: string };

export type MemoView =
  | { type: "none" }
  | { type: "id"; id: string }
  | { type: "text" | "hash" | "return"; bytes: Buffer };

export interface DecoratedSignature {
  hint: Buffer;
  signature: Buffer;
}

/** One operation, decoded. `source` is null when the operation uses the transaction's source. */
export type OpSpec = { source: AccountRef | null } & (
  | { type: "create_account"; destination: string; startingBalance: bigint }
  | { type: "payment"; to: AccountRef; asset: AssetRef; amount: bigint }
  | {
      type: "path_payment_strict_receive";
      to: AccountRef;
      sendAsset: AssetRef;
      sendMax: bigint;
      destAsset: AssetRef;
      destAmount: bigint;
      path: AssetRef[];
    }
  | {
      type: "path_payment_strict_send";
      to: AccountRef;
      sendAsset: AssetRef;
      sendAmount: bigint;
      destAsset: AssetRef;
      destMin: bigint;
      path: AssetRef[];
    }
  | { type: "account_merge"; to: AccountRef }
  | { type: "change_trust"; asset: AssetRef; limit: bigint }
  | { type: "manage_data"; name: string; value: Buffer | null }
  | { type: "bump_sequence"; bumpTo: bigint }
  | { type: "set_options" }
  /** Decoded so that the transaction can be refused with `tx_not_supported`; never recorded. */
  | { type: "unsupported"; name: string }
);

export type SupportedOpSpec = Exclude<OpSpec, { type: "unsupported" }>;
export type OpType = SupportedOpSpec["type"];

/** A signed transaction reduced to what the local network needs; `hash`/`hashBytes` are the (inner) tx's. */
export interface DecodedTx {
  envelopeXdr: string;
  hash: string;
  hashBytes: Buffer;
  source: AccountRef;
  sequence: bigint;
  fee: bigint;
  memo: MemoView;
  timeBounds: { min: bigint; max: bigint } | null;
  signatures: DecoratedSignature[];
  ops: OpSpec[];
  feeBump: {
    hash: string;
    hashBytes: Buffer;
    feeSource: AccountRef;
    fee: bigint;
    signatures: DecoratedSignature[];
  } | null;
}

export interface Ledger {
  sequence: number;
  /** Set when the ledger closes; records are only visible after that. */
  closedAt: Date;
}

export interface TxRow {
  /** TOID: ledger << 32 | application order << 12. */
  id: bigint;
  ledger: Ledger;
  tx: DecodedTx;
  successful: boolean;
  feeCharged: bigint;
  resultXdr: string;
  resultMetaXdr: string;
  ops: OpRow[];
}

export interface OpRow {
  /** TOID: the transaction's id | operation index (from 1). */
  id: bigint;
  tx: TxRow;
  spec: SupportedOpSpec;
  source: AccountRef;
  /** Amounts only known once applied: what a path payment spent or delivered, what a merge moved. */
  sourceAmount?: bigint;
  amount?: bigint;
  effects: EffectRow[];
}

export interface EffectRow {
  op: OpRow;
  /** From 1, within the operation. */
  index: number;
  type: string;
  typeI: number;
  account: AccountRef;
  details: Record<string, unknown>;
}
