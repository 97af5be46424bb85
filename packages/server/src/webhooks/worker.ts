import { backoffMs } from "../backoff.js";
import type { ClaimedDelivery } from "./queue.js";

/**
 * Why the worker's wait was cut short: a reason of its own, because `abort()` without one builds a
 * DOMException, stack trace included, on every wake-up (1.3 % of a drain's V8 profile samples).
 */
const WAIT_CUT_SHORT = "a slot freed or the worker stopped";

export interface DeliveryWorkerDeps {
  /**
   * Claims up to `limit` due deliveries, of each endpoint no more than `room.maxPerEndpoint` less its
   * requests `room.inFlight` (read when called; endpoints absent from it have none).
   */
  claim(limit: number, room: { maxPerEndpoint: number; inFlight: ReadonlyMap<string, number> }): Promise<ClaimedDelivery[]>;
  /** Returns claimed rows to the queue without counting an attempt (rows beyond an endpoint's room, should a claim return any). */
  release(claimed: ClaimedDelivery[]): Promise<void>;
  /**
   * Makes one attempt and records its outcome; must not throw. Calls `answered` once the attempt's
   * request is over (answered, failed or never sent), before its outcome is recorded.
   */
  deliver(delivery: ClaimedDelivery, signal: AbortSignal, answered: () => void): Promise<void>;
  /** Resolves on a wake-up (webhooks/wakeup.ts: a NOTIFY, or this process's own) or after `timeoutMs`, whichever comes first. */
  waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void>;
  concurrency: number;
  maxPerEndpoint: number;
  pollIntervalMs: number;
  signal: AbortSignal;
  log: { error(obj: object, msg: string): void };
}

/**
 * The delivery loop: keeps up to `concurrency` requests in flight, never more than
 * `maxPerEndpoint` to one endpoint (so a hanging merchant only ties up its own slots), claims more
 * whenever a slot frees, and otherwise sleeps until a wake-up or the polling fallback. A slot frees
 * when its request is over, not when its outcome is recorded (recordings are batched: deliver.ts), so
 * the next requests go out while the last ones are written; with those, at most twice `concurrency`
 * attempts are unrecorded at once. Resolves once the signal is aborted and every attempt has been recorded.
 */
export function createDeliveryWorker(deps: DeliveryWorkerDeps): { done: Promise<void> } {
  const perEndpoint = new Map<string, number>();
  /** Attempts not yet recorded, their requests over or not. */
  const inFlight = new Set<Promise<void>>();
  let requesting = 0;
  // Set when a slot frees; a slot freed while a claim is running means: claim again, don't sleep.
  let slotFreedSinceClaim = false;
  let wake: (() => void) | undefined;
  const slotFreed = () => {
    slotFreedSinceClaim = true;
    wake?.();
  };

  const start = (d: ClaimedDelivery) => {
    perEndpoint.set(d.endpointId, (perEndpoint.get(d.endpointId) ?? 0) + 1);
    requesting += 1;
    let over = false;
    const requestOver = () => {
      if (over) return;
      over = true;
      requesting -= 1;
      const left = (perEndpoint.get(d.endpointId) ?? 1) - 1;
      if (left === 0) perEndpoint.delete(d.endpointId);
      else perEndpoint.set(d.endpointId, left);
      slotFreed();
    };
    const run = deps
      .deliver(d, deps.signal, requestOver)
      .catch((error: unknown) => deps.log.error({ err: error, delivery: d.id }, "delivery attempt crashed"))
      .finally(() => {
        inFlight.delete(run);
        requestOver();
        slotFreed();
      });
    inFlight.add(run);
  };

  /**
   * Claims one batch; true when more work is probably due: the batch was full, or some of it went back
   * for endpoints it filled. Rows are started only here, so an endpoint's count can only fall while
   * its claim runs: a claim that respects the room it was given never returns rows to hand back.
   */
  const claimBatch = async (): Promise<boolean> => {
    const free = Math.min(deps.concurrency - requesting, 2 * deps.concurrency - inFlight.size);
    if (free <= 0) return false;
    const claimed = await deps.claim(free, { maxPerEndpoint: deps.maxPerEndpoint, inFlight: perEndpoint });
    const extras: ClaimedDelivery[] = [];
    for (const d of claimed) {
      if ((perEndpoint.get(d.endpointId) ?? 0) >= deps.maxPerEndpoint) extras.push(d);
      else start(d);
    }
    await deps.release(extras);
    return claimed.length === free || extras.length > 0;
  };

  const loop = async () => {
    let failures = 0;
    while (!deps.signal.aborted) {
      let more = false;
      slotFreedSinceClaim = false;
      try {
        more = await claimBatch();
        failures = 0;
      } catch (error) {
        // The database may be restarting: back off, keep the loop alive, and the rows stay safe in the queue.
        failures++;
        deps.log.error({ err: error }, "claiming deliveries failed; retrying");
      }
      if (more || deps.signal.aborted || (failures === 0 && slotFreedSinceClaim)) continue;
      const sleepMs = failures > 0 ? backoffMs(failures + 1, { baseMs: deps.pollIntervalMs, maxMs: 10_000 }, Math.random) : deps.pollIntervalMs;
      // Its own signal, so a wait cut short by a freed slot is cancelled rather than left pending
      // (with its timer and listeners) until the next NOTIFY or timeout.
      const woken = new AbortController();
      const stop = () => woken.abort(WAIT_CUT_SHORT);
      wake = stop;
      deps.signal.addEventListener("abort", stop, { once: true });
      await deps.waitForWork(sleepMs, woken.signal).catch(() => undefined);
      deps.signal.removeEventListener("abort", stop);
      wake = undefined;
    }
    await Promise.allSettled([...inFlight]);
  };

  return { done: loop() };
}
