import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

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
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = performance.now();
      requests++;
      const id = req.headers["webhook-id"];
      if (typeof id === "string") {
        if (!firstSeen.has(id)) firstSeen.set(id, at);
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
    async waitForIds(ids, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      let missing = ids;
      while ((missing = missing.filter((id) => !firstSeen.has(id))).length > 0) {
        if (performance.now() > deadline) throw new Error(`receiver got ${ids.length - missing.length} of ${ids.length} events within ${timeoutMs} ms`);
        await sleep(10);
      }
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
