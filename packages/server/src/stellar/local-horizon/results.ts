import { Asset, Keypair, xdr } from "@stellar/stellar-sdk";
import type { AssetRef, OpRow, OpType } from "./types.js";

/** Horizon's names for transaction result codes, as in `extras.result_codes.transaction`. */
export type TxCode =
  | "tx_success"
  | "tx_failed"
  | "tx_too_early"
  | "tx_too_late"
  | "tx_missing_operation"
  | "tx_bad_seq"
  | "tx_bad_auth"
  | "tx_insufficient_balance"
  | "tx_no_source_account"
  | "tx_insufficient_fee"
  | "tx_bad_auth_extra"
  | "tx_not_supported";

const TX_RESULTS: Record<Exclude<TxCode, "tx_success" | "tx_failed">, () => xdr.TransactionResultResult> = {
  tx_too_early: () => xdr.TransactionResultResult.txTooEarly(),
  tx_too_late: () => xdr.TransactionResultResult.txTooLate(),
  tx_missing_operation: () => xdr.TransactionResultResult.txMissingOperation(),
  tx_bad_seq: () => xdr.TransactionResultResult.txBadSeq(),
  tx_bad_auth: () => xdr.TransactionResultResult.txBadAuth(),
  tx_insufficient_balance: () => xdr.TransactionResultResult.txInsufficientBalance(),
  tx_no_source_account: () => xdr.TransactionResultResult.txNoAccount(),
  tx_insufficient_fee: () => xdr.TransactionResultResult.txInsufficientFee(),
  tx_bad_auth_extra: () => xdr.TransactionResultResult.txBadAuthExtra(),
  tx_not_supported: () => xdr.TransactionResultResult.txNotSupported(),
};

const INNER_RESULTS: Record<Exclude<TxCode, "tx_success" | "tx_failed">, () => xdr.InnerTransactionResultResult> = {
  tx_too_early: () => xdr.InnerTransactionResultResult.txTooEarly(),
  tx_too_late: () => xdr.InnerTransactionResultResult.txTooLate(),
  tx_missing_operation: () => xdr.InnerTransactionResultResult.txMissingOperation(),
  tx_bad_seq: () => xdr.InnerTransactionResultResult.txBadSeq(),
  tx_bad_auth: () => xdr.InnerTransactionResultResult.txBadAuth(),
  tx_insufficient_balance: () => xdr.InnerTransactionResultResult.txInsufficientBalance(),
  tx_no_source_account: () => xdr.InnerTransactionResultResult.txNoAccount(),
  tx_insufficient_fee: () => xdr.InnerTransactionResultResult.txInsufficientFee(),
  tx_bad_auth_extra: () => xdr.InnerTransactionResultResult.txBadAuthExtra(),
  tx_not_supported: () => xdr.InnerTransactionResultResult.txNotSupported(),
};

const sdkAsset = (a: AssetRef) => (a.type === "native" ? Asset.native() : new Asset(a.code, a.issuer));
const int64 = (value: bigint) => new xdr.Int64(value);
const inner = (tr: xdr.OperationResultTr) => xdr.OperationResult.opInner(tr);

const simplePayment = (to: string, asset: AssetRef, amount: bigint) =>
  new xdr.SimplePaymentResult({ destination: Keypair.fromPublicKey(to).xdrPublicKey(), asset: sdkAsset(asset).toXDRObject(), amount: int64(amount) });

/** What building a result needs: the operation and the amounts it actually moved. */
export type AppliedOp = Pick<OpRow, "spec" | "amount" | "sourceAmount">;

type OpResultBuilder = (op: AppliedOp) => xdr.OperationResult;

