import { lookup as dnsLookup } from "node:dns/promises";
import { EventEmitter } from "node:events";
import { isIP } from "node:net";
import { Pool, buildConnector, errors, type Dispatcher } from "undici";
import { checkAddress, type CidrList } from "./ssrf.js";

/** Resolves a name to every address it has (tests inject one; the default asks the OS). */
export type LookupFn = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

export type SendErrorClass =
  | "timeout"
  | "connection"
  | "unreachable"
  | "redirect"
  | "http_status"
  | "tls"
  | "invalid_url"
  | "aborted";

export interface SendResult {
  /** True for a 2xx response only. */
  ok: boolean;
  status?: number;
  /** The `Retry-After` header as sent, for the retry schedule to interpret. */
  retryAfter?: string;
  /** The first 4 KB of the response body as UTF-8 (NUL as U+FFFD), for the delivery log. */
  bodySnippet: string;
  /** From the moment a slot was free until the response was read or failed. */
  durationMs: number;
  errorClass?: SendErrorClass;
  /** Human-readable cause, safe to show the merchant. */
  error?: string;
  /** Set when `error` withholds the cause (`unreachable`): what DNS or the address policy said, for the server's log only. */
  detail?: string;
}

export interface SendRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  signal?: AbortSignal;
}

export interface WebhookSender {
  send(request: SendRequest): Promise<SendResult>;
  /** Closes the connection pools, waiting for in-flight requests (abort their signals to hurry them). */
  close(): Promise<void>;
}

export interface WebhookSenderOptions {
  /** Whole-request limit: connecting, headers and body. */
  timeoutMs: number;
  allowedCidrs: CidrList;
  userAgent: string;
  lookup?: LookupFn;
}

const SNIPPET_BYTES = 4 * 1024;
/** Bodies up to this size are drained so the connection can be reused; longer ones cost a reconnect. */
const READ_LIMIT_BYTES = 64 * 1024;

/**
 * A host that does not resolve, or resolves only to addresses the policy refuses. The merchant is
 * told the same for both, or the class would tell them which internal names exist.
 */
class UnreachableError extends Error {}
const UNREACHABLE_MESSAGE = "address not allowed or not resolvable";

const defaultLookup: LookupFn = (hostname) => dnsLookup(hostname, { all: true });

/**
 * Resolves at connect time and refuses the connection unless every address passes the policy.
 * A name with a mix of public and private addresses is refused outright: picking the public ones
 * would work, but such an answer is either a misconfiguration or an attack, and failing loudly
 * shows it in the delivery log instead of hiding it.
 */
async function resolveChecked(hostname: string, lookup: LookupFn, allowed: CidrList): Promise<string> {
  let addresses: ReadonlyArray<{ address: string }>;
  if (isIP(hostname)) {
    addresses = [{ address: hostname }];
  } else {
    try {
      addresses = await lookup(hostname);
    } catch (err) {
      throw new UnreachableError(`could not resolve ${hostname}: ${(err as Error).message}`);
    }
  }
  const first = addresses[0];
  if (!first) throw new UnreachableError(`${hostname} has no addresses`);
  for (const { address } of addresses) {
    const verdict = checkAddress(address, allowed);
    if (!verdict.allowed) throw new UnreachableError(`refused to connect to ${hostname}: ${verdict.reason}`);
  }
  return first.address;
}

/**
 * An undici connector that connects to the address it checked, so a DNS answer that changes
 * between the check and the connect (rebinding) cannot redirect the request. TLS still uses the
 * name for SNI and certificate verification.
 */
function pinnedConnector(timeoutMs: number, lookup: LookupFn, allowed: CidrList): buildConnector.connector {
  const base = buildConnector({ timeout: timeoutMs });
  return (options, callback) => {
    resolveChecked(options.hostname, lookup, allowed).then(
      (address) => {
        const servername = options.servername || (isIP(options.hostname) ? undefined : options.hostname);
        try {
          base({ ...options, hostname: address, ...(servername ? { servername } : {}) }, callback);
        } catch (err) {
          callback(err as Error, null);
        }
      },
      (err: Error) => callback(err, null),
    );
  };
}

