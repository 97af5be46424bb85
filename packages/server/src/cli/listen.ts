import { setTimeout as sleep } from "node:timers/promises";
import { signDelivery } from "@lumenpay/webhooks";
import { backoffMs } from "../backoff.js";
import { HttpError } from "../http/errors.js";
import { generateSecret } from "../webhooks/secrets.js";
import { USER_AGENT } from "../webhooks/runtime.js";
import { requiredString, stringValue, UsageError, type Command } from "./args.js";

/**
 * `lumenpay listen`: webhooks for a machine Lumenpay cannot reach (a laptop behind NAT). It reads the
 * merchant's event stream (GET /v1/events/stream) and POSTs each event to a local URL, signed as a
 * delivery is, with a secret of its own. After a dropped connection it resumes after the last event
 * it received, so what was committed meanwhile is forwarded then, once.
 */

/** Reconnecting waits 250 ms, doubling up to 10 s (with jitter); a stream that lasted longer starts over. */
const RECONNECT = { baseMs: 250, maxMs: 10_000 };
/** Nothing for this long, not even a heartbeat (every 15 s): the connection is dead (a laptop that slept, a NAT that forgot it). */
const IDLE_MS = 45_000;
/** The stream's `Last-Event-ID` that replays every stored event. */
const FROM_START = "start";

/** One message of an event stream: the fields this client reads. */
interface StreamMessage {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
}

/**
 * The messages of a `text/event-stream` body, by the WHATWG rules this client needs: lines end with
 * LF or CRLF, a blank line ends a message, `:` starts a comment, `data` lines join with LF.
 * `onData` is told of every chunk, heartbeats included.
 */
async function* streamMessages(body: AsyncIterable<Uint8Array>, onData: () => void): AsyncGenerator<StreamMessage> {
  const decoder = new TextDecoder();
  let buffer = "";
  let message: StreamMessage = {};
  for await (const chunk of body) {
    onData();
    buffer += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n", start)) {
      const line = buffer.slice(start, buffer[end - 1] === "\r" ? end - 1 : end);
      start = end + 1;
      if (line === "") {
        if (Object.keys(message).length > 0) yield message;
        message = {};
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(line[colon + 1] === " " ? colon + 2 : colon + 1);
      if (field === "id") message.id = value;
      else if (field === "event") message.event = value;
      else if (field === "data") message.data = message.data === undefined ? value : `${message.data}\n${value}`;
      else if (field === "retry") message.retry = value;
    }
    buffer = buffer.slice(start);
  }
}

/** Why a request failed, in a few words: the system's code (ECONNREFUSED) rather than fetch's "fetch failed". */
function reason(error: unknown): string {
  if (error instanceof HttpError) return `${error.message} (${error.code})`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}

/** The server's refusal as the API's error (its code and message); HTML from a proxy becomes `http_<status>`. */
async function refusal(response: Response): Promise<HttpError> {
  const body = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string; param?: string } } | undefined;
  const e = body?.error;
  return typeof e?.code === "string"
    ? new HttpError(response.status, e.code, e.message ?? "", e.param)
    : new HttpError(response.status, `http_${response.status}`, `The server answered ${response.status}.`);
}

/** Worth another try: the server is busy or away. Anything else (a bad key, a bad --events) stays wrong. */
const retryable = (error: unknown) => !(error instanceof HttpError) || error.status === 429 || error.status >= 500;

interface Forwarding {
  /** `…/v1/events/stream`, with `types` when filtered. */
  streamUrl: URL;
  apiKey: string;
  forwardTo: URL;
  /** The `whsec_` secret every forwarded request is signed with. */
  secret: string;
  /** Limit for each forward: connecting, answering and the answer's body. */
  timeoutMs: number;
  /** Writes one line. */
  print(line: string): void;
  /** Aborted on SIGINT or SIGTERM: the stream and any forward in flight end at once. */
  signal: AbortSignal;
}

/** POSTs one event to the local receiver; resolves to what happened (the status, or why it failed). */
async function forward(event: { id: string; body: string }, f: Forwarding): Promise<string> {
  try {
    const headers = signDelivery({ id: event.id, timestamp: Math.floor(Date.now() / 1000), body: event.body, secrets: [f.secret] });
    const response = await fetch(f.forwardTo, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", "user-agent": USER_AGENT },
      body: event.body,
      // As deliveries: a redirect is an answer, never followed.
      redirect: "manual",
      signal: AbortSignal.any([f.signal, AbortSignal.timeout(f.timeoutMs)]),
    });
    // Read to the end so the connection can serve the next event.
    await response.arrayBuffer();
    return response.ok ? String(response.status) : `${response.status}, not retried`;
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === "TimeoutError";
    return `failed (${timedOut ? `no answer within ${f.timeoutMs / 1000} s` : reason(error)}), not retried`;
  }
}

const now = () => new Date().toISOString();

