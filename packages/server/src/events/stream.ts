import { createNotificationListener, type NotificationListener } from "../webhooks/listener.js";
import { EVENTS_CHANNEL } from "./outbox.js";
import { streamPosition, type StreamPosition, type StreamRow } from "./store.js";

/**
 * A merchant's events as server-sent events (`GET /v1/events/stream`): what was committed after a
 * position first, then each new event as it commits. A stream reads when the outbox's NOTIFY says its
 * merchant has a new event, and every `pollMs` anyway: a notification lost while the LISTEN
 * connection was down, or an event held back behind an older open transaction, waits at most that long.
 */

export interface EventStreamLimits {
  /** Streams open at once in one process; more are refused with 503 `too_many_streams`. */
  maxStreams: number;
  /** The backstop: a stream reads this often even without a notification. */
  pollMs: number;
  /** A comment line after this long without a message, so that proxies keep the connection open. */
  heartbeatMs: number;
  /** A stream ends after this long and its client resumes: a revoked API key stops streaming within it. */
  lifetimeMs: number;
  /** Events read per query; a full batch is followed by the next at once. */
  batchSize: number;
  /** How long EventSource waits before reconnecting (the `retry:` field). */
  retryMs: number;
}

export const EVENT_STREAM_LIMITS: EventStreamLimits = {
  maxStreams: 100,
  pollMs: 2_000,
  heartbeatMs: 15_000,
  lifetimeMs: 30 * 60_000,
  batchSize: 100,
  retryMs: 1_000,
};

/** Calls a merchant's open streams when its events commit. */
export interface EventWakeups {
  /** Calls `wake` whenever an event of `merchantId` may have committed; returns the unsubscribe. */
  subscribe(merchantId: string, wake: () => void): () => void;
  close(): Promise<void>;
}

/**
 * LISTENs on EVENTS_CHANNEL over `connectionString` (a direct connection, not a transaction pooler),
 * from the first subscription on: most processes never serve a stream. Without one, streams only poll.
 */
export function eventWakeups(opts: { connectionString?: string; log: { warn(obj: object, msg: string): void } }): EventWakeups {
  const streams = new Map<string, Set<() => void>>();
  let listener: NotificationListener | undefined;
  let closed = false;
  // null: the connection was (re)established and notifications may have been lost, so everyone reads.
  const wake = (merchantId: string | null) => {
    for (const set of merchantId === null ? [...streams.values()] : [streams.get(merchantId)]) set?.forEach((fn) => fn());
  };
  return {
    subscribe(merchantId, fn) {
      if (opts.connectionString && !closed) {
        listener ??= createNotificationListener({ connectionString: opts.connectionString, channel: EVENTS_CHANNEL, log: opts.log, onNotification: wake });
      }
      const set = streams.get(merchantId) ?? new Set();
      streams.set(merchantId, set.add(fn));
      return () => {
        set.delete(fn);
        if (set.size === 0 && streams.get(merchantId) === set) streams.delete(merchantId);
      };
    },
    async close() {
      closed = true;
      await listener?.close();
    },
  };
}

/** One event as an SSE message: its id, its type, and its body as delivered (one line of JSON). */
const sseMessage = (r: { id: string; type: string; body: string }) => `id: ${r.id}\nevent: ${r.type}\ndata: ${r.body}\n\n`;

export interface EventStreamOptions {
  /**
   * Events after a position, oldest first (with a null body for those the stream filters out);
   * undefined ends the stream (reading failed), and the client resumes from the last id it received.
   */
  read: (after: StreamPosition, limit: number) => Promise<StreamRow[] | undefined>;
  /** Where the stream starts. */
  after: StreamPosition;
  /** An event id the stream announces first (an `id:` field alone), so that a client that connected without one can resume. */
  announce?: string;
  /** Subscribes to the merchant's wake-ups; returns the unsubscribe. */
  subscribe: (wake: () => void) => () => void;
  limits: EventStreamLimits;
  /** Aborted when the client leaves or the server shuts down. */
  signal: AbortSignal;
}

/**
 * The text of one stream, pulled by the response (a slow reader slows it down), until `signal` aborts,
 * the lifetime ends or a read fails.
 */
export async function* eventStream({ read, after, announce, subscribe, limits, signal }: EventStreamOptions): AsyncGenerator<string> {
  yield `retry: ${limits.retryMs}\n${announce ? `id: ${announce}\n` : ""}\n`;
  const end = performance.now() + limits.lifetimeMs;
  let lastWrite = performance.now();
  let position = after;
  // Set by a wake-up at any time, so one that arrives during a read is not lost: the next wait is skipped.
  let woken = false;
  let interrupt: (() => void) | undefined;
  const unsubscribe = subscribe(() => {
    woken = true;
    interrupt?.();
  });
  try {
    while (!signal.aborted && performance.now() < end) {
      woken = false;
      const rows = await read(position, limits.batchSize);
      if (rows === undefined) return;
      if (rows.length > 0) position = streamPosition(rows[rows.length - 1]!);
      const text = rows.flatMap((r) => (r.body === null ? [] : [sseMessage({ id: r.id, type: r.type, body: r.body })])).join("");
      if (text) {
        lastWrite = performance.now();
        yield text;
      } else if (performance.now() - lastWrite >= limits.heartbeatMs) {
        lastWrite = performance.now();
        yield ": heartbeat\n\n";
      }
      if (rows.length === limits.batchSize || woken) continue;
      const untilHeartbeat = lastWrite + limits.heartbeatMs - performance.now();
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          interrupt = undefined;
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, Math.min(limits.pollMs, untilHeartbeat, end - performance.now())));
        signal.addEventListener("abort", done, { once: true });
        interrupt = done;
      });
    }
  } finally {
    unsubscribe();
  }
}
