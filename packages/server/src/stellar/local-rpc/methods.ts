import { xdr } from "@stellar/stellar-sdk";
import { bound, pageOf } from "../local-horizon/history.js";
import { type LocalNetwork, PROTOCOL_VERSION } from "../local-horizon/network.js";
import { isoSeconds, recordHash } from "../local-horizon/records.js";
import type { Ledger, TxRow } from "../local-horizon/types.js";
import { EventLog, eventId, eventPosition, type EventRecord, ledgerEnd, toid, transactionOrder } from "./event-log.js";
import { createEventBuilder } from "./events.js";
import { eventMatches, parseEventsRequest } from "./filters.js";
import { invalidParams, type Method, type Params, RPC_ERRORS, RpcError } from "./jsonrpc.js";
import { ledgerXdr, unixSeconds } from "./ledger.js";

// stellar-rpc's defaults: how many ledgers one getEvents request scans, and getTransactions' page sizes.
const LEDGER_SCAN_LIMIT = 10_000;
const DEFAULT_TRANSACTIONS_LIMIT = 50;
const MAX_TRANSACTIONS_LIMIT = 200;

type Json = Record<string, unknown>;

/** `xdrFormat`: base64 (the default) only; RPC's JSON rendering of XDR is not reproduced here. */
function checkFormat(params: Params): void {
  const format = params.string("xdrFormat") ?? "";
  if (format === "json") throw invalidParams("xdrFormat 'json' is not supported by the local network's RPC; leave it out for base64");
  if (format !== "" && format !== "base64") throw invalidParams(`got '${format}': expected base64, json for optional 'xdrFormat'`);
}