/**
 * Streams and forwards until `signal` aborts, reconnecting after a dropped or ended stream with
 * `Last-Event-ID`: the last id received, an event's or the one the stream announced in its opening
 * message. An opening message without one (the merchant had no event yet) means the start of the
 * stored events is where the stream began: it resumes from there. Rejects with the server's
 * HttpError when retrying cannot help.
 */
async function forwardEvents(f: Forwarding): Promise<void> {
  let lastId: string | undefined;
  // Whether an opening message arrived: until then, where the stream began is unknown.
  let positioned = false;
  let connectedBefore = false;
  let failures = 0;
  while (!f.signal.aborted) {
    const connection = new AbortController();
    const stop = () => connection.abort();
    f.signal.addEventListener("abort", stop, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const watch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new Error(`nothing received for ${IDLE_MS / 1000} s`)), IDLE_MS);
    };
    let openedAt: number | undefined;
    let ended: string;
    try {
      watch();
      const resumeAfter = lastId ?? (positioned ? FROM_START : undefined);
      const response = await fetch(f.streamUrl, {
        headers: { authorization: `Bearer ${f.apiKey}`, accept: "text/event-stream", ...(resumeAfter ? { "last-event-id": resumeAfter } : {}) },
        signal: connection.signal,
      });
      if (!response.ok || !response.body) throw await refusal(response);
      openedAt = performance.now();
      f.print(`${now()}  ${connectedBefore ? `reconnected${lastId ? `, resuming after ${lastId}` : ""}` : "connected"}`);
      connectedBefore = true;
      for await (const message of streamMessages(response.body, watch)) {
        positioned = true;
        if (message.id !== undefined) lastId = message.id;
        if (message.id === undefined || message.event === undefined || message.data === undefined) continue;
        // The stream waits while the receiver answers: no heartbeat arrives meanwhile.
        clearTimeout(idle);
        const outcome = await forward({ id: message.id, body: message.data }, f);
        if (f.signal.aborted) return;
        f.print(`${now()}  ${message.event}  ${message.id}  ${outcome}`);
        watch();
      }
      ended = "the server ended the stream";
    } catch (error) {
      if (f.signal.aborted) return;
      if (!retryable(error)) throw error;
      ended = `connection ${openedAt === undefined ? "failed" : "lost"}: ${reason(connection.signal.reason ?? error)}`;
    } finally {
      clearTimeout(idle);
      f.signal.removeEventListener("abort", stop);
    }
    failures = openedAt !== undefined && performance.now() - openedAt > RECONNECT.maxMs ? 1 : failures + 1;
    const delay = backoffMs(failures, RECONNECT, Math.random);
    f.print(`${now()}  ${ended}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    await sleep(delay, undefined, { signal: f.signal }).catch(() => undefined);
  }
}

/** `--name`'s http(s) URL, without credentials (fetch refuses those, and they would be printed). */
function urlArgument(text: string, name: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--${name} must be an http or https URL (got "${text}")`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--${name} must be an http or https URL (got "${text}")`);
  if (url.username || url.password) throw new UsageError(`--${name} must not contain credentials`);
  return url;
}

export const listen: Command = {
  name: "listen",
  summary: "Forward your events to a local URL, signed with a secret it prints: webhooks for a machine Lumenpay cannot reach.",
  synopsis: "--api-key sk_… --forward-to URL [--server URL] [--events TYPES]",
  optionHelp: [
    "  --api-key KEY            the merchant's API key (sk_…); never printed",
    "  --forward-to URL         where each event is POSTed, signed with the whsec_… secret printed at start",
    "                           (no v1a signature); once: a failure (non-2xx, timeout, no connection) is",
    "                           printed and not retried",
    "  --server URL             the Lumenpay server (default PUBLIC_BASE_URL, http://localhost:4000); when the",
    "                           connection drops it reconnects and forwards what was committed meanwhile",
    "  --events TYPES           comma-separated types or groups, e.g. payment.*,endpoint.disabled (default all)",
  ],
  options: { "api-key": { type: "string" }, "forward-to": { type: "string" }, server: { type: "string" }, events: { type: "string" } },
  async run({ values, config, print }) {
    const apiKey = requiredString(values, "api-key");
    if (!apiKey.startsWith("sk_")) throw new UsageError("--api-key must be an API key (sk_…)");
    const forwardTo = urlArgument(requiredString(values, "forward-to"), "forward-to");
    const server = urlArgument(stringValue(values, "server") ?? config.publicBaseUrl, "server");
    const streamUrl = new URL("v1/events/stream", server.href.endsWith("/") ? server : `${server.href}/`);
    const events = stringValue(values, "events");
    if (events !== undefined) streamUrl.searchParams.set("types", events);

    const secret = generateSecret();
    print(`Forwarding ${events ?? "all"} events from ${server.origin} to ${forwardTo.href}, signed with ${secret}`);
    print("Verify them with that secret (Ctrl-C stops).");
    const stopped = new AbortController();
    const stop = () => stopped.abort();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      await forwardEvents({ streamUrl, apiKey, forwardTo, secret, timeoutMs: config.webhooks.timeoutMs, print, signal: stopped.signal });
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    }
    print(`${now()}  stopped`);
  },
};
