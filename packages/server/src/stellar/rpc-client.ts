import { errors, Pool } from "undici";

/**
 * A minimal JSON-RPC 2.0 client for the Stellar RPC methods Lumenpay reads, over one keep-alive
 * undici pool. Not the SDK's `rpc.Server`: that goes through axios and hides the wire, and these
 * types are the wire shapes of the Stellar RPC API reference (test/fixtures/rpc-examples).
 */

/** The ledger window every answer reports (close times as strings of Unix seconds). */
export interface LedgerWindow {
  latestLedger: number;
  latestLedgerCloseTime: string;
  oldestLedger: number;
  oldestLedgerCloseTime: string;
}

export interface GetHealthResult extends Partial<LedgerWindow> {
  status: string;
  latestLedger: number;
  oldestLedger: number;
  ledgerRetentionWindow: number;
}

export interface GetLatestLedgerResult {
  /** Hex hash of the ledger header. */
  id: string;
  protocolVersion: number;
  sequence: number;
  closeTime?: string;
  headerXdr?: string;
  metadataXdr?: string;
}

export interface GetNetworkResult {
  passphrase: string;
  protocolVersion: number;
  friendbotUrl?: string;
}

/** One of a request's filters: an event matches if it matches every part of any one filter. */
export interface EventFilter {
  type?: "contract" | "system";
  contractIds?: string[];
  /** Patterns of base64 ScVals, `*` for any one segment and a trailing `**` for any rest; any one must match. */
  topics?: string[][];
}

/** A search from a ledger (`endLedger` exclusive), or the continuation after a cursor. */
export type GetEventsRequest = ({ startLedger: number; endLedger?: number } | { cursor: string }) & {
  filters: EventFilter[];
  limit?: number;
};

export interface RpcEvent {
  type: string;
  ledger: number;
  /** ISO 8601, at seconds. */
  ledgerClosedAt: string;
  contractId: string;
  /** `<TOID, 19 digits>-<index, 10 digits>`; also a cursor. */
  id: string;
  transactionIndex?: number;
  /** From 0. */
  operationIndex?: number;
  inSuccessfulContractCall: boolean;
  /** Base64 ScVals. */
  topic: string[];
  /** Base64 ScVal. */
  value: string;
  txHash: string;
}

export interface GetEventsResult extends Partial<LedgerWindow> {
  events: RpcEvent[];
  cursor: string;
  latestLedger: number;
  oldestLedger: number;
}

/** A transaction getTransaction found. */
export interface RpcTransaction {
  status: "SUCCESS" | "FAILED";
  txHash: string;
  /** Its order in the ledger, from 1. */
  applicationOrder: number;
  feeBump: boolean;
  envelopeXdr: string;
  resultXdr: string;
  resultMetaXdr: string;
  events?: { transactionEventsXdr?: string[]; contractEventsXdr?: string[][] };
  ledger: number;
  /** Close time of its ledger, a string of Unix seconds. */
  createdAt: string;
}

export type GetTransactionResult = LedgerWindow & (RpcTransaction | { status: "NOT_FOUND"; txHash: string });

/**
 * `rpc`: the server answered with a JSON-RPC error (`code`); `http`: a status other than 2xx (`status`);
 * `transport`: no answer (refused, reset, TLS, closed client); `timeout`; `aborted` by the caller's signal;
 * `invalid_response`: an answer that is not a JSON-RPC response.
 */
export type RpcErrorKind = "rpc" | "http" | "transport" | "timeout" | "aborted" | "invalid_response";

