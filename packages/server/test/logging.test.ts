import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { randomAccount } from "./support/app.js";

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