/** The Stellar RPC methods Lumenpay uses, answered from the local network's chain in stellar-rpc's shapes. */
export function createRpcMethods(network: LocalNetwork, options: { retentionLedgers?: number } = {}): Map<string, Method> {
  const { chain, history } = network;
  const buildEvents = createEventBuilder(network.options.networkPassphrase);
  const log = new EventLog(history, buildEvents);

  /** Every ledger from the genesis, or the last `retentionLedgers` (as stellar-rpc's retention window trims them). */
  const retention = () => {
    const latest = chain.latest;
    const sequence = Math.max(chain.genesis.sequence, latest.sequence - (options.retentionLedgers ?? Infinity) + 1);
    // A replayed journal passes over ledgers that closed empty: such a ledger closed when the next known one did, or before.
    let known = sequence;
    while (chain.closeTimeOf(known) === undefined) known++;
    return { latest, oldest: sequence === chain.genesis.sequence ? chain.genesis : { sequence, closedAt: chain.closeTimeOf(known)! } };
  };
  const closeTime = (ledger: Ledger) => String(unixSeconds(ledger.closedAt));

  const transactionsOf = (sequence: number): TxRow[] => {
    const key = (row: TxRow) => row.id;
    const rows = history.transactions;
    return rows.slice(bound(rows, key, toid(sequence, 0, 0), false), bound(rows, key, toid(sequence + 1, 0, 0), false));
  };

  /** What getTransaction and getTransactions say of a transaction, before the ledger's close time. */
  const transactionDetails = (row: TxRow, txHash: string): Json => {
    const events = buildEvents(row);
    const fee = new xdr.TransactionEvent({ stage: xdr.TransactionEventStage.transactionEventStageBeforeAllTxes(), event: events.fee });
    return {
      status: row.successful ? "SUCCESS" : "FAILED",
      txHash,
      applicationOrder: transactionOrder(row),
      feeBump: row.tx.feeBump !== null,
      envelopeXdr: row.tx.envelopeXdr,
      resultXdr: row.resultXdr,
      resultMetaXdr: row.resultMetaXdr,
      events: {
        transactionEventsXdr: [fee.toXDR("base64")],
        // A failed transaction has no operation events, and stellar-rpc leaves the empty list out.
        ...(events.operations.length > 0 && { contractEventsXdr: events.operations.map((list) => list.map((event) => event.toXDR("base64"))) }),
      },
      ledger: row.ledger.sequence,
    };
  };

  const eventJson = (event: EventRecord): Json => ({
    type: "contract",
    ledger: event.row.ledger.sequence,
    ledgerClosedAt: isoSeconds(event.row.ledger.closedAt),
    contractId: event.contractId,
    id: eventId(event.position),
    transactionIndex: event.transactionIndex,
    operationIndex: event.operationIndex,
    inSuccessfulContractCall: event.row.successful,
    topic: event.topic,
    value: event.value,
    txHash: recordHash(event.row),
  });

  const getEvents: Method = (params) => {
    const request = parseEventsRequest(params);
    checkFormat(params);
    const { latest, oldest } = retention();
    // A cursor's own ledger is checked, so that the cursor of a search that ended at the latest ledger stays valid.
    const startLedger = request.cursor === undefined ? request.startLedger : Number(request.cursor >> 64n);
    if (startLedger < oldest.sequence || startLedger > latest.sequence) {
      throw new RpcError(RPC_ERRORS.invalidRequest, `startLedger must be within the ledger range: ${oldest.sequence} - ${latest.sequence}`);
    }
    const start = request.cursor === undefined ? eventPosition(startLedger, 0, 0, 0) : request.cursor + 1n;
    const endLedger = Math.min(latest.sequence + 1, startLedger + LEDGER_SCAN_LIMIT, request.endLedger || Infinity);
    const end = eventPosition(endLedger, 0, 0, 0);
    const events = log.events;
    const found: EventRecord[] = [];
    for (let i = bound(events, (event) => event.position, start, false); i < events.length && found.length < request.limit; i++) {
      const event = events[i]!;
      if (event.position >= end) break;
      if (eventMatches(request.filters, event)) found.push(event);
    }
    return {
      events: found.map(eventJson),
      latestLedger: latest.sequence,
      oldestLedger: oldest.sequence,
      latestLedgerCloseTime: closeTime(latest),
      oldestLedgerCloseTime: closeTime(oldest),
      // A full page continues after its last event; a short one after the window it searched.
      cursor: eventId(found.length === request.limit ? found.at(-1)!.position : ledgerEnd(endLedger - 1)),
    };
  };

  const getTransaction: Method = (params) => {
    checkFormat(params);
    const hash = params.string("hash") ?? "";
    if (hash.length !== 64) throw invalidParams(`unexpected hash length (${hash.length})`);
    if (!/^[0-9a-fA-F]{64}$/.test(hash)) throw invalidParams("incorrect hash: not hexadecimal");
    const { latest, oldest } = retention();
    const response = {
      latestLedger: latest.sequence,
      latestLedgerCloseTime: closeTime(latest),
      oldestLedger: oldest.sequence,
      oldestLedgerCloseTime: closeTime(oldest),
    };
    const row = history.transaction(hash.toLowerCase());
    if (!row) return { ...response, status: "NOT_FOUND", txHash: hash };
    return { ...response, ...transactionDetails(row, hash), createdAt: closeTime(row.ledger) };
  };

  const getTransactions: Method = (params) => {
    checkFormat(params);
    const startLedger = params.uint32("startLedger");
    const pagination = params.object("pagination");
    const cursor = pagination?.string("cursor") ?? "";
    const limit = pagination?.uint32("limit") || DEFAULT_TRANSACTIONS_LIMIT;
    const { latest, oldest } = retention();
    const invalid = (message: string) => new RpcError(RPC_ERRORS.invalidRequest, message);
    if (cursor !== "" && startLedger !== 0) throw invalid(`startLedger (${startLedger}) and cursor (${cursor}) cannot both be set`);
    if (cursor === "" && (startLedger < oldest.sequence || startLedger > latest.sequence)) {
      throw invalid(`start ledger (${startLedger}) must be between the oldest ledger: ${oldest.sequence} and the latest ledger: ${latest.sequence} for this rpc instance`);
    }
    if (limit > MAX_TRANSACTIONS_LIMIT) throw invalid(`limit must not exceed ${MAX_TRANSACTIONS_LIMIT}`);
    if (cursor !== "" && !/^\d{1,19}$/.test(cursor)) throw invalidParams(`invalid cursor "${cursor}": not a TOID`);
    // A cursor names a transaction (TOID with operation 1); the page starts with the transaction after it.
    const after = cursor === "" ? toid(startLedger, 0, 0) - 1n : (BigInt(cursor) | 0xfffn);
    const rows = pageOf(history.transactions, (row) => row.id, { cursor: after, order: "asc", limit });
    // A full page continues after its last transaction; a short one after the latest ledger's last (orders count from 1).
    const next = rows.length === limit ? rows.at(-1)!.id | 1n : toid(latest.sequence, transactionsOf(latest.sequence).length, 1);
    return {
      transactions: rows.map((row) => ({ ...transactionDetails(row, recordHash(row)), createdAt: unixSeconds(row.ledger.closedAt) })),
      latestLedger: latest.sequence,
      latestLedgerCloseTimestamp: unixSeconds(latest.closedAt),
      oldestLedger: oldest.sequence,
      oldestLedgerCloseTimestamp: unixSeconds(oldest.closedAt),
      cursor: next.toString(),
    };
  };

  return new Map<string, Method>([
    [
      "getHealth",
      () => {
        const { latest, oldest } = retention();
        return {
          status: "healthy",
          latestLedger: latest.sequence,
          latestLedgerCloseTime: closeTime(latest),
          oldestLedger: oldest.sequence,
          oldestLedgerCloseTime: closeTime(oldest),
          ledgerRetentionWindow: latest.sequence - oldest.sequence + 1,
        };
      },
    ],
    [
      "getLatestLedger",
      () => {
        const { latest } = retention();
        const { hash, headerXdr, metadataXdr } = ledgerXdr(latest, transactionsOf(latest.sequence));
        return { id: hash, protocolVersion: PROTOCOL_VERSION, sequence: latest.sequence, closeTime: closeTime(latest), headerXdr, metadataXdr };
      },
    ],
    ["getNetwork", () => ({ passphrase: network.options.networkPassphrase, protocolVersion: PROTOCOL_VERSION })],
    ["getEvents", getEvents],
    ["getTransaction", getTransaction],
    ["getTransactions", getTransactions],
  ]);
}
