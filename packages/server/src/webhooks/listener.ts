import pg from "pg";
import { backoffMs } from "../backoff.js";

export interface NotificationListener {
  /** Resolves on the next notification, after `timeoutMs`, or when `signal` aborts. */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
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
  const waiters = new Set<() => void>();
  let client: pg.Client | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;

  const notifyAll = () => {
    for (const resolve of waiters) resolve();
    waiters.clear();
  };

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
    wait(timeoutMs, signal) {
      return new Promise<void>((resolve) => {
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

/** No notifications: every wait lasts its whole timeout (or until `signal` aborts), so callers simply poll. */
export function pollingOnly(): NotificationListener {
  return {
    wait: (timeoutMs, signal) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        signal.addEventListener("abort", done, { once: true });
      }),
    close: async () => undefined,
  };
}
