import type { Pool } from "../db/pool.js";

/** NOTIFY channel that wakes delivery workers: every process with the `deliver` role LISTENs on it. */
export const DELIVERIES_CHANNEL = "lumenpay_webhook_deliveries";

export interface DeliveryWakeup {
  /**
   * Call once a transaction that queued deliveries has committed: wakes this process's workers at
   * once and the other processes' by NOTIFY. Returns at once and never throws. A plain function,
   * so callers pass it along (`afterCommit: wakeup.wake`).
   */
  wake: () => void;
  /** Resolves once no NOTIFY is in flight or due (for tests, and before the pool ends). */
  settled: () => Promise<void>;
}

/**
 * One statement, one round trip: a multi-statement simple query runs as one implicit transaction,
 * so `set local` holds for it, and a failure rolls it back and leaves the connection idle (an
 * explicit `begin` would leave a pooled connection in an aborted transaction). It commits
 * asynchronously: a NOTIFY holds a database-wide lock from pre-commit until its commit is done, and
 * waiting for the WAL flush under that lock is what serialized every notifying transaction.
 * No session state survives it, so it works through a transaction pooler.
 */
const NOTIFY = `set local synchronous_commit = off; select pg_notify('${DELIVERIES_CHANNEL}', '')`;

/**
 * Wakes delivery workers after commits, off the writing transactions (which therefore still
 * group-commit). Coalescing: one NOTIFY is in flight at a time, and calls made meanwhile cause
 * exactly one more once it is done, so a burst of commits costs at most two.
 *
 * A NOTIFY that fails is logged and dropped: workers poll anyway (WEBHOOK_POLL_INTERVAL_MS), so
 * the deliveries are only sent that much later, never lost.
 *
 * `local` wakes this process's own delivery worker directly, when it runs one: it is called on every
 * `wake()`, synchronously, and must not throw.
 */
export function createDeliveryWakeup(deps: {
  pool: Pool;
  log: { warn(obj: object, msg: string): void };
  local?: () => void;
}): DeliveryWakeup {
  let sending: Promise<void> | undefined;
  let again = false;

  const send = async () => {
    do {
      again = false;
      try {
        await deps.pool.query(NOTIFY);
      } catch (error) {
        deps.log.warn({ err: error }, "could not NOTIFY the delivery workers; they will find the deliveries when they next poll");
      }
    } while (again);
    sending = undefined;
  };

  return {
    wake: () => {
      deps.local?.();
      if (sending) again = true;
      else sending = send();
    },
    settled: async () => {
      while (sending) await sending;
    },
  };
}
