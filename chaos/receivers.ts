/**
 * The merchants' side of the chaos run: three webhook receivers on loopback, each verifying every
 * request it gets with @lumenpay/webhooks before it answers.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "../packages/webhooks/src/index.js";
import { closedPort } from "../packages/server/test/support/process.js";

export type Behaviour = "healthy" | "flaky" | "late";

export interface Receiver {
  name: Behaviour;
  url: string;
  /** Requests answered 2xx, by webhook-id (the event id). */
  accepted: Map<string, number>;
  requests: number;
  /** Requests whose signature did not verify with the endpoint's secret. */
  badSignatures: number;
  /** Set once the endpoint exists and its secret is known; requests before that count as bad. */
  useSecret(secret: string): void;
  /** For the `late` receiver: starts listening (before, its port refuses connections). */
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `healthy` answers 200; `flaky` answers 500 to one request in four and never answers another (its
 * socket is destroyed after 3 s, past the delivery timeout); `late` refuses connections until `up()`.
 */
export async function startReceiver(name: Behaviour): Promise<Receiver> {
  let verifier: Webhook | undefined;
  let seen = 0;
  const receiver: Receiver = {
    name,
    url: "",
    accepted: new Map(),
    requests: 0,
    badSignatures: 0,
    useSecret: (secret) => (verifier = new Webhook({ secrets: [secret] })),
    up: async () => undefined,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      receiver.requests++;
      const body = Buffer.concat(chunks);
      const id = String(req.headers["webhook-id"]);
      void (async () => {
        const valid = verifier ? await verifier.verify(body, req.headers).then(() => true, () => false) : false;
        if (!valid) {
          receiver.badSignatures++;
          return res.writeHead(400).end();
        }
        const turn = seen++ % 4;
        if (name === "flaky" && turn === 0) return res.writeHead(500).end();
        if (name === "flaky" && turn === 1) return void setTimeout(() => res.destroy(), 3000).unref();
        receiver.accepted.set(id, (receiver.accepted.get(id) ?? 0) + 1);
        res.writeHead(200).end();
      })();
    });
  });
  const close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  if (name === "late") {
    const port = await closedPort();
    receiver.url = `http://127.0.0.1:${port}/hooks`;
    receiver.up = () => new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
    receiver.close = () => (server.listening ? close() : Promise.resolve());
  } else {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    receiver.close = close;
  }
  return receiver;
}
