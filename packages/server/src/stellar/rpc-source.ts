import client from "prom-client";
import { estimateLedgerBefore, type LedgerSource, type Scanned } from "./ledger-source.js";
import { createRpcClient, type GetEventsRequest, type RpcEvent, type RpcTransaction } from "./rpc-client.js";
import { eventFilters, eventRecipient, everyCredit, fromAssetContract, getEventsCallsNeeded, incomingFromEvent } from "./rpc-operations.js";

export interface RpcSourceOptions {
  url: string;
  networkPassphrase: string;
  registry: client.Registry;
  /**
   * The most getEvents requests a range may take naming accounts (25 topic patterns to a request, two per
   * account) before the follower reads every transfer and mint on the network instead and matches
   * locally; default 4 (50 accounts).
   */
  maxNamedRequests?: number;
}

export const DEFAULT_MAX_NAMED_REQUESTS = 4;
/** Events per getEvents page (stellar-rpc allows up to 10 000). */
const PAGE_LIMIT = 1_000;
/** Concurrent getTransaction calls. */
const TRANSACTION_FETCHES = 8;

/**
 * The chain as Stellar RPC's CAP-67 events show it: per range, getEvents (accounts named in as few
 * requests as the filter limits allow, or every credit on the network past `maxNamedRequests`), then
 * each paying transaction once (getTransaction), read by rpc-operations.ts.
 */
export function createRpcSource(options: RpcSourceOptions): LedgerSource {
  const { networkPassphrase } = options;
  const rpc = createRpcClient({ url: options.url });
  const calls = new client.Counter({
    name: "stellar_rpc_requests_total",
    help: "Requests made to Stellar RPC, by method.",
    labelNames: ["method"],
    registers: [options.registry],
  });

  const getEvents = (request: GetEventsRequest) => {
    calls.inc({ method: "getEvents" });
    return rpc.getEvents(request);
  };

  async function transactions(hashes: string[]): Promise<Map<string, RpcTransaction>> {
    const found = new Map<string, RpcTransaction>();
    for (let i = 0; i < hashes.length; i += TRANSACTION_FETCHES) {
      await Promise.all(
        hashes.slice(i, i + TRANSACTION_FETCHES).map(async (hash) => {
          calls.inc({ method: "getTransaction" });
          const tx = await rpc.getTransaction(hash);
          if (tx.status === "NOT_FOUND") throw new Error(`Stellar RPC has an event of transaction ${hash} but not the transaction`);
          found.set(hash, tx);
        }),
      );
    }
    return found;
  }

  return {
    name: "rpc",
    async window() {
      calls.inc({ method: "getHealth" });
      const h = await rpc.getHealth();
      // stellar-rpc before 23 leaves the close times out: then ledgers count as the network's pace, one each 5 s.
      const latestClose = h.latestLedgerCloseTime ? Number(h.latestLedgerCloseTime) * 1000 : Date.now();
      const oldestClose = h.oldestLedgerCloseTime ? Number(h.oldestLedgerCloseTime) * 1000 : latestClose - (h.latestLedger - h.oldestLedger) * 5_000;
      return { latest: h.latestLedger, oldest: h.oldestLedger, latestClose, oldestClose };
    },

    async scan(accounts, from, to) {
      const events = new Map<string, RpcEvent>();
      // No asset named: every asset's events, so that a payment in an asset the merchant does not accept is listed as unmatched, as from Horizon.
      // Past a few requests per range, reading every credit on the network once costs less than naming each account.
      const named = getEventsCallsNeeded(accounts.length, []) <= (options.maxNamedRequests ?? DEFAULT_MAX_NAMED_REQUESTS);
      for (const filters of named ? eventFilters(accounts, [], networkPassphrase) : everyCredit()) {
        let page = await getEvents({ startLedger: from, endLedger: to + 1, filters, limit: PAGE_LIMIT });
        for (;;) {
          const inRange = page.events.filter((e) => e.ledger <= to);
          for (const event of inRange) events.set(event.id, event);
          if (page.events.length < PAGE_LIMIT || inRange.length < page.events.length) break;
          page = await getEvents({ filters, cursor: page.cursor, limit: PAGE_LIMIT });
        }
      }
      const watched = new Set(accounts);
      // Event ids are fixed-width: as strings they sort in ledger order.
      const relevant = [...events.values()]
        .filter((e) => watched.has(eventRecipient(e) ?? "") && fromAssetContract(e, networkPassphrase))
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      const fetched = await transactions([...new Set(relevant.map((e) => e.txHash))]);
      const scanned: Scanned = new Map();
      for (const event of relevant) {
        const account = eventRecipient(event)!;
        const op = incomingFromEvent(event, fetched.get(event.txHash)!, account, networkPassphrase);
        const ops = scanned.get(account);
        if (ops) ops.push(op);
        else scanned.set(account, [op]);
      }
      return scanned;
    },

    // RPC cannot search ledgers by time here (the local network has no getLedgers): an estimate with margin.
    ledgersBefore: async (accounts, window) => new Map(accounts.map(({ account, since }) => [account, estimateLedgerBefore(since.getTime(), window)])),

    close: () => rpc.close(),
  };
}
