import { Networks } from "@stellar/stellar-sdk";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { createRpcClient, type RpcClient, RpcError } from "../src/stellar/rpc-client.js";
import { closedPort } from "./support/process.js";

let local: LocalHorizon;
let rpc: RpcClient;
const servers: Server[] = [];
const SECRET_PATH = "/v1/key-5ecret";
const SECRET_QUERY = "?apikey=hunter2";

/** A server on port 0 answering every request with `handle`; closed after the file. */
async function serve(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<string> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => handle(req, res, body));
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The error `call` fails with, checked to name the server by origin only. */
async function failure(url: string, call: (client: RpcClient) => Promise<unknown>, options: { timeoutMs?: number } = {}): Promise<RpcError> {
  const client = createRpcClient({ url: `${url}${SECRET_PATH}${SECRET_QUERY}`, timeoutMs: options.timeoutMs });
  try {
    const error = await call(client).then(
      () => expect.fail("the call succeeded"),
      (error: unknown) => error,
    );
    expect(error).toBeInstanceOf(RpcError);
    const { message } = error as RpcError;
    expect(message).toContain(new URL(url).origin);
    expect(message).not.toMatch(/5ecret|hunter2|apikey/);
    return error as RpcError;
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  local = await startLocalHorizon({ port: 0, rpcPort: 0 });
  rpc = createRpcClient({ url: local.rpcUrl! });
  await local.pay({ from: local.root, to: (await local.newAccount("10")).publicKey(), amount: "1" });
});
afterAll(async () => {
  await rpc?.close();
  await local?.close();
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

describe("createRpcClient against the local network's RPC", () => {
  it("reads health, the latest ledger, the network and a missing transaction in the wire's shapes", async () => {
    const health = await rpc.getHealth();
    expect(health).toMatchObject({ status: "healthy", oldestLedger: 1, ledgerRetentionWindow: health.latestLedger });
    expect(await rpc.getLatestLedger()).toMatchObject({ sequence: health.latestLedger, id: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await rpc.getNetwork()).toMatchObject({ passphrase: Networks.STANDALONE, protocolVersion: expect.any(Number) });
    expect(await rpc.getTransaction("ab".repeat(32))).toMatchObject({ status: "NOT_FOUND", txHash: "ab".repeat(32) });
  });

  it("pages getEvents from a ledger, then from its cursor", async () => {
    const first = await rpc.getEvents({ startLedger: 1, filters: [], limit: 1 });
    expect(first.events).toHaveLength(1);
    const rest = await rpc.getEvents({ cursor: first.cursor, filters: [], limit: 10_000 });
    expect(rest.events.length).toBeGreaterThan(0);
    expect(rest.events[0]!.id > first.events[0]!.id).toBe(true);
    const bounded = await rpc.getEvents({ startLedger: 1, endLedger: 2, filters: [] });
    expect(bounded.events.every((event) => event.ledger === 1)).toBe(true);
  });

  it("throws a JSON-RPC error as an RpcError with its code", async () => {
    const error = await failure(local.rpcUrl!, (client) => client.getTransaction("abc"));
    expect(error).toMatchObject({ kind: "rpc", code: -32602 });
    expect(error.message).toContain("unexpected hash length (3)");
    await expect(rpc.getEvents({ startLedger: 1_000_000, filters: [] })).rejects.toMatchObject({ kind: "rpc", code: -32600 });
  });
});

describe("createRpcClient's failures", () => {
  it("reports an HTTP error status", async () => {
    const url = await serve((_req, res) => res.writeHead(500).end("upstream at /v1/key-5ecret failed"));
    expect(await failure(url, (client) => client.getHealth())).toMatchObject({ kind: "http", status: 500, code: undefined });
  });

  it("reports a refused connection as a transport error", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const error = await failure(url, (client) => client.getNetwork());
    expect(error.kind).toBe("transport");
    expect(error.message).toContain("ECONNREFUSED");
  });

  it("gives up after the timeout, and when the caller aborts", async () => {
    const url = await serve(() => undefined);
    const started = performance.now();
    expect(await failure(url, (client) => client.getLatestLedger(), { timeoutMs: 200 })).toMatchObject({ kind: "timeout" });
    expect(performance.now() - started).toBeLessThan(5_000);
    const aborted = await failure(url, (client) => client.getLatestLedger({ signal: AbortSignal.timeout(50) }));
    expect(aborted.kind).toBe("aborted");
  });

  it("refuses an answer that is not a JSON-RPC response to the call", async () => {
    const notJson = await serve((_req, res) => res.writeHead(200).end("<html>"));
    expect(await failure(notJson, (client) => client.getHealth())).toMatchObject({ kind: "invalid_response" });
    const wrongId = await serve((_req, res) => res.writeHead(200).end(JSON.stringify({ jsonrpc: "2.0", id: 999, result: {} })));
    expect(await failure(wrongId, (client) => client.getHealth())).toMatchObject({ kind: "invalid_response" });
  });

  it("sends path, query, headers and the URL's credentials; refuses calls once closed", async () => {
    const seen: Array<{ url?: string; authorization?: string; key?: string; body: unknown }> = [];
    const url = await serve((req, res, body) => {
      seen.push({ url: req.url, authorization: req.headers.authorization, key: req.headers["x-api-key"] as string, body: JSON.parse(body) });
      const { id } = JSON.parse(body) as { id: number };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id, result: { events: [], cursor: "c" } }));
    });
    const { host } = new URL(url);
    const client = createRpcClient({ url: `http://us%40r:p%3Ass@${host}${SECRET_PATH}${SECRET_QUERY}`, headers: { "x-api-key": "k" } });
    await client.getEvents({ cursor: "0000000004294967296-0000000000", filters: [{ type: "contract" }], limit: 5 });
    expect(seen).toEqual([
      {
        url: `${SECRET_PATH}${SECRET_QUERY}`,
        authorization: `Basic ${Buffer.from("us@r:p:ss").toString("base64")}`,
        key: "k",
        body: { jsonrpc: "2.0", id: 1, method: "getEvents", params: { filters: [{ type: "contract" }], pagination: { cursor: "0000000004294967296-0000000000", limit: 5 } } },
      },
    ]);
    await client.close();
    await expect(client.getHealth()).rejects.toMatchObject({ kind: "transport", message: expect.stringContaining("closed") });
    expect(() => createRpcClient({ url: "ftp://example.com" })).toThrow(TypeError);
  });
});
