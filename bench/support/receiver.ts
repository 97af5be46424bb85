import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedSample {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface BenchReceiver {
  origin: string;
  /** `webhook-id` → when its first request arrived (performance.now()). */
  firstSeen: Map<string, number>;
  /** Every request so far, duplicates included. */
  requests(): number;
  /** The first request with a `webhook-id`, kept whole so its signature can be checked. */
  sample(): ReceivedSample | undefined;
  /**
   * Resolves once every one of `ids` has arrived; rejects after `timeoutMs`. By id, not by count: a
   * delivery of an earlier phase sent again (its answer cut short when that phase's worker stopped)
   * must not stand in for one of this phase's.
   */
  waitForIds(ids: readonly string[], timeoutMs: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

/** A bare node:http server on 127.0.0.1 that answers 200 as soon as a request's body is read. */
export async function startBenchReceiver(): Promise<BenchReceiver> {
  const firstSeen = new Map<string, number>();
  let requests = 0;
  let sample: ReceivedSample | undefined;
  // The ids a waitForIds call still waits for: each arrival is checked off as it comes (polling a
  // list of 20 000 would cost the process it shares with the worker more than the receiving does).
  let waiter: { missing: Set<string>; done(): void } | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = performance.now();
      requests++;
      const id = req.headers["webhook-id"];
      if (typeof id === "string") {
        if (!firstSeen.has(id)) {
          firstSeen.set(id, at);
          if (waiter?.missing.delete(id) && waiter.missing.size === 0) waiter.done();
        }
        sample ??= {
          path: req.url ?? "",
          headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
          body: Buffer.concat(chunks).toString("utf8"),
        };
      }
      res.writeHead(200, { "content-length": "0" });
      res.end();
    });
  });
  // Keep-alive longer than any pause in the bench, so neither client pays for reconnects.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    firstSeen,
    requests: () => requests,
    sample: () => sample,
    waitForIds(ids, timeoutMs) {
      const missing = new Set(ids.filter((id) => !firstSeen.has(id)));
      if (missing.size === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = undefined;
          reject(new Error(`receiver got ${ids.length - missing.size} of ${ids.length} events within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter = {
          missing,
          done: () => {
            clearTimeout(timer);
            waiter = undefined;
            resolve();
          },
        };
      });
    },
    reset() {
      firstSeen.clear();
      requests = 0;
      sample = undefined;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
