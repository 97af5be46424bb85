import { setTimeout as sleep } from "node:timers/promises";
import { streamPosition, type StreamPosition, type StreamRow } from "./store.js";

/**
 * A merchant's events as server-sent events (`GET /v1/events/stream`): what was committed after a
 * position first, then what commits later, read every `pollMs`. Streams poll rather than LISTEN: a
 * NOTIFY in every event's transaction would serialise the commits of every write that records an
 * event (PostgreSQL holds a database-wide lock through a notifying commit), and a stream is a
 * developer's tool for which a second of delay is nothing.
 */

export interface EventStreamLimits {
  /** Streams open at once in one process; more are refused with 503 `too_many_streams`. */
  maxStreams: number;
  /** How often a stream reads what committed since its last read. */
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
  pollMs: 1_000,
  heartbeatMs: 15_000,
  lifetimeMs: 30 * 60_000,
  batchSize: 100,
  retryMs: 1_000,
};

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
  limits: EventStreamLimits;
  /** Aborted when the client leaves or the server shuts down. */
  signal: AbortSignal;
}

/**
 * The text of one stream, pulled by the response (a slow reader slows it down), until `signal` aborts,
 * the lifetime ends or a read fails.
 */
export async function* eventStream({ read, after, announce, limits, signal }: EventStreamOptions): AsyncGenerator<string> {
  yield `retry: ${limits.retryMs}\n${announce ? `id: ${announce}\n` : ""}\n`;
  const end = performance.now() + limits.lifetimeMs;
  let lastWrite = performance.now();
  let position = after;
  while (!signal.aborted && performance.now() < end) {
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
    if (rows.length === limits.batchSize) continue;
    const untilHeartbeat = lastWrite + limits.heartbeatMs - performance.now();
    await sleep(Math.max(0, Math.min(limits.pollMs, untilHeartbeat, end - performance.now())), undefined, { signal }).catch(() => undefined);
  }
}
