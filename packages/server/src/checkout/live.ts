import { setTimeout as sleep } from "node:timers/promises";

/**
 * Live status for the checkout as server-sent events: each open page holds one stream that re-reads
 * its payment on an interval and sends the status whenever its version changes. Polling by primary
 * key costs one indexed query per stream per interval and needs nothing from the code that changes
 * payments (ingestion, expiry, cancel, possibly in other processes); the bounds below cap its cost.
 */

export interface LiveLimits {
  /** Streams open at once in one process; more are refused with 503 and those pages poll `/status` instead. */
  maxStreams: number;
  /** How often a stream re-reads its payment. */
  intervalMs: number;
  /** A comment line after this long without an event, so that proxies keep the connection open. */
  heartbeatMs: number;
  /** A stream ends after this long and EventSource reconnects: a forgotten tab holds a slot for this long at a time. */
  lifetimeMs: number;
  /** How long EventSource waits before reconnecting (the `retry:` field). */
  retryMs: number;
}

export const LIVE_LIMITS: LiveLimits = { maxStreams: 200, intervalMs: 1500, heartbeatMs: 15_000, lifetimeMs: 10 * 60_000, retryMs: 3000 };

export interface StatusStreamOptions<V> {
  /** The current view; undefined ends the stream (the payment is gone, or reading failed). */
  read: () => Promise<V | undefined>;
  /** The event's data: one line of JSON. */
  render: (view: V) => string;
  limits: LiveLimits;
  /** Aborted when the client leaves or the server shuts down. */
  signal: AbortSignal;
}

/**
 * The text of one page's event stream: the status at once, then again whenever its version changes,
 * until `signal` aborts or the lifetime ends. Pulled by the response, so a slow reader slows it down.
 */
export async function* statusStream<V extends { version: string }>({ read, render, limits, signal }: StatusStreamOptions<V>): AsyncGenerator<string> {
  yield `retry: ${limits.retryMs}\n\n`;
  const end = performance.now() + limits.lifetimeMs;
  let sentVersion: string | undefined;
  let lastWrite = performance.now();
  while (!signal.aborted && performance.now() < end) {
    const view = await read();
    if (view === undefined) return;
    if (view.version !== sentVersion) {
      sentVersion = view.version;
      lastWrite = performance.now();
      yield `event: status\ndata: ${render(view)}\n\n`;
    } else if (performance.now() - lastWrite >= limits.heartbeatMs) {
      lastWrite = performance.now();
      yield ": heartbeat\n\n";
    }
    // Aborting ends the wait at once; the loop condition then ends the stream.
    await sleep(Math.max(0, Math.min(limits.intervalMs, end - performance.now())), undefined, { signal }).catch(() => undefined);
  }
}
