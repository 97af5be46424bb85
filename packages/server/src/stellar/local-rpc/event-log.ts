import { StrKey, type xdr } from "@stellar/stellar-sdk";
import type { History } from "../local-horizon/history.js";
import type { TxRow } from "../local-horizon/types.js";
import type { EventBuilder } from "./events.js";

const MAX_INT64 = 9_223_372_036_854_775_807n;
const MAX_UINT32 = 0xffff_ffffn;

/** TOID (SEP-35): ledger << 32 | transaction order << 12 | operation index. */
export const toid = (ledger: number, tx: number, op: number) => (BigInt(ledger) << 32n) | (BigInt(tx) << 12n) | BigInt(op);

/** A transaction's order in its ledger (from 1), kept in its TOID. */
export const transactionOrder = (row: TxRow) => Number((row.id >> 12n) & 0xfffffn);

/**
 * Where an event sits, as stellar-rpc orders and pages them: its TOID, then its index there, in one number
 * (TOID << 32 | index). Fee events are charged before any transaction applies: transaction order 0, and
 * their index counts the ledger's transactions. Operation events have the transaction's order, the
 * operation's index from 0, and their index within the operation.
 */
export const eventPosition = (ledger: number, tx: number, op: number, index: number) => (toid(ledger, tx, op) << 32n) | BigInt(index);

/** The last position of `ledger`: where a search that found fewer events than asked for says it stopped. */
export const ledgerEnd = (ledger: number) => eventPosition(ledger + 1, 0, 0, 0) - 1n;

/** RPC's event id, also its paging cursor: the TOID in 19 digits, a hyphen, the index in 10. */
export const eventId = (position: bigint) =>
  `${(position >> 32n).toString().padStart(19, "0")}-${(position & MAX_UINT32).toString().padStart(10, "0")}`;

/** The position an event id names; undefined when it is not one. */
export function parseEventId(text: string): bigint | undefined {
  const match = /^(\d{1,19})-(\d{1,10})$/.exec(text);
  if (!match) return undefined;
  const [toidPart, index] = [BigInt(match[1]!), BigInt(match[2]!)];
  return toidPart > MAX_INT64 || index > MAX_UINT32 ? undefined : (toidPart << 32n) | index;
}

export interface EventRecord {
  position: bigint;
  row: TxRow;
  transactionIndex: number;
  operationIndex: number;
  /** The emitting contract's C… address. */
  contractId: string;
  /** Topics and data as base64 ScVal XDR: how they are served and how filters compare them. */
  topic: string[];
  value: string;
}

function record(position: bigint, row: TxRow, transactionIndex: number, operationIndex: number, event: xdr.ContractEvent): EventRecord {
  const body = event.body().v0();
  return {
    position,
    row,
    transactionIndex,
    operationIndex,
    // A Buffer at run time, whatever the SDK's Hash type says (see events.ts).
    contractId: StrKey.encodeContract(event.contractId() as unknown as Buffer),
    topic: body.topics().map((topic) => topic.toXDR("base64")),
    value: body.data().toXDR("base64"),
  };
}

/** The events of every published ledger, in position order, derived from the transactions History publishes. */
export class EventLog {
  private readonly records: EventRecord[] = [];
  /** How many of History's transactions are derived already. */
  private derived = 0;

  constructor(
    private readonly history: History,
    private readonly build: EventBuilder,
  ) {}

  /** Derived on first need, so that a network nobody asks for events pays nothing; History publishes whole ledgers. */
  get events(): readonly EventRecord[] {
    const txs = this.history.transactions;
    while (this.derived < txs.length) {
      const sequence = txs[this.derived]!.ledger.sequence;
      let end = this.derived;
      while (end < txs.length && txs[end]!.ledger.sequence === sequence) end++;
      this.appendLedger(sequence, txs.slice(this.derived, end));
      this.derived = end;
    }
    return this.records;
  }

  /** One ledger: every transaction's fee first, then each transaction's operation events. */
  private appendLedger(sequence: number, rows: readonly TxRow[]): void {
    const built = rows.map((row) => ({ row, events: this.build(row) }));
    built.forEach(({ row, events }, i) => this.records.push(record(eventPosition(sequence, 0, 0, i), row, 0, 0, events.fee)));
    for (const { row, events } of built) {
      const order = transactionOrder(row);
      events.operations.forEach((opEvents, op) =>
        opEvents.forEach((event, i) => this.records.push(record(eventPosition(sequence, order, op, i), row, order, op, event))),
      );
    }
  }
}