/** Every failure of a call. Messages name the server by its origin only: a URL may carry an API key in its path or query. */
export class RpcError extends Error {
  override name = "RpcError";
  constructor(
    readonly kind: RpcErrorKind,
    message: string,
    /** The JSON-RPC error code, for `rpc`. */
    readonly code?: number,
    /** The HTTP status, for `http`. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface RpcClient {
  getHealth(options?: CallOptions): Promise<GetHealthResult>;
  getLatestLedger(options?: CallOptions): Promise<GetLatestLedgerResult>;
  getNetwork(options?: CallOptions): Promise<GetNetworkResult>;
  getEvents(request: GetEventsRequest, options?: CallOptions): Promise<GetEventsResult>;
  getTransaction(hash: string, options?: CallOptions): Promise<GetTransactionResult>;
  /** Releases the connections, after the calls under way. */
  close(): Promise<void>;
}

export interface RpcClientOptions {
  /** http(s)://host[:port][/path][?query]; user:password in it is sent as Basic authorization. */
  url: string;
  /** Whole-call limit: connecting, sending, and reading the answer. */
  timeoutMs?: number;
  /** Extra headers, e.g. a provider's API key. */
  headers?: Record<string, string>;
}

const DEFAULT_TIMEOUT_MS = 10_000;
// The pool's own limits, also set to the timeout, may fire just before the call's signal does.
const TIMEOUT_ERRORS = [errors.ConnectTimeoutError, errors.HeadersTimeoutError, errors.BodyTimeoutError];

export function createRpcClient(options: RpcClientOptions): RpcClient {
  const url = new URL(options.url);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`Stellar RPC URL must be http or https, not ${url.protocol}`);
  const { origin } = url;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const headers: Record<string, string> = { ...options.headers, "content-type": "application/json" };
  if (url.username || url.password) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.authorization = `Basic ${Buffer.from(credentials).toString("base64")}`;
  }
  const path = `${url.pathname}${url.search}`;
  const pool = new Pool(origin, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  let nextId = 1;
  let closed = false;

  async function call<T>(method: string, params: object, { signal }: CallOptions = {}): Promise<T> {
    const where = `${method} to ${origin}`;
    if (closed) throw new RpcError("transport", `${where}: the client is closed`);
    const id = nextId++;
    // A timer of our own, cleared when the call ends (AbortSignal.timeout's would fire long after every call).
    const deadline = new AbortController();
    const timeout = setTimeout(() => deadline.abort(), timeoutMs);
    const timer = deadline.signal;
    let status: number;
    let text: string;
    try {
      const response = await pool.request({
        method: "POST",
        path,
        headers,
        body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
        signal: signal ? AbortSignal.any([signal, timer]) : timer,
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      if (signal?.aborted) throw new RpcError("aborted", `${where}: aborted`);
      if (timer.aborted || TIMEOUT_ERRORS.some((type) => error instanceof type)) {
        throw new RpcError("timeout", `${where}: no answer within ${timeoutMs} ms`);
      }
      // undici's and Node's messages name the host and port at most ("connect ECONNREFUSED 10.0.0.1:443"), never the path.
      const { code, message } = error as { code?: string; message?: string };
      throw new RpcError("transport", `${where} failed: ${message || code || "unknown error"}`);
    } finally {
      clearTimeout(timeout);
    }
    if (status < 200 || status >= 300) throw new RpcError("http", `${where}: HTTP ${status}`, undefined, status);
    let answer: { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      throw new RpcError("invalid_response", `${where}: the answer is not JSON`);
    }
    if (answer === null || typeof answer !== "object") throw new RpcError("invalid_response", `${where}: the answer is not a JSON-RPC response`);
    if (answer.error) {
      const { code, message } = answer.error;
      throw new RpcError("rpc", `${where}: ${String(message)} (${String(code)})`, typeof code === "number" ? code : undefined);
    }
    if (answer.id !== id || answer.result === null || typeof answer.result !== "object") {
      throw new RpcError("invalid_response", `${where}: the answer is not a JSON-RPC response to the call`);
    }
    return answer.result as T;
  }

  return {
    getHealth: (callOptions) => call("getHealth", {}, callOptions),
    getLatestLedger: (callOptions) => call("getLatestLedger", {}, callOptions),
    getNetwork: (callOptions) => call("getNetwork", {}, callOptions),
    getEvents(request, callOptions) {
      const { filters, limit } = request;
      const pagination = { ...("cursor" in request && { cursor: request.cursor }), ...(limit !== undefined && { limit }) };
      const range = "startLedger" in request ? { startLedger: request.startLedger, ...(request.endLedger !== undefined && { endLedger: request.endLedger }) } : {};
      return call("getEvents", { ...range, filters, pagination }, callOptions);
    },
    getTransaction: (hash, callOptions) => call("getTransaction", { hash }, callOptions),
    async close() {
      closed = true;
      await pool.close();
    },
  };
}
