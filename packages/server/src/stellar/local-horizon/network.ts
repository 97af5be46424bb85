import { type FeeBumpTransaction, Keypair, type Transaction } from "@stellar/stellar-sdk";
import { Chain } from "./chain.js";
import { SignatureVerifier } from "./crypto.js";
import { decodeTransaction, MalformedEnvelopeError } from "./decode.js";
import { History } from "./history.js";
import { type Problem, transactionFailed, transactionMalformed } from "./problems.js";
import { LedgerState, newAccount } from "./state.js";
import type { DecodedTx, Ledger, TxRow } from "./types.js";

/** The protocol the local network follows (CAP-67 unified events arrived in 23); Horizon and RPC announce it. */
export const PROTOCOL_VERSION = 23;

/** All 100 billion lumens, held by the root account as in a fresh standalone network. */
export const TOTAL_STROOPS = 100_000_000_000n * 10_000_000n;

export interface NetworkOptions {
  networkPassphrase: string;
  clock: () => Date;
  /** Close a ledger on this interval; without it every submission closes its own ledger at once. */
  ledgerCloseMs?: number;
  /** Called as each ledger closes, before its records are published. */
  onLedgerClosed?: (ledger: Ledger, txs: readonly TxRow[]) => void;
}

export type Submission =
  | { kind: "rejected"; problem: Problem }
  /** In a ledger; `problem` is set when it failed (`tx_failed`), as Horizon still answers 400 then. */
  | { kind: "included"; row: TxRow; problem: Problem | null };

export interface IncludeOptions {
  forceFailure?: boolean;
  trustSignatures?: boolean;
  /** Unix seconds to check time bounds against instead of the clock (replaying a journal). */
  closeTime?: bigint;
}

/** The local network: accounts, ledgers and published history, without any HTTP. */
export class LocalNetwork {
  readonly history = new History();
  readonly state = new LedgerState(new SignatureVerifier());
  readonly chain: Chain;
  readonly root: Keypair;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(readonly options: NetworkOptions) {
    this.root = Keypair.master(options.networkPassphrase);
    // The root account is created in the genesis ledger with sequence number 0.
    this.state.accounts.set(this.root.publicKey(), { ...newAccount(this.root.publicKey(), TOTAL_STROOPS, 1), sequence: 0n });
    this.chain = new Chain(this.history, options.clock, { sequence: 1, closedAt: options.clock() }, options.onLedgerClosed);
    if (options.ledgerCloseMs !== undefined) {
      this.timer = setInterval(() => this.chain.close(), options.ledgerCloseMs);
      this.timer.unref();
    }
  }

  /** Applies a transaction to the open ledger; a rejected one never reaches it. */
  include(tx: DecodedTx, options: IncludeOptions = {}): Submission {
    const verdict = this.state.apply(tx, {
      ledger: this.chain.openSequence,
      closeTime: options.closeTime ?? BigInt(Math.floor(this.options.clock().getTime() / 1000)),
      forceFailure: options.forceFailure ?? false,
      trustSignatures: options.trustSignatures ?? false,
    });
    if (verdict.kind === "rejected") return { kind: "rejected", problem: transactionFailed(tx.envelopeXdr, verdict.resultXdr, verdict.resultCodes) };
    const row = this.chain.add(tx, verdict);
    return { kind: "included", row, problem: verdict.successful ? null : transactionFailed(tx.envelopeXdr, verdict.resultXdr, verdict.resultCodes) };
  }

  /** What `POST /transactions` does: answers once the transaction's ledger has closed. */
  async submit(input: Transaction | FeeBumpTransaction | string, options: IncludeOptions = {}): Promise<Submission> {
    let tx: DecodedTx;
    try {
      tx = decodeTransaction(input, this.options.networkPassphrase);
    } catch (error) {
      if (error instanceof MalformedEnvelopeError) return { kind: "rejected", problem: transactionMalformed(typeof input === "string" ? input : "") };
      throw error;
    }
    const outcome = this.include(tx, options);
    if (outcome.kind === "included") await this.settle();
    return outcome;
  }

  /** Waits for the open ledger to close; without a ledger timer, closes it now. */
  async settle(): Promise<void> {
    if (this.timer) await this.chain.whenClosed();
    else this.chain.close();
  }

  /** Stops the ledger timer, closing the open ledger so that no submission is left waiting. */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.chain.close();
  }
}
