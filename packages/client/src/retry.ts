/** When to try a request again, as pure functions: the client supplies the clock and the randomness. */

/** The wait before the first retry; each later one doubles it, up to `RETRY_CAP_MS`. */
export const RETRY_BASE_MS = 500;
export const RETRY_CAP_MS = 8_000;
/** ±20 %, so clients that failed together do not retry together. */
export const RETRY_JITTER = 0.2;
/** A longer Retry-After is not waited out inside one call: the error goes to the caller instead. */
export const MAX_RETRY_AFTER_MS = 60_000;

export interface RetryInput {
  /** 1 for the first retry. */
  retry: number;
  /** The response status; undefined when no response arrived (connection error or timeout). */
  status?: number;
  /** The response's Retry-After, in milliseconds (see `parseRetryAfter`). */
  retryAfterMs?: number;
  /** A number in [0, 1), as from Math.random. */
  random: number;
}

/** Whether a failure may pass with time: no response, 429, or 5xx. Any other 4xx would fail again. */
export function isRetryable(status: number | undefined): boolean {
  return status === undefined || status === 429 || status >= 500;
}

/**
 * Milliseconds to wait before retry number `retry`, or undefined when the request must not be retried:
 * the server's Retry-After when it sent one (up to `MAX_RETRY_AFTER_MS`), else exponential backoff
 * with jitter.
 */
export function retryDelay({ retry, status, retryAfterMs, random }: RetryInput): number | undefined {
  if (!isRetryable(status)) return undefined;
  if (retryAfterMs !== undefined) return retryAfterMs <= MAX_RETRY_AFTER_MS ? retryAfterMs : undefined;
  const backoff = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (retry - 1));
  return Math.round(backoff * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random));
}

/** A Retry-After header (delay-seconds or an HTTP-date) in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Every HTTP-date form starts with the day's name; Date.parse alone would take "-1" for a year.
  if (!/^[a-z]{3}/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
