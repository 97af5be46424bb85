import type { History } from "./history.js";
import { transactionMetaXdr } from "./results.js";
import type { Applied } from "./state.js";
import type { DecodedTx, Ledger, OpRow, TxRow } from "./types.js";

/** A TOID keeps 20 bits for the transaction's order in its ledger. */
export const MAX_TXS_PER_LEDGER = (1 << 20) - 1;

interface OpenLedger {
  ledger: Ledger;
  txs: TxRow[];
  closed: Promise<void>;
  resolveClosed: () => void;
}

function openLedger(sequence: number, now: Date): OpenLedger {
  let resolveClosed = () => {};
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  return { ledger: { sequence, closedAt: now }, txs: [], closed, resolveClosed };
}

/** The ledger sequence: transactions join the open ledger and become visible when it closes. */
export class Chain {
  private open: OpenLedger;
  private readonly closedAt = new Map<number, Date>();
  // Meta depends only on the operation count here; bulk generation would rebuild it for every transaction.
  private readonly metaByOpCount = new Map<number, string>();
  private lastClosed: Ledger;

  constructor(
    private readonly history: History,
    private readonly clock: () => Date,
    /** The first ledger, closed when the network starts. */
    readonly genesis: Ledger,
    /** Told of every ledger as it closes, before its records become visible (the journal writes it here). */
    private readonly onClose?: (ledger: Ledger, txs: readonly TxRow[]) => void,
  ) {
    this.lastClosed = genesis;
    this.closedAt.set(genesis.sequence, genesis.closedAt);
    this.open = openLedger(genesis.sequence + 1, clock());
  }

  /** The last closed ledger. */
  get latest(): Ledger {
    return this.lastClosed;
  }

  get openSequence(): number {
    return this.open.ledger.sequence;
  }

  /** When `sequence` closed; undefined while it is still open. */
  closeTimeOf(sequence: number): Date | undefined {
    return this.closedAt.get(sequence);
  }

  /** Adds an applied transaction to the open ledger, numbering it and its operations and effects. */
  add(tx: DecodedTx, applied: Applied): TxRow {
    if (this.open.txs.length >= MAX_TXS_PER_LEDGER) this.close();
    const { ledger, txs } = this.open;
    const row: TxRow = {
      id: (BigInt(ledger.sequence) << 32n) | (BigInt(txs.length + 1) << 12n),
      ledger,
      tx,
      successful: applied.successful,
      feeCharged: applied.feeCharged,
      resultXdr: applied.resultXdr,
      resultMetaXdr: this.metaFor(tx.ops.length),
      ops: [],
    };
    row.ops = applied.ops.map((outcome, i): OpRow => {
      const op: OpRow = {
        id: row.id | BigInt(i + 1),
        tx: row,
        spec: outcome.spec,
        source: outcome.source,
        sourceAmount: outcome.sourceAmount,
        amount: outcome.amount,
        effects: [],
      };
      // A failed transaction changed nothing, so it has no effects.
      if (applied.successful) op.effects = outcome.effects.map((effect, j) => ({ ...effect, op, index: j + 1 }));
      return op;
    });
    txs.push(row);
    return row;
  }

  private metaFor(opCount: number): string {
    let meta = this.metaByOpCount.get(opCount);
    if (meta === undefined) this.metaByOpCount.set(opCount, (meta = transactionMetaXdr(opCount)));
    return meta;
  }

  /** Closes the open ledger: its records become visible and whoever waits on it is answered. `closedAt` is for replay. */
  close(closedAt = this.clock()): void {
    const closing = this.open;
    closing.ledger.closedAt = closedAt;
    this.onClose?.(closing.ledger, closing.txs);
    this.closedAt.set(closing.ledger.sequence, closing.ledger.closedAt);
    this.lastClosed = closing.ledger;
    this.open = openLedger(closing.ledger.sequence + 1, closing.ledger.closedAt);
    this.history.publish(closing.txs);
    closing.resolveClosed();
  }

  /** Renumbers the (empty) open ledger to `sequence`, passing over ledgers that closed empty: replay needs no loop of empty closes. */
  skipTo(sequence: number): void {
    if (this.open.txs.length > 0 || sequence < this.open.ledger.sequence) {
      throw new RangeError(`cannot move the open ledger ${this.open.ledger.sequence} to ${sequence}`);
    }
    this.open.ledger.sequence = sequence;
  }

  /** Resolves once the ledger open now has closed. */
  whenClosed(): Promise<void> {
    return this.open.closed;
  }
}
