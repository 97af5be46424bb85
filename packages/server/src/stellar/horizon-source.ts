import http from "node:http";
import https from "node:https";
import { Horizon, NotFoundError } from "@stellar/stellar-sdk";
import { asPaymentRecords, incomingOperation, type HorizonPaymentRecord } from "./incoming.js";
import { reachBackToken, type IngestLog } from "./ingest-account.js";
import type { LedgerSource, Scanned } from "./ledger-source.js";

export interface HorizonSourceOptions {
  url: string;
  log: Pick<IngestLog, "warn">;
  /** Up to this many accounts are read one by one; more, through the network's whole payment list. Default 10. */
  maxNamedAccounts?: number;
  /** Request timeout; default 30 s. */
  timeoutMs?: number;
}

/** Horizon's largest page. */
const PAGE_LIMIT = 200;
export const DEFAULT_MAX_NAMED_ACCOUNTS = 10;
/** New accounts' start ledgers searched concurrently (one request each, or more for a busy account). */
const SEARCHES_AT_ONCE = 8;

interface HorizonRoot {
  history_latest_ledger: number;
  history_latest_ledger_closed_at: string;
  history_elder_ledger: number;
}

/**
 * An SDK client of the Horizon at `url` (http:// only ever because the operator configured it) with
 * request timeout `timeoutMs`, and `close` for its connections. Its requests get keep-alive agents of
 * their own, away from the global ones the SDK's EventSource streams use: axios sends them through
 * follow-redirects, whose request timeout leaves `socket.destroy` listening for the socket's "timeout"
 * event after the request is done, and a stream reusing such a socket from the global agent (whose
 * sockets time out after 5 s idle) was destroyed by the first 5 s without a payment ("payment stream
 * failed: connection lost").
 */
export function horizonServer(url: string, timeoutMs: number): { server: Horizon.Server; close: () => void } {
  const server = new Horizon.Server(url, { allowHttp: new URL(url).protocol === "http:" });
  server.httpClient.defaults.timeout = timeoutMs;
  const agentOptions = { keepAlive: true, timeout: 5_000 };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  // The client is an axios instance (the SDK's build with axios), though its type leaves these options out.
  Object.assign(server.httpClient.defaults, { httpAgent: agents.http, httpsAgent: agents.https });
  return {
    server,
    close: () => {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/**
 * The chain as Horizon's payment lists show it, read by ledger range: each account's own list for a
 * few accounts, the network's list (`/payments`) filtered locally for more — one request per 200
 * payments on the network, however many accounts are watched, instead of a stream per account.
 */
export function createHorizonSource(options: HorizonSourceOptions): LedgerSource {
  const { server, close } = horizonServer(options.url, options.timeoutMs ?? 30_000);
  const never = new AbortController().signal;

  /** Records of `list` with ledgers `from` … `to`, page by page. */
  async function* inRange(list: ReturnType<Horizon.Server["payments"]>, from: number, to: number): AsyncGenerator<HorizonPaymentRecord> {
    // Paging tokens are TOIDs: the first of ledger L is L << 32.
    let page = await list.cursor(((BigInt(from) << 32n) - 1n).toString()).limit(PAGE_LIMIT).join("transactions").call();
    for (;;) {
      for (const record of asPaymentRecords(page.records)) {
        if (Number(BigInt(record.paging_token) >> 32n) > to) return;
        yield record;
      }
      if (page.records.length < PAGE_LIMIT) return;
      page = await page.next();
    }
  }

  return {
    name: "horizon",
    async window() {
      const root = (await server.httpClient.get(options.url)).data as HorizonRoot;
      const latestClose = Date.parse(root.history_latest_ledger_closed_at);
      // Horizon does not say when its oldest ledger closed; nothing here needs it (ledgersBefore searches exactly).
      return { latest: root.history_latest_ledger, oldest: root.history_elder_ledger, latestClose, oldestClose: latestClose };
    },

    async scan(accounts, from, to) {
      const scanned: Scanned = new Map();
      const add = (account: string, record: HorizonPaymentRecord) => {
        const ops = scanned.get(account);
        if (ops) ops.push(incomingOperation(record, account));
        else scanned.set(account, [incomingOperation(record, account)]);
      };
      if (accounts.length <= (options.maxNamedAccounts ?? DEFAULT_MAX_NAMED_ACCOUNTS)) {
        for (const account of accounts) for await (const record of inRange(server.payments().forAccount(account), from, to)) add(account, record);
        return scanned;
      }
      const watched = new Set(accounts);
      for await (const record of inRange(server.payments(), from, to)) {
        const recipient = record.to ?? record.account;
        if (recipient !== undefined && watched.has(recipient)) add(recipient, record);
      }
      return scanned;
    },

    // Exact: each account's own payments read back to the first one older than `since`, as Horizon ingestion's first start
    // does; one ledger earlier still, since that search may stop at the account's oldest payment, which counts.
    async ledgersBefore(accounts, window) {
      const found = new Map<string, number>();
      const search = async ({ account, since }: { account: string; since: Date }) => {
        try {
          found.set(account, Math.max(0, Number((await reachBackToken({ server, signal: never, log: options.log }, account, since)) >> 32n) - 1));
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error;
          // Not created yet: everything it will receive is after the latest ledger.
          found.set(account, window.latest);
        }
      };
      for (let i = 0; i < accounts.length; i += SEARCHES_AT_ONCE) await Promise.all(accounts.slice(i, i + SEARCHES_AT_ONCE).map(search));
      return found;
    },

    close: async () => close(),
  };
}
