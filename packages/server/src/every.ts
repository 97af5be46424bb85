import { setTimeout as sleep } from "node:timers/promises";

/** Runs `job` now and every `intervalMs` until `signal` aborts; a failed run is reported, not fatal. */
export async function every(intervalMs: number, signal: AbortSignal, onError: (error: unknown) => void, job: () => Promise<void>): Promise<void> {
  while (!signal.aborted) {
    await job().catch(onError);
    await sleep(intervalMs, undefined, { signal }).catch(() => undefined);
  }
}
