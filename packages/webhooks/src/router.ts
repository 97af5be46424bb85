import {
  HandlerTimeoutError,
  InvalidPayloadError,
  NonRetryableError,
  PayloadNotRawError,
  WebhookVerificationError,
} from "./errors.js";
import type { EventOf, EventType, LumenpayEvent } from "./events.js";
import type { WebhookEvent, WebhookHeaders } from "./index.js";
import { DEFAULT_REPLAY_TTL_SECONDS, MemoryReplayStore, type ReplayStore } from "./replay.js";

export interface HandlerContext {
  /** Aborted when the handler runs past `timeoutMs`; pass it to fetch, database calls and the like. */
  signal: AbortSignal;
  /** 1 on the first try, then 2, 3 … for in-request retries. */
  attempt: number;
}

export type Handler<T extends EventType> = (event: EventOf<T>, context: HandlerContext) => unknown;

export interface HandlerOptions {
  /** Give up on one try after this long (the signal is aborted). Default 10 000: Lumenpay waits 15 s. */
  timeoutMs?: number;
  /** Further tries within the request after a failure. Default 0: Lumenpay itself retries for days. */
  retries?: number;
}

export interface RouterOptions {
  /** Verifies each delivery; any object with `Webhook`'s `verify` works. */
  webhook: { verify(rawBody: string | Uint8Array, headers: WebhookHeaders): Promise<WebhookEvent> };
  /** Where handled event ids are kept. Default: a `MemoryReplayStore` (this process only). */
  replayStore?: ReplayStore;
  /** A redelivery of a handled event: "acknowledge" (200, default) or "reject" (409). */
  onDuplicate?: "acknowledge" | "reject";
  /** How long a handled id is remembered. Default 7 days, beyond Lumenpay's retry horizon. */
  replayTtlSeconds?: number;
  /** How long an id stays reserved while its handler runs, so a concurrent duplicate waits. Default 300. */
  processingTtlSeconds?: number;
  /** Delays before in-request retries 1, 2, 3 …; the last repeats. Default 1 s, 5 s, 15 s. */
  retryDelaysMs?: readonly number[];
  /** Told about failed handlers and replay-store errors. Default: console.error. */
  onError?: (error: unknown, event: { id: string; type: string } | undefined) => void;
}

export interface RouterRequest {
  /** The body exactly as received. */
  rawBody: string | Uint8Array;
  /** Node's `req.headers` or a fetch `Headers`. */
  headers: WebhookHeaders;
}

export interface RouterResponse {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface Router {
  /** Runs `handler` for events of `type`; one handler per type. Returns the router, to chain. */
  on<T extends EventType>(type: T, handler: Handler<T>, options?: HandlerOptions): Router;
  /** Verifies one delivery, runs its handler and says what to answer. Never throws. */
  handle(request: RouterRequest): Promise<RouterResponse>;
}

export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1000, 5000, 15000];
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_PROCESSING_TTL_SECONDS = 300;

interface Route {
  handler: (event: LumenpayEvent, context: HandlerContext) => unknown;
  timeoutMs: number;
  retries: number;
}

type Attempt = { ok: true } | { ok: false; error: unknown; stillRunning?: Promise<unknown> };

