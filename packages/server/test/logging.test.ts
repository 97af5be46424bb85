import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { randomAccount } from "./support/app.js";
import { closedPort, startServerProcess, type ServerProcess } from "./support/process.js";

let db: TestDatabase;
let output = "";
let app: Awaited<ReturnType<typeof buildApp>>;
beforeAll(async () => {
  db = await createTestDatabase();
  const sink = new Writable({
    write(chunk, _encoding, done) {
      output += String(chunk);
      done();
    },
  });
  const config = loadConfig({ LOG_LEVEL: "info", WEBHOOK_ALLOW_HTTP: "true" });
  app = await buildApp({ config, pool: db.pool, clock: { now: () => new Date() }, logger: createLogger("info", sink) });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await db.drop();
});

describe("logs", () => {
  it("carry a request id per request and never an API key, an Authorization header or a webhook secret", async () => {
    const { secret: apiKey } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date());
    const created = await app.inject({
      method: "POST",
      url: "/v1/webhook_endpoints",
      headers: { authorization: `Bearer ${apiKey}`, "idempotency-key": "log-test-1" },
      payload: { url: "https://example.com/hooks", enabled_events: ["*"] },
    });
    expect(created.statusCode).toBe(201);
    const webhookSecret = created.json().secret as string;
    await app.inject({ method: "GET", url: "/v1/merchant", headers: { authorization: `Bearer ${apiKey}x` } });

    const lines = output.trim().split("\n").map((line) => JSON.parse(line));
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.filter((l) => l.req).every((l) => /^req_/.test(l.reqId))).toBe(true);
    expect(output).not.toContain(apiKey);
    expect(output).not.toContain(webhookSecret);
    expect(output).not.toContain("Bearer");
  });

  it("redact credentials even when code logs them by mistake", () => {
    output = "";
    app.log.info({ req: { headers: { authorization: "Bearer sk_leak" } }, endpoint: { secret: "whsec_leak" }, config: { webhookSigningSeed: "SLEAK" } }, "oops");
    expect(output).toContain("[redacted]");
    expect(output).not.toMatch(/sk_leak|whsec_leak|SLEAK/);
  });
});

/** A logger at `level` writing into an array of lines. */
function capture(level: string, format?: "json" | "pretty") {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: createLogger(level, sink, format), lines };
}

describe("expected failures at warn", () => {
  const refused = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }) });

  it("are one line with the reason, the stack only at debug; errors keep theirs", () => {
    const atInfo = capture("info");
    atInfo.log.warn({ err: refused, account: "GABC" }, "payment ingestion failed; reconnecting");
    atInfo.log.error({ err: new Error("a bug") }, "unexpected");
    const [warn, error] = atInfo.lines.map((line) => JSON.parse(line));
    expect(atInfo.lines).toHaveLength(2);
    expect(warn).toMatchObject({ level: 40, account: "GABC", reason: "fetch failed: connect ECONNREFUSED 127.0.0.1:9", msg: "payment ingestion failed; reconnecting" });
    expect(warn).not.toHaveProperty("err");
    expect(error.err.stack).toContain("a bug");

    const atDebug = capture("debug");
    atDebug.log.warn({ err: refused, account: "GABC" }, "payment ingestion failed; reconnecting");
    const details = atDebug.lines.map((line) => JSON.parse(line));
    expect(details.map((d) => d.level)).toEqual([40, 20]);
    expect(details[1]).toMatchObject({ account: "GABC", msg: "payment ingestion failed; reconnecting" });
    expect(details[1].err.stack).toContain("fetch failed");
  });

  it("print readably with LOG_FORMAT=pretty, still redacted", () => {
    const { log, lines } = capture("info", "pretty");
    log.info({ endpoint: { secret: "whsec_leak" } }, "listening");
    const text = lines.join("");
    expect(text).toMatch(/INFO.*listening/);
    expect(() => JSON.parse(text)).toThrow();
    expect(text).not.toContain("whsec_leak");
  });
});

describe("lumenpay start with Horizon unreachable", () => {
  let server: ServerProcess | undefined;
  afterAll(async () => {
    server?.child.kill("SIGKILL");
  });

  it("warns in one line with the reason, not a stack trace", async () => {
    await createMerchant(db.pool, { name: "Watched", email: "w@acme.test", accounts: [randomAccount()] }, new Date());
    server = startServerProcess({
      DATABASE_URL: db.url,
      PORT: "0",
      LOG_LEVEL: "info",
      LUMENPAY_ROLES: "ingest",
      STELLAR_NETWORK: "testnet",
      HORIZON_URL: `http://127.0.0.1:${await closedPort()}`,
    });
    const line = await server.waitForLog((l) => l.msg === "payment ingestion failed; reconnecting");
    expect(line.reason).toMatch(/ECONNREFUSED/);
    expect(line).not.toHaveProperty("err");
    expect(server.stderr()).toBe("");
  });
});

