import { once } from "node:events";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { startServer } from "../src/server.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startServerProcess, type ServerProcess } from "./support/process.js";

let db: TestDatabase;
let apiKey: string;
let merchantId: string;
const children: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  const { merchant, secret } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date());
  apiKey = secret;
  merchantId = merchant.id;
});
afterEach(() => {
  // A failed test must not leave a server behind.
  for (const child of children.splice(0)) if (child.child.exitCode === null) child.child.kill("SIGKILL");
});
afterAll(() => db.drop());

/** `lumenpay start` on a free port; resolves once it listens. */
async function startLumenpay(env: Record<string, string>) {
  const server = startServerProcess({ DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: "info", ...env });
  children.push(server);
  const ready = await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number");
  return { server, port: ready.port as number };
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Everything the server sends on `socket` until it closes the connection, parsed as one HTTP response. */
async function responseUntilClose(socket: net.Socket): Promise<RawResponse | undefined> {
  let raw = "";
  socket.setEncoding("utf8").on("data", (d: string) => (raw += d));
  await once(socket, "close");
  if (raw === "") return undefined;
  const [head = "", body = ""] = raw.split("\r\n\r\n");
  const [statusLine = "", ...headerLines] = head.split("\r\n");
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  return socket;
}

/** Resolves once connecting to `port` is refused: the server has stopped listening. */
async function refusedAt(port: number): Promise<void> {
  for (;;) {
    try {
      (await connect(port)).destroy();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ECONNREFUSED") return;
      throw error;
    }
    await sleep(20);
  }
}

/** Sends the headers and the first bytes of a PATCH /v1/merchant whose body is still to come. */
function beginSlowPatch(socket: net.Socket, body: string, firstBytes: number): void {
  socket.write(
    [
      "PATCH /v1/merchant HTTP/1.1",
      "Host: 127.0.0.1",
      `Authorization: Bearer ${apiKey}`,
      "Content-Type: application/json",
      `Content-Length: ${Buffer.byteLength(body)}`,
      "",
      body.slice(0, firstBytes),
    ].join("\r\n"),
  );
}

const incomingPatch = (line: Record<string, unknown>) =>
  line.msg === "incoming request" && (line.req as { method?: string } | undefined)?.method === "PATCH";

describe("lumenpay start: graceful shutdown", () => {
  it("finishes a request in flight at SIGTERM, refuses new connections and exits 0", async () => {
    // Far longer than the test timeout: the test fails if anything holds shutdown up.
    const { server, port } = await startLumenpay({ SHUTDOWN_TIMEOUT_MS: "120000" });
    const body = JSON.stringify({ name: "Renamed during shutdown" });
    const socket = await connect(port);
    const response = responseUntilClose(socket);
    beginSlowPatch(socket, body, 6);
    await server.waitForLog(incomingPatch);

    server.child.kill("SIGTERM");
    await refusedAt(port);
    // The rest of the body, in chunks, while the server is shutting down.
    for (const chunk of [body.slice(6, 14), body.slice(14, 20), body.slice(20)]) {
      await sleep(300);
      socket.write(chunk);
    }

    const res = await response;
    expect(res?.status, server.stderr()).toBe(200);
    expect(JSON.parse(res!.body)).toMatchObject({ id: merchantId, name: "Renamed during shutdown" });
    expect(res?.headers.connection).toBe("close");
    expect(await server.exited, server.problems()).toEqual({ code: 0, signal: null });
    await server.waitForLog((line) => line.msg === "shutdown complete");
    const { rows } = await db.pool.query("select name from merchants where id = $1", [merchantId]);
    expect(rows[0]?.name).toBe("Renamed during shutdown");
  });

  it("does not wait for idle keep-alive connections", async () => {
    const { server, port } = await startLumenpay({ SHUTDOWN_TIMEOUT_MS: "120000" });
    const socket = await connect(port);
    let received = "";
    socket.setEncoding("utf8").on("data", (d: string) => (received += d));
    socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n");
    while (!received.includes('"status":"ok"')) await once(socket, "data");
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    expect(received.toLowerCase()).toContain("connection: keep-alive");

    const closed = once(socket, "close");
    server.child.kill("SIGTERM");
    expect(await server.exited, server.problems()).toEqual({ code: 0, signal: null });
    await closed;
  });

  it("closes connections still busy after SHUTDOWN_TIMEOUT_MS and still exits 0", async () => {
    const { server, port } = await startLumenpay({ SHUTDOWN_TIMEOUT_MS: "300" });
    const socket = await connect(port);
    const response = responseUntilClose(socket);
    beginSlowPatch(socket, JSON.stringify({ name: "Never finished" }), 3);
    await server.waitForLog(incomingPatch);

    server.child.kill("SIGTERM");
    await server.waitForLog((line) => typeof line.msg === "string" && line.msg.startsWith("requests still running after 300 ms"));
    expect(await response).toBeUndefined();
    expect(await server.exited, server.problems()).toEqual({ code: 0, signal: null });
    const { rows } = await db.pool.query("select name from merchants where id = $1", [merchantId]);
    expect(rows[0]?.name).not.toBe("Never finished");
  });

  it("exits 1 at once on a second signal during shutdown", async () => {
    const { server, port } = await startLumenpay({ SHUTDOWN_TIMEOUT_MS: "120000" });
    const socket = await connect(port);
    beginSlowPatch(socket, JSON.stringify({ name: "Stuck" }), 3);
    await server.waitForLog(incomingPatch);

    server.child.kill("SIGTERM");
    await server.waitForLog((line) => line.msg === "SIGTERM received; shutting down (in-flight requests get up to 120000 ms)");
    server.child.kill("SIGINT");
    expect(await server.exited).toEqual({ code: 1, signal: null });
    socket.destroy();
  });
});

describe("lumenpay start: failing to start", () => {
  it("exits 1 with one readable line when the port is taken", async () => {
    const blocker = net.createServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const server = startServerProcess({ DATABASE_URL: db.url, PORT: String(port), LOG_LEVEL: "silent" });
      children.push(server);
      expect(await server.exited).toEqual({ code: 1, signal: null });
      expect(server.stderr().trim()).toMatch(/^lumenpay start: .*EADDRINUSE/);
      expect(server.stderr()).not.toMatch(/^\s+at /m);
    } finally {
      blocker.close();
    }
  });
});

describe("startServer in process", () => {
  it("close() stops listening, ends the pool and leaves no connection to the database", async () => {
    // A database of its own, which only the server connects to.
    const own = await createTestDatabase();
    const config = loadConfig({ DATABASE_URL: own.url, PORT: "0", LOG_LEVEL: "silent", POOL_MONITORING_ENABLED: "true" });
    const running = await startServer({ config, logger: createLogger("silent") });
    const admin = new pg.Client({ connectionString: own.url });
    await admin.connect();
    const connections = async () => {
      const { rows } = await admin.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
      );
      return rows[0]?.n;
    };
    try {
      expect((await fetch(`${running.url}/ready`)).status).toBe(200);
      expect(await connections()).toBeGreaterThan(0);

      await running.close();
      expect(running.app.server.listening).toBe(false);
      await expect(fetch(`${running.url}/health`)).rejects.toThrow();
      // A backend leaves pg_stat_activity a moment after its client has said goodbye.
      await expect.poll(connections, { timeout: 5000 }).toBe(0);
      // Idempotent: a second close (say, a signal after a test's close) resolves the same way.
      await running.close();
    } finally {
      await admin.end();
      await own.drop();
    }
  });
});
