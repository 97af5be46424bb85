import http from "node:http";
import https from "node:https";
import { parseConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { MemoryOrderStore } from "../../src/orders.js";
import { startReceiver, type Receiver } from "../../src/server.js";
import { SECRET } from "./fixtures.js";

export type LogLine = Record<string, unknown> & { msg: string; kind?: string };

export interface TestReceiver extends Receiver {
  orders: MemoryOrderStore;
  logs: LogLine[];
  /** Every log line as written, to check that no secret or signature ever reaches it. */
  rawLogs(): string;
}

/**
 * A real receiver on 127.0.0.1, port 0, configured through the same `parseConfig` as `npm start`,
 * with its JSON log lines kept in memory.
 */
export async function startTestReceiver(env: Record<string, string> = {}): Promise<TestReceiver> {
  const config = parseConfig({ WEBHOOK_SECRET: SECRET, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "debug", ...env });
  const raw: string[] = [];
  const log = createLogger(config.logLevel, { write: (line: string) => void raw.push(line) });
  const orders = new MemoryOrderStore();
  const receiver = await startReceiver(config, { log, orders });
  return {
    ...receiver,
    orders,
    get logs() {
      return raw.map((line) => JSON.parse(line) as LogLine);
    },
    rawLogs: () => raw.join(""),
  };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): Record<string, unknown>;
}

export interface RequestOptions {
  body?: string | Buffer;
  headers?: Record<string, string>;
  method?: string;
  /** Source address of the connection, e.g. 127.0.0.2 to appear as another client. */
  localAddress?: string;
  /** Trusted CA (the test's self-signed certificate) for https URLs. */
  ca?: string;
}

/** One request (POST unless told) over a fresh connection, with node:http(s) so the source address can be chosen. */
export function request(url: string, { body = "", headers = {}, method = "POST", localAddress, ca }: RequestOptions = {}): Promise<Answer> {
  const send = url.startsWith("https:") ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, localAddress, ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode!, headers: res.headers, body: text, json: () => JSON.parse(text) as Record<string, unknown> });
      });
      res.on("error", reject);
    });
    // The server may answer (413) and close before the whole body is written; the answer wins.
    req.on("error", reject);
    req.end(body);
  });
}

/** Posts a signed delivery, as Lumenpay would. */
export function send(url: string, delivery: { body: string; headers: Record<string, string> }, options: Omit<RequestOptions, "body" | "headers"> = {}): Promise<Answer> {
  return request(url, { body: delivery.body, headers: delivery.headers, ...options });
}

export const rejections = (receiver: TestReceiver) => receiver.logs.filter((line) => line.kind === "security.rejection");
