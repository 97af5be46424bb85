/**
 * The webhook receiver of bench/scale, in an OS process of its own so its CPU time is its own: a bare
 * node:http server on 127.0.0.1 that answers 200 once a request's body is read and counts distinct
 * `webhook-id`s. Run with an IPC channel (child_process.fork): it sends `{ port }` once it listens and
 * answers every "count" message with a `ReceiverCount`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceiverCount {
  distinct: number;
  requests: number;
  /** When the latest new id arrived, in epoch milliseconds (performance.timeOrigin-based, comparable across processes). */
  lastNewAt: number;
}

const seen = new Set<string>();
let requests = 0;
let lastNewAt = 0;

const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    requests++;
    const id = req.headers["webhook-id"];
    if (typeof id === "string" && !seen.has(id)) {
      seen.add(id);
      lastNewAt = performance.timeOrigin + performance.now();
    }
    res.writeHead(200, { "content-length": "0" });
    res.end();
  });
});
// Longer than any pause in the bench, so the senders never pay for reconnects.
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as AddressInfo).port }));
process.on("message", (message) => {
  if (message === "count") process.send!({ distinct: seen.size, requests, lastNewAt } satisfies ReceiverCount);
});
// The parent closing the channel (or dying) ends the receiver.
process.on("disconnect", () => {
  server.closeAllConnections();
  server.close();
});
