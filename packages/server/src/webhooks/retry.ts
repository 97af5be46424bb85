import { jittered } from "../backoff.js";
/**
 * When to try a failed webhook delivery again: one pure function, so the whole retry policy is
 * table-tested and the worker only applies it.
 */

/** Delays after the first attempt (the Standard Webhooks recommendation, about three days in all). */
export const DEFAULT_RETRY_SCHEDULE_MS = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000,
];

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `WEBHOOK_RETRY_SCHEDULE`, e.g. `1s,2s,5s` or `5s,5m,30m,2h`. */
export function parseRetrySchedule(text: string): { ok: true; value: number[] } | { ok: false; error: string } {
  const parts = text.split(",").map((p) => p.trim());
  const value: number[] = [];
  for (const part of parts) {
    const match = /^(\d+)(ms|s|m|h|d)$/.exec(part);
    if (!match) return { ok: false, error: `"${part}" is not a delay like 500ms, 5s, 5m, 2h or 1d` };
    value.push(Number(match[1]) * UNITS[match[2]!]!);
  }
  if (value.length === 0 || value.length > 50) return { ok: false, error: "give between 1 and 50 delays" };
  return { ok: true, value };
}

export interface RetryInput {
  /** Number of attempts made so far, including the one that just failed (1 after the first). */
  attempt: number;
  now: Date;
  schedule: readonly number[];
  /** HTTP status of the failed attempt, when there was a response. */
  status?: number;
  /** The response's Retry-After header, honoured for 429 and 503. */
  retryAfter?: string;
  /** Uniform in [0, 1); injected so tests are deterministic. */
  random: () => number;
}

/** Parses Retry-After (delta-seconds or an HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(value: string, now: Date): number | undefined {
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now.getTime());
}

/**
 * The time of the next attempt, or null when the schedule is exhausted (the delivery has failed).
 * ±20 % jitter spreads retries of a burst; a Retry-After on 429/503 is honoured but clamped to
 * [scheduled delay, 2 × scheduled delay] so a receiver can neither hammer us nor park a delivery forever.
 */
export function nextAttemptAt({ attempt, now, schedule, status, retryAfter, random }: RetryInput): Date | null {
  const base = schedule[attempt - 1];
  if (base === undefined) return null;
  let delay = jittered(base, random);
  if ((status === 429 || status === 503) && retryAfter !== undefined) {
    const asked = parseRetryAfter(retryAfter, now);
    if (asked !== undefined) delay = Math.min(Math.max(asked, base), 2 * base);
  }
  return new Date(now.getTime() + Math.round(delay));
}
