import pg from "pg";
import { backoffMs } from "../backoff.js";

export interface NotificationListener {
  /**
   * Resolves on the next notification (or `wake()`), after `timeoutMs`, or when `signal` aborts; at
   * once when one came while nobody was waiting, so a wake-up during the caller's work is not lost.
   */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Ends the current wait as a notification would: this process has itself made something due. */
  wake(): void;
  close(): Promise<void>;
}

/** The waiters of a listener: `wake` resolves them all, or is kept for the next `wait` when there are none. */
function waitPoint() {
  const waiters = new Set<() => void>();
  let missed = false;
  return {
    wake() {
      if (waiters.size === 0) missed = true;
      for (const resolve of waiters) resolve();
      waiters.clear();
    },
    wait(timeoutMs: number, signal: AbortSignal) {
      return new Promise<void>((resolve) => {
        if (missed || signal.aborted) {
          missed = false;
          return resolve();
        }
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        signal.addEventListener("abort", done, { once: true });
        waiters.add(done);
      });
    },
  };
}

/**
 * LISTENs on one channel over a dedicated connection, reconnecting with backoff when the database
 * goes away. Notifications only shorten the wait: callers poll anyway, so a notification missed
 * while reconnecting delays work by at most one polling interval and loses nothing.
 */
export function createNotificationListener(opts: {
  connectionString: string;
  channel: string;
  log: { warn(obj: object, msg: string): void };
  /**
   * Told each notification's payload, and null once (re)connected: whatever was sent while
   * disconnected is lost, so a caller keeping state must treat everything as changed.
   */
  onNotification?: (payload: string | null) => void;
}): NotificationListener {
  const waiters = waitPoint();
  let client: pg.Client | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;

  const notifyAll = () => waiters.wake();

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: opts.connectionString, application_name: "lumenpay-listener" });
    c.on("notification", (message) => {
      opts.onNotification?.(message.payload ?? "");
      notifyAll();
    });
    c.on("error", (error) => {
      opts.log.warn({ err: error }, "notification listener lost its connection; reconnecting");
      scheduleReconnect(c);
    });
    c.on("end", () => scheduleReconnect(c));
    try {
      await c.connect();
      await c.query(`listen ${pg.escapeIdentifier(opts.channel)}`);
      client = c;
      failures = 0;
      // Anything committed while we were disconnected is due now.
      opts.onNotification?.(null);
      notifyAll();
    } catch (error) {
      opts.log.warn({ err: error }, "notification listener could not connect; retrying");
      scheduleReconnect(c);
    }
  };

  const scheduleReconnect = (c: pg.Client) => {
    if (closed || retryTimer || (client !== undefined && client !== c)) return;
    client = undefined;
    c.removeAllListeners("end");
    c.end().catch(() => undefined);
    failures++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, backoffMs(failures, { baseMs: 200, maxMs: 5_000 }, Math.random));
    retryTimer.unref();
  };

  void connect();

  return {
    wait: waiters.wait,
    wake: notifyAll,
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      notifyAll();
      const c = client;
      client = undefined;
      if (c) {
        c.removeAllListeners("end");
        await c.end().catch(() => undefined);
      }
    },
  };
}

/** No notifications: a wait lasts its whole timeout (or until `signal` aborts or `wake()`), so callers simply poll. */
export function pollingOnly(): NotificationListener {
  const waiters = waitPoint();
  return { wait: waiters.wait, wake: waiters.wake, close: async () => waiters.wake() };
}
