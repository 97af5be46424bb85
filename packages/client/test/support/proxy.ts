import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What the proxy does with one request:
 * - `forward`: passes it to the server and the answer back;
 * - `drop`: passes it to the server, waits for the whole answer, then closes the connection without
 *   replying (the server acted; the client never hears of it);
 * - `fail`: passes it to the server, then answers 500 in the API's error shape instead;
 * - `reset`: closes the connection at once, before the server sees the request;
 * - `hang`: never answers;
 * - `{ status, headers, body }`: answers that itself without asking the server; the body defaults to an
 *   error in the API's shape.
 */
export type Rule = "forward" | "drop" | "fail" | "reset" | "hang" | { status: number; headers?: Record<string, string>; body?: string };

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** When the request arrived, from performance.now(). */
  at: number;
  /** The server's answer, when the rule passed the request on. */
  upstream?: { status: number; headers: Headers; body: string };
}

export interface Proxy {
  url: string;
  /** Every request received, in order. */
  seen: Seen[];
  /** Rules for the next requests, one each, in order; requests beyond them are forwarded. */
  script(...rules: Rule[]): void;
  close(): Promise<void>;
}

// Hop-by-hop and framing headers: each side of the proxy sets its own.
const NOT_COPIED = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding"]);

const apiError = (code: string) => JSON.stringify({ error: { code, message: `Proxy answered ${code}.` } });

/** A real HTTP proxy on 127.0.0.1 in front of `upstream`, failing requests as scripted. */
export async function startProxy(upstream: string): Promise<Proxy> {
  const rules: Rule[] = [];
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const entry: Seen = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, at: performance.now() };
    seen.push(entry);
    const rule = rules.shift() ?? "forward";
    if (rule === "hang") return;
    if (rule === "reset") return void req.socket.destroy();
    if (typeof rule === "object") {
      res.writeHead(rule.status, { "content-type": "application/json", ...rule.headers }).end(rule.body ?? apiError(`proxy_${rule.status}`));
      return;
    }
    const headers = Object.entries(req.headers).flatMap(([name, value]) => (NOT_COPIED.has(name) || value === undefined ? [] : [[name, String(value)] as [string, string]]));
    const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
    const answer = await fetch(`${upstream}${req.url}`, { method: req.method, headers, body });
    entry.upstream = { status: answer.status, headers: answer.headers, body: await answer.text() };
    if (rule === "drop") return void req.socket.destroy();
    if (rule === "fail") return void res.writeHead(500, { "content-type": "application/json" }).end(apiError("internal_error"));
    const replyHeaders = [...answer.headers].filter(([name]) => !NOT_COPIED.has(name));
    res.writeHead(answer.status, Object.fromEntries(replyHeaders)).end(entry.upstream.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    script: (...next) => void rules.push(...next),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Hung requests and idle keep-alive connections would hold close() up.
        server.closeAllConnections();
      }),
  };
}