const respond = (status: number, body: Record<string, unknown>): RouterResponse => ({ status, body });

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive whole number`);
  return value;
}

function verificationFailure(error: WebhookVerificationError): RouterResponse {
  if (error instanceof InvalidPayloadError) return respond(400, { error: "invalid_payload", message: error.message });
  // The application handed over a parsed body: a bug in the receiver, so not the sender's 4xx.
  if (error instanceof PayloadNotRawError) return respond(500, { error: "payload_not_raw", message: error.message });
  return respond(401, { error: "invalid_signature", message: error.message });
}

const lockKey = (event: LumenpayEvent) => `processing:${event.id}`;
const TIMED_OUT = Symbol("timed out");
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Routes verified events to typed handlers and answers truthfully: 2xx only once the handler has
 * succeeded (or the event was already handled), 5xx when it failed so Lumenpay retries later.
 */
export function createRouter(options: RouterOptions): Router {
  const {
    webhook,
    replayStore: store = new MemoryReplayStore(),
    onDuplicate = "acknowledge",
    retryDelaysMs = DEFAULT_RETRY_DELAYS_MS,
    onError = (error, event) => console.error(`[@lumenpay/webhooks] ${event ? `${event.type} ${event.id}: ` : ""}`, error),
  } = options;
  if (typeof webhook?.verify !== "function") throw new TypeError("createRouter needs { webhook: new Webhook(...) }");
  if (onDuplicate !== "acknowledge" && onDuplicate !== "reject") throw new TypeError('onDuplicate is "acknowledge" or "reject"');
  if (!Array.isArray(retryDelaysMs) || retryDelaysMs.some((d) => !(d >= 0))) {
    throw new TypeError("retryDelaysMs must be an array of non-negative numbers");
  }
  const replayTtl = positiveInteger(options.replayTtlSeconds ?? DEFAULT_REPLAY_TTL_SECONDS, "replayTtlSeconds");
  const processingTtl = positiveInteger(options.processingTtlSeconds ?? DEFAULT_PROCESSING_TTL_SECONDS, "processingTtlSeconds");
  const routes = new Map<string, Route>();
  const delay = (retry: number) => retryDelaysMs[Math.min(retry, retryDelaysMs.length - 1)] ?? 0;

  async function attempt(route: Route, event: LumenpayEvent, number: number): Promise<Attempt> {
    const controller = new AbortController();
    const run = Promise.resolve().then(() => route.handler(event, { signal: controller.signal, attempt: number }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), route.timeoutMs);
    });
    try {
      if ((await Promise.race([run, timeout])) !== TIMED_OUT) return { ok: true };
      const error = new HandlerTimeoutError(route.timeoutMs);
      controller.abort(error);
      return { ok: false, error, stillRunning: run };
    } catch (error) {
      return { ok: false, error };
    } finally {
      clearTimeout(timer);
    }
  }

  async function run(route: Route, event: LumenpayEvent): Promise<Attempt> {
    for (let number = 1; ; number++) {
      const result = await attempt(route, event, number);
      // A timed-out try may still be running, and a second one beside it could do the work twice.
      if (result.ok || result.stillRunning || result.error instanceof NonRetryableError || number > route.retries) return result;
      onError(result.error, event);
      await sleep(delay(number - 1));
    }
  }

  // Bookkeeping errors are reported, not thrown: the handler's outcome decides the answer.
  async function settle(event: LumenpayEvent, outcome: "handled" | "failed" | "unchanged"): Promise<void> {
    try {
      if (outcome === "handled") await store.remember(event.id, replayTtl);
      if (outcome === "failed") await store.forget(event.id);
      // The lock goes last, so a duplicate never sees the id between "reserved" and its outcome.
      await store.forget(lockKey(event));
    } catch (error) {
      onError(error, event);
    }
  }

  async function dispatch(route: Route, event: LumenpayEvent): Promise<RouterResponse> {
    // The lock means "a handler is running now"; the id, taken under the lock, means "handled".
    if (!(await store.checkAndRemember(lockKey(event), processingTtl))) {
      return respond(409, { status: "processing", message: "Another request is handling this event; retry later." });
    }
    let first: boolean;
    try {
      // Reserved for processingTtl only, so if this process dies the retry runs the handler.
      first = await store.checkAndRemember(event.id, processingTtl);
    } catch (error) {
      await settle(event, "unchanged");
      throw error;
    }
    if (!first) {
      await settle(event, "unchanged");
      return respond(onDuplicate === "acknowledge" ? 200 : 409, { status: "duplicate" });
    }
    const result = await run(route, event);
    if (result.ok) {
      await settle(event, "handled");
      return respond(200, { status: "processed" });
    }
    onError(result.error, event);
    if (result.stillRunning) {
      // Hold the lock until the abandoned try ends and record what it did, so the retry neither
      // runs beside it nor repeats work it completed.
      result.stillRunning.then(
        () => settle(event, "handled"),
        (error: unknown) => {
          onError(error, event);
          return settle(event, "failed");
        },
      );
      return respond(503, { status: "timeout", message: "The handler is still running; retry later." });
    }
    await settle(event, "failed");
    return respond(500, { status: "failed" });
  }

  const router: Router = {
    on(type, handler, handlerOptions = {}) {
      if (typeof handler !== "function") throw new TypeError("handler must be a function");
      if (routes.has(type)) throw new TypeError(`A handler for ${type} is already registered`);
      const timeoutMs = positiveInteger(handlerOptions.timeoutMs ?? DEFAULT_TIMEOUT_MS, "timeoutMs");
      const retries = handlerOptions.retries ?? 0;
      if (!Number.isSafeInteger(retries) || retries < 0) throw new TypeError("retries must be a whole number ≥ 0");
      let worstCaseMs = timeoutMs * (retries + 1);
      for (let retry = 0; retry < retries; retry++) worstCaseMs += delay(retry);
      if (worstCaseMs > processingTtl * 1000) {
        throw new TypeError(`${type}: timeouts and retries can take ${worstCaseMs} ms, more than processingTtlSeconds; raise it`);
      }
      // Looked up by event.type, so it only ever receives the events it was registered for.
      routes.set(type, { handler: handler as unknown as Route["handler"], timeoutMs, retries });
      return router;
    },

    async handle({ rawBody, headers }) {
      let event: LumenpayEvent | undefined;
      try {
        event = (await webhook.verify(rawBody, headers)) as LumenpayEvent;
        const route = routes.get(event.type);
        if (!route) return respond(200, { status: "ignored" });
        return await dispatch(route, event);
      } catch (error) {
        if (error instanceof WebhookVerificationError) return verificationFailure(error);
        onError(error, event);
        return respond(500, { error: "internal_error" });
      }
    },
  };
  return router;
}
