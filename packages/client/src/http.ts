import { LumenpayError } from "./errors.js";
import { parseRetryAfter, retryDelay } from "./retry.js";
import type { ErrorBody } from "./types.js";

export interface LumenpayOptions {
  /** A secret API key, sk_…. */
  apiKey: string;
  /** Where your Lumenpay server answers, e.g. https://pay.example.com. */
  baseUrl: string;
  /** Retries after a connection error, a timeout, a 429 or a 5xx; 0 turns retrying off. Default 2. */
  maxRetries?: number;
  /** Time allowed for each attempt, response body included. Default 30 000 ms. */
  timeoutMs?: number;
  /** The fetch to send requests with; default the global one. */
  fetch?: typeof fetch;
  /** Waits between retries; for tests that check the delays without waiting them out. */
  sleep?: (ms: number) => Promise<void>;
}

export interface RequestOptions {
  /** For a POST: the key that makes retrying it safe; one is generated when absent. */
  idempotencyKey?: string;
}

export interface Request {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: object;
  body?: object;
  idempotencyKey?: string;
}

const DEFAULT_MAX_RETRIES = 2;
const DEFAULT_TIMEOUT_MS = 30_000;

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sends requests to the API: authentication, JSON, idempotency keys, timeouts, retries and errors. */
export class HttpClient {
  private readonly apiKey: string;
  private readonly baseUrl: string;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: LumenpayOptions) {
    if (typeof options.apiKey !== "string" || options.apiKey.length === 0) throw new TypeError("apiKey is required (sk_…)");
    if (!isHttpUrl(options.baseUrl)) throw new TypeError(`baseUrl must be an http(s) URL, e.g. https://pay.example.com; got ${String(options.baseUrl)}`);
    const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) throw new TypeError("maxRetries must be a whole number ≥ 0");
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new TypeError("timeoutMs must be greater than 0");
    this.apiKey = options.apiKey;
    // Kept as given, so a server under a path prefix (https://example.com/lumenpay) keeps it.
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.maxRetries = maxRetries;
    this.timeoutMs = timeoutMs;
    // Called through globalThis: browsers refuse a fetch called as a method of another object.
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.sleep = options.sleep ?? wait;
  }

  /** The response body of `request`, after up to `maxRetries` retries; a `LumenpayError` otherwise. */
  async request<T>(request: Request): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, accept: "application/json" };
    if (request.body !== undefined) headers["content-type"] = "application/json";
    // Every POST carries a key, the same on each retry: the server then acts once however many attempts reach it.
    if (request.method === "POST") headers["idempotency-key"] = request.idempotencyKey ?? crypto.randomUUID();
    const init = { method: request.method, headers, body: request.body === undefined ? undefined : JSON.stringify(request.body) };
    const url = this.url(request);

    for (let retry = 1; ; retry++) {
      const outcome = await this.attempt<T>(url, init);
      if (!outcome.error) return outcome.body;
      const { error, retryAfterMs } = outcome;
      const delay = retry > this.maxRetries ? undefined : retryDelay({ retry, status: error.status, retryAfterMs, random: Math.random() });
      if (delay === undefined) throw error;
      await this.sleep(delay);
    }
  }

  private url({ path, query }: Request): string {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(name, String(value));
    const qs = search.toString();
    return `${this.baseUrl}${path}${qs ? `?${qs}` : ""}`;
  }

  /** One try: the parsed body of a 2xx, or the error to retry or throw (with the server's Retry-After). */
  private async attempt<T>(url: string, init: RequestInit): Promise<Attempt<T>> {
    let response: Response;
    let text: string;
    try {
      response = await this.fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
      text = await response.text();
    } catch (cause) {
      const timedOut = cause instanceof Error && cause.name === "TimeoutError";
      const message = timedOut ? `No response from ${init.method} ${url} within ${this.timeoutMs} ms.` : `${init.method} ${url} failed: ${reasonOf(cause)}`;
      return { error: new LumenpayError({ code: timedOut ? "timeout" : "network_error", message, cause }) };
    }
    const requestId = response.headers.get("request-id") ?? undefined;
    const body = parseJson(text);
    if (response.ok && body !== undefined) return { body: body as T };
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), Date.now());
    const apiError = errorOf(body);
    if (response.ok || !apiError) {
      const message = `${init.method} ${url} answered ${response.status} without ${response.ok ? "a JSON body" : "a Lumenpay error"}.`;
      return { error: new LumenpayError({ code: "unexpected_response", message, status: response.status, requestId }), retryAfterMs };
    }
    return { error: new LumenpayError({ ...apiError, status: response.status, requestId }), retryAfterMs };
  }
}

/** The body of a 2xx, or the error to retry or throw and the server's Retry-After. */
type Attempt<T> = { body: T; error?: undefined } | { error: LumenpayError; retryAfterMs?: number };

// "localhost:4000" parses too, as a URL of scheme "localhost:".
const isHttpUrl = (value: string) => URL.canParse(value) && ["http:", "https:"].includes(new URL(value).protocol);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `{ error: { code, message, param? } }` of an error response; undefined for any other body. */
function errorOf(body: unknown): ErrorBody["error"] | undefined {
  const error = (body as { error?: unknown } | undefined)?.error as Record<string, unknown> | undefined;
  if (typeof error?.code !== "string" || typeof error.message !== "string") return undefined;
  return { code: error.code, message: error.message, ...(typeof error.param === "string" && { param: error.param }) };
}

/** fetch reports "fetch failed" and puts the socket's reason in `cause`. */
function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const detail = error.cause === undefined ? "" : `: ${reasonOf(error.cause)}`;
  return `${error.message}${typeof code === "string" && !error.message.includes(code) ? ` (${code})` : ""}${detail}`;
}