/** Every operation result code the local network produces, per operation type, as real XDR. */
const OP_RESULTS: Record<OpType, Record<string, OpResultBuilder>> = {
  create_account: {
    op_success: () => inner(xdr.OperationResultTr.createAccount(xdr.CreateAccountResult.createAccountSuccess())),
    op_malformed: () => inner(xdr.OperationResultTr.createAccount(xdr.CreateAccountResult.createAccountMalformed())),
    op_underfunded: () => inner(xdr.OperationResultTr.createAccount(xdr.CreateAccountResult.createAccountUnderfunded())),
    op_already_exists: () => inner(xdr.OperationResultTr.createAccount(xdr.CreateAccountResult.createAccountAlreadyExist())),
  },
  payment: {
    op_success: () => inner(xdr.OperationResultTr.payment(xdr.PaymentResult.paymentSuccess())),
    op_malformed: () => inner(xdr.OperationResultTr.payment(xdr.PaymentResult.paymentMalformed())),
    op_underfunded: () => inner(xdr.OperationResultTr.payment(xdr.PaymentResult.paymentUnderfunded())),
  },
  path_payment_strict_receive: {
    op_success: (op) => {
      if (op.spec.type !== "path_payment_strict_receive") throw new TypeError("not a strict-receive path payment");
      const success = new xdr.PathPaymentStrictReceiveResultSuccess({
        offers: [],
        last: simplePayment(op.spec.to.account, op.spec.destAsset, op.spec.destAmount),
      });
      return inner(xdr.OperationResultTr.pathPaymentStrictReceive(xdr.PathPaymentStrictReceiveResult.pathPaymentStrictReceiveSuccess(success)));
    },
    op_malformed: () => inner(xdr.OperationResultTr.pathPaymentStrictReceive(xdr.PathPaymentStrictReceiveResult.pathPaymentStrictReceiveMalformed())),
    op_underfunded: () =>
      inner(xdr.OperationResultTr.pathPaymentStrictReceive(xdr.PathPaymentStrictReceiveResult.pathPaymentStrictReceiveUnderfunded())),
    op_over_source_max: () =>
      inner(xdr.OperationResultTr.pathPaymentStrictReceive(xdr.PathPaymentStrictReceiveResult.pathPaymentStrictReceiveOverSendmax())),
  },
  path_payment_strict_send: {
    op_success: (op) => {
      if (op.spec.type !== "path_payment_strict_send") throw new TypeError("not a strict-send path payment");
      const success = new xdr.PathPaymentStrictSendResultSuccess({
        offers: [],
        last: simplePayment(op.spec.to.account, op.spec.destAsset, op.amount ?? 0n),
      });
      return inner(xdr.OperationResultTr.pathPaymentStrictSend(xdr.PathPaymentStrictSendResult.pathPaymentStrictSendSuccess(success)));
    },
    op_malformed: () => inner(xdr.OperationResultTr.pathPaymentStrictSend(xdr.PathPaymentStrictSendResult.pathPaymentStrictSendMalformed())),
    op_underfunded: () => inner(xdr.OperationResultTr.pathPaymentStrictSend(xdr.PathPaymentStrictSendResult.pathPaymentStrictSendUnderfunded())),
    op_under_dest_min: () =>
      inner(xdr.OperationResultTr.pathPaymentStrictSend(xdr.PathPaymentStrictSendResult.pathPaymentStrictSendUnderDestmin())),
  },
  account_merge: {
    op_success: (op) => inner(xdr.OperationResultTr.accountMerge(xdr.AccountMergeResult.accountMergeSuccess(int64(op.amount ?? 0n)))),
    op_malformed: () => inner(xdr.OperationResultTr.accountMerge(xdr.AccountMergeResult.accountMergeMalformed())),
    op_no_destination: () => inner(xdr.OperationResultTr.accountMerge(xdr.AccountMergeResult.accountMergeNoAccount())),
    op_has_sub_entries: () => inner(xdr.OperationResultTr.accountMerge(xdr.AccountMergeResult.accountMergeHasSubEntries())),
  },
  change_trust: {
    op_success: () => inner(xdr.OperationResultTr.changeTrust(xdr.ChangeTrustResult.changeTrustSuccess())),
    op_malformed: () => inner(xdr.OperationResultTr.changeTrust(xdr.ChangeTrustResult.changeTrustMalformed())),
  },
  manage_data: { op_success: () => inner(xdr.OperationResultTr.manageData(xdr.ManageDataResult.manageDataSuccess())) },
  bump_sequence: { op_success: () => inner(xdr.OperationResultTr.bumpSequence(xdr.BumpSequenceResult.bumpSequenceSuccess())) },
  set_options: { op_success: () => inner(xdr.OperationResultTr.setOptions(xdr.SetOptionsResult.setOptionsSuccess())) },
};

/** Codes that every operation type can have: they live outside the per-type result union. */
const ANY_OP: Record<string, () => xdr.OperationResult> = {
  op_no_source_account: () => xdr.OperationResult.opNoAccount(),
  op_not_supported: () => xdr.OperationResult.opNotSupported(),
};

export function operationResult(op: AppliedOp, code: string): xdr.OperationResult {
  const build = ANY_OP[code] ?? OP_RESULTS[op.spec.type][code];
  if (!build) throw new TypeError(`No XDR result for ${op.spec.type} ${code}.`);
  return build(op);
}

export interface ResultInput {
  feeCharged: bigint;
  code: TxCode;
  /** Present for applied transactions (`tx_success`/`tx_failed`). */
  opResults?: xdr.OperationResult[];
  /** For a fee bump: the inner transaction's hash; the code then describes the inner transaction. */
  innerHash?: Buffer;
}

/** Base64 `TransactionResult`, what Horizon returns as `result_xdr`. */
export function transactionResultXdr({ feeCharged, code, opResults = [], innerHash }: ResultInput): string {
  const ext = new xdr.TransactionResultExt(0);
  if (innerHash) {
    const innerResult =
      code === "tx_success"
        ? xdr.InnerTransactionResultResult.txSuccess(opResults)
        : code === "tx_failed"
          ? xdr.InnerTransactionResultResult.txFailed(opResults)
          : INNER_RESULTS[code]();
    const pair = new xdr.InnerTransactionResultPair({
      transactionHash: innerHash,
      result: new xdr.InnerTransactionResult({ feeCharged: int64(0n), result: innerResult, ext: new xdr.InnerTransactionResultExt(0) }),
    });
    const result =
      code === "tx_success" ? xdr.TransactionResultResult.txFeeBumpInnerSuccess(pair) : xdr.TransactionResultResult.txFeeBumpInnerFailed(pair);
    return new xdr.TransactionResult({ feeCharged: int64(feeCharged), result, ext }).toXDR("base64");
  }
  const result =
    code === "tx_success"
      ? xdr.TransactionResultResult.txSuccess(opResults)
      : code === "tx_failed"
        ? xdr.TransactionResultResult.txFailed(opResults)
        : TX_RESULTS[code]();
  return new xdr.TransactionResult({ feeCharged: int64(feeCharged), result, ext }).toXDR("base64");
}

/** Base64 `TransactionMeta` v2 without ledger-entry changes: valid XDR, one `OperationMeta` per operation. */
export function transactionMetaXdr(opCount: number): string {
  const operations = Array.from({ length: opCount }, () => new xdr.OperationMeta({ changes: [] }));
  return new xdr.TransactionMeta(2, new xdr.TransactionMetaV2({ txChangesBefore: [], operations, txChangesAfter: [] })).toXDR("base64");
}

/** An empty `LedgerEntryChanges`: the local network keeps no ledger entries to report. */
export const EMPTY_FEE_META_XDR = "AAAAAA==";
