import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { purgeApiKeyUsage } from "../src/merchants/store.js";
import { buildTestApp, seedMerchant, TestClock, type TestApp } from "./support/app.js";

/** The per-key limit holds across instances; requests without a valid key are limited per address. */

// Mid-minute, so a window does not end while a test runs.
const clock = new TestClock(new Date("2026-04-01T10:00:20.000Z"));
let first: TestApp;
let second: Awaited<ReturnType<typeof buildApp>>;
beforeAll(async () => {
  const env = { API_RATE_LIMIT_PER_MINUTE: "5", API_INVALID_KEY_LIMIT_PER_MINUTE: "3" };
  first = await buildTestApp({ clock, env });
  // A second instance over the same database, as in a scaled-out deployment.
  second = await buildApp({ config: loadConfig({ LOG_LEVEL: "silent", ...env }), pool: first.db.pool, clock, logger: createLogger("silent") });
  await second.ready();
});
afterAll(async () => {
  await second?.close();
  await first?.close();
});

describe("the per-key limit", () => {
  it("counts a key's requests on every instance together, then answers 429 with Retry-After until the minute ends", async () => {
    const m = await seedMerchant(first);
    const get = (app: typeof second) => app.inject({ method: "GET", url: "/v1/merchant", headers: m.auth });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(first.app)).statusCode, (await get(second)).statusCode);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = await get(first.app);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe("rate_limited");
    expect(limited.headers["retry-after"]).toBe("40");

    // Another key has its own window.
    const other = await seedMerchant(first);
    expect((await second.inject({ method: "GET", url: "/v1/merchant", headers: other.auth })).statusCode).toBe(200);

    clock.advance(60_000);
    try {
      expect((await get(second)).statusCode).toBe(200);
      // Windows that ended are purged; the current one stays.
      expect(await purgeApiKeyUsage(first.db.pool, clock.now())).toBeGreaterThanOrEqual(1);
      const { rows } = await first.db.pool.query("select window_start from api_key_usage");
      expect(rows.map((r) => r.window_start)).toContainEqual(new Date("2026-04-01T10:01:00.000Z"));
      expect(rows.map((r) => r.window_start)).not.toContainEqual(new Date("2026-04-01T10:00:00.000Z"));
    } finally {
      clock.advance(-60_000);
    }
  });
});

describe("requests without a valid key", () => {
  it("are limited per address before they reach the database, while a key already seen valid still works", async () => {
    const m = await seedMerchant(first);
    // Seen valid on this instance before the address is blocked.
    expect((await second.inject({ method: "GET", url: "/v1/merchant", headers: m.auth })).statusCode).toBe(200);
    const guess = (n: number) => second.inject({ method: "GET", url: "/v1/merchant", headers: { authorization: `Bearer sk_guess${n}` } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await guess(i)).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429]);
    const blocked = await guess(9);
    expect(blocked.json().error.code).toBe("rate_limited");
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
    expect((await second.inject({ method: "GET", url: "/v1/merchant", headers: m.auth })).statusCode).toBe(200);
    // The limit is per address, per process: the other instance has not seen these guesses.
    expect((await first.app.inject({ method: "GET", url: "/v1/merchant", headers: { authorization: "Bearer sk_guess" } })).statusCode).toBe(401);
  });
});
