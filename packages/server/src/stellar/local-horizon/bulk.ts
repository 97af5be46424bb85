import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { Account, Asset, hash, Keypair, type Memo, Operation, TimeoutInfinite, TransactionBuilder, xdr } from "@stellar/stellar-sdk";
import { fastSigner, sha256 } from "./crypto.js";
import { accountRef, assetRef, memoView } from "./decode.js";
import { formatStroops, parseStroops } from "./format.js";
import type { LocalNetwork } from "./network.js";
import { LocalHorizonError } from "./problems.js";
import { BASE_FEE } from "./state.js";
import type { DecodedTx, DecoratedSignature, OpSpec } from "./types.js";

export interface GeneratePaymentsOptions {
  /** Paying account; it must exist and hold the funds. Default: a new account funded with exactly enough lumens. */
  from?: Keypair;
  /** Amount of each payment, default "1". */
  amount?: string;
  /** Default: lumens. A credit asset needs a `from` that issues or holds it. */
  asset?: Asset;
  /** Memo of the i-th payment (from 0); default none. */
  memo?: (i: number) => Memo;
  /** Whether the i-th payment succeeds; the others are recorded as failed transactions. Default: all do. */
  successful?: (i: number) => boolean;
  /** Transactions per ledger, default 100. */
  perLedger?: number;
}

export interface GeneratedPayments {
  from: string;
  count: number;
  /** Paging tokens of the first and last payment operation, "" when count is 0. */
  firstPagingToken: string;
  lastPagingToken: string;
}

// ENVELOPE_TYPE_TX: prefixes a v1 transaction in its signature payload and in its envelope.
const ENVELOPE_TYPE_TX = Buffer.from([0, 0, 0, 2]);
// The XDR of a one-signature array (count 1) and of a signature's length (64).
const ONE = Buffer.from([0, 0, 0, 1]);
const SIXTY_FOUR = Buffer.from([0, 0, 0, 64]);

/** A v1 `TransactionEnvelope` with one signature, written directly: same bytes as the SDK's `toXDR`, without a second encode. */
const envelopeXdr = (body: Buffer, signature: DecoratedSignature) =>
  Buffer.concat([ENVELOPE_TYPE_TX, body, ONE, signature.hint, SIXTY_FOUR, signature.signature]).toString("base64");

/**
 * Records `count` one-payment transactions to `to`. Each is a real, signed v1 envelope: one SDK-built template
 * whose sequence number and memo change per payment, hashed and signed with node:crypto (the SDK's pure-JS
 * signer costs ~0.5 ms a signature, too slow for 50 000). The event loop gets a turn after every ledger.
 */
export async function generatePayments(
  network: LocalNetwork,
  fund: (account: string, amount: string) => Promise<unknown>,
  to: string,
  count: number,
  options: GeneratePaymentsOptions = {},
): Promise<GeneratedPayments> {
  const { amount = "1", asset = Asset.native(), memo, successful = () => true, perLedger = 100 } = options;
  if (!Number.isSafeInteger(count) || count < 0) throw new TypeError("count must be a non-negative integer");
  if (!Number.isSafeInteger(perLedger) || perLedger < 1) throw new TypeError("perLedger must be a positive integer");
  const stroops = parseStroops(amount);
  let from = options.from;
  if (!from) {
    if (!asset.isNative()) throw new TypeError("generatePayments: pass `from` to send a credit asset");
    from = Keypair.random();
    await fund(from.publicKey(), formatStroops((stroops + BASE_FEE) * BigInt(count)));
  }
  const senderId = from.publicKey();
  // Looked up on every use: applying a transaction replaces the account object.
  const sequenceOf = () => {
    const account = network.state.accounts.get(senderId);
    if (!account) throw new TypeError(`generatePayments: account ${senderId} does not exist`);
    return account.sequence;
  };

  const passphrase = network.options.networkPassphrase;
  const template = new TransactionBuilder(new Account(senderId, sequenceOf().toString()), { fee: BASE_FEE.toString(), networkPassphrase: passphrase })
    .addOperation(Operation.payment({ destination: to, asset, amount }))
    .setTimeout(TimeoutInfinite)
    .build();
  const body = template.toEnvelope().v1().tx();
  const payloadPrefix = Buffer.concat([hash(Buffer.from(passphrase)), ENVELOPE_TYPE_TX]);
  const sign = fastSigner(from);
  const op: OpSpec = { source: null, type: "payment", to: accountRef(to), asset: assetRef(asset), amount: stroops };

  let first = "";
  let last = "";
  for (let i = 0; i < count; i++) {
    const sequence = sequenceOf() + 1n;
    const txMemo = memo?.(i);
    body.seqNum(new xdr.Int64(sequence));
    body.memo(txMemo ? txMemo.toXDRObject() : xdr.Memo.memoNone());
    const bodyXdr = body.toXDR();
    const hashBytes = sha256(payloadPrefix, bodyXdr);
    const signature = sign(hashBytes);
    const tx: DecodedTx = {
      envelopeXdr: envelopeXdr(bodyXdr, signature),
      hash: hashBytes.toString("hex"),
      hashBytes,
      source: { account: senderId },
      sequence,
      fee: BASE_FEE,
      memo: txMemo ? memoView(txMemo) : { type: "none" },
      timeBounds: { min: 0n, max: 0n },
      signatures: [signature],
      ops: [op],
      feeBump: null,
    };
    const outcome = network.include(tx, { trustSignatures: true, forceFailure: !successful(i) });
    if (outcome.kind === "rejected") throw new LocalHorizonError(outcome.problem);
    last = outcome.row.ops[0]!.id.toString();
    if (i === 0) first = last;
    if ((i + 1) % perLedger === 0 || i === count - 1) {
      // Closed here even with a ledger timer, so generation does not wait for it.
      network.chain.close();
      await yieldToEventLoop();
    }
  }
  return { from: senderId, count, firstPagingToken: first, lastPagingToken: last };
}