function header(headers: Dispatcher.ResponseData["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/**
 * The first 4 KB of the body as UTF-8 (NUL as U+FFFD), reading at most 64 KB. Listens for chunks
 * rather than iterating the stream: an async iterator costs a promise per chunk, on every delivery.
 */
function readSnippet(body: Dispatcher.ResponseData["body"]): Promise<string> {
  return new Promise((resolve, reject) => {
    const kept: Buffer[] = [];
    let read = 0;
    const snippet = () => {
      const bytes = Buffer.concat(kept);
      // A body cut at 4 KB may end inside a character: `stream: true` drops it instead of printing U+FFFD.
      const text = read > SNIPPET_BYTES ? new TextDecoder().decode(bytes, { stream: true }) : bytes.toString("utf8");
      // PostgreSQL's text cannot hold NUL: the statement recording the attempt would fail, leaving it
      // unrecorded (a success then sent again once its lease ran out).
      return text.replaceAll("\u0000", "\uFFFD");
    };
    body.on("data", (chunk: Buffer) => {
      if (read < SNIPPET_BYTES) kept.push(chunk.subarray(0, SNIPPET_BYTES - read));
      read += chunk.length;
      // Destroying the body closes its socket: a receiver cannot make us read forever.
      if (read > READ_LIMIT_BYTES) {
        body.destroy();
        resolve(snippet());
      }
    });
    body.once("end", () => resolve(snippet()));
    body.once("error", reject);
  });
}

const TLS_ERROR_CODE = /TLS|SSL|CERT|SELF_SIGNED|LEAF_SIGNATURE|ISSUER/;

function classify(err: unknown, timedOut: boolean, cancelled: boolean): SendErrorClass {
  if (err instanceof UnreachableError) return "unreachable";
  if (timedOut) return "timeout";
  if (cancelled) return "aborted";
  if (
    err instanceof errors.ConnectTimeoutError ||
    err instanceof errors.HeadersTimeoutError ||
    err instanceof errors.BodyTimeoutError
  ) {
    return "timeout";
  }
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && TLS_ERROR_CODE.test(code) ? "tls" : "connection";
}

function failure(errorClass: SendErrorClass, error: string): SendResult {
  return { ok: false, bodySnippet: "", durationMs: 0, errorClass, error };
}

/**
 * The outbound HTTP layer of webhook delivery: POSTs over keep-alive pools (one per origin),
 * never follows redirects and checks every connection against the SSRF policy. `send` never throws;
 * every outcome is a `SendResult`. How many requests one endpoint gets at once is the delivery
 * worker's business (worker.ts), not this layer's.
 */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const { timeoutMs, allowedCidrs, userAgent, lookup = defaultLookup } = options;
  const connect = pinnedConnector(timeoutMs, lookup, allowedCidrs);
  const pools = new Map<string, Pool>();
  let closed = false;
  // The requests under each caller's signal (the worker passes one for all): a single listener per
  // signal cancels them, where a listener per request would pile up on it.
  const underSignal = new WeakMap<AbortSignal, Set<EventEmitter>>();
  const follow = (signal: AbortSignal, cancel: EventEmitter): Set<EventEmitter> => {
    let live = underSignal.get(signal);
    if (!live) {
      const cancels = new Set<EventEmitter>();
      signal.addEventListener("abort", () => cancels.forEach((c) => c.emit("abort")), { once: true });
      underSignal.set(signal, cancels);
      live = cancels;
    }
    live.add(cancel);
    return live;
  };

  function poolFor(origin: string): Pool {
    let pool = pools.get(origin);
    if (!pool) {
      // No connection cap here: the worker's per-endpoint limit bounds concurrency, and endpoints that
      // share an origin (a hosted receiver) must not wait behind each other's stuck requests.
      pool = new Pool(origin, { connect, connections: null, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      pools.set(origin, pool);
    }
    return pool;
  }

  async function post(url: URL, request: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    if (request.signal?.aborted) return failure("aborted", "cancelled before it was sent");
    // One canceller for the deadline and the caller's signal. undici takes an EventEmitter as the
    // request's signal ('abort' cancels it): an AbortSignal's listeners (EventTarget) cost ~17 µs of CPU
    // a request in a closed loop, some 8 % of a whole delivery's.
    const cancel = new EventEmitter();
    let timedOut = false;
    const timeout = setTimeout(() => {
      timedOut = true;
      cancel.emit("abort");
    }, timeoutMs);
    const live = request.signal && follow(request.signal, cancel);
    let status: number | undefined;
    let retryAfter: string | undefined;
    try {
      const headerEntries = Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), value]);
      const response = await poolFor(url.origin).request({
        method: "POST",
        path: `${url.pathname}${url.search}`,
        headers: { ...Object.fromEntries(headerEntries), "user-agent": userAgent, "content-type": "application/json" },
        body: request.body,
        signal: cancel,
      });
      status = response.statusCode;
      retryAfter = header(response.headers, "retry-after");
      const bodySnippet = await readSnippet(response.body);
      const result = { status, retryAfter, bodySnippet, durationMs: elapsed() };
      if (status >= 200 && status < 300) return { ok: true, ...result };
      if (status >= 300 && status < 400) {
        const location = header(response.headers, "location");
        const target = location ? ` to ${location}` : "";
        return { ok: false, ...result, errorClass: "redirect", error: `HTTP ${status} redirect${target} (redirects are not followed)` };
      }
      return { ok: false, ...result, errorClass: "http_status", error: `HTTP ${status}` };
    } catch (err) {
      const errorClass = classify(err, timedOut, request.signal?.aborted ?? false);
      const failed = { ok: false, status, retryAfter, bodySnippet: "", durationMs: elapsed(), errorClass };
      if (errorClass === "unreachable") return { ...failed, error: UNREACHABLE_MESSAGE, detail: (err as Error).message };
      return { ...failed, error: errorClass === "timeout" ? `no complete response within ${timeoutMs} ms` : (err as Error).message };
    } finally {
      clearTimeout(timeout);
      live?.delete(cancel);
    }
  }

  return {
    async send(request) {
      let url: URL;
      try {
        url = new URL(request.url);
      } catch {
        return failure("invalid_url", "not a valid absolute URL");
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        return failure("invalid_url", `unsupported scheme ${url.protocol}`);
      }
      if (closed) return failure("aborted", "the webhook sender is closed");
      return post(url, request);
    },
    async close() {
      closed = true;
      await Promise.all([...pools.values()].map((pool) => pool.close()));
      pools.clear();
    },
  };
}
