/**
 * How every loop waits before trying again: ±20 % jitter, so that instances that failed together do
 * not retry together, on an exponential step from `baseMs` doubling up to `maxMs`. The webhook retry
 * schedule (webhooks/retry.ts) is a table instead of a doubling, with the same jitter.
 */

/** `ms` with ±20 % jitter. */
export const jittered = (ms: number, random: () => number) => Math.round(ms * (0.8 + 0.4 * random()));

/** The delay before retry number `failures` (1, 2, …). */
export function backoffMs(failures: number, { baseMs, maxMs }: { baseMs: number; maxMs: number }, random: () => number): number {
  return jittered(Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1)), random);
}
