import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { API_KEY_MAX_AGE_MS } from "../src/http/auth.js";
import { createLogger } from "../src/logger.js";
import { createApiKey, createMerchant, revokeApiKey } from "../src/merchants/service.js";
import { MERCHANT_CHANGES_CHANNEL } from "../src/merchants/store.js";
import { randomAccount, TestClock } from "./support/app.js";
import { createTestDatabase, listenersUp, type TestDatabase } from "./support/db.js";
import { waitFor } from "./support/wait.js";

/**
 * With a LISTEN connection, API keys are read at most once a second (API_KEY_MAX_AGE_MS) per instance and
 * dropped when announced changed. Both instances' clocks stand still unless a test moves them, so an entry
 * only expires when the test says so: what changes before then is the announcement's doing.
 */
const LIMIT = 100;
const config = loadConfig({ LOG_LEVEL: "silent", API_RATE_LIMIT_PER_MINUTE: String(LIMIT) });
let db: TestDatabase;
let clock: TestClock;
let a: FastifyInstance;
let b: FastifyInstance;

beforeAll(async () => {
  db = await createTestDatabase();
  // Mid-minute, so a rate-limit window does not end while a test runs.
  clock = new TestClock(new Date("2026-05-01T10:00:20.000Z"));
  const instance = async () => {
    const app = await buildApp({ config, pool: db.pool, clock, logger: createLogger("silent"), directUrl: db.url });
    await app.ready();
    return app;
  };
  [a, b] = await Promise.all([instance(), instance()]);
  await listenersUp(db, MERCHANT_CHANGES_CHANNEL, 2);
});
afterAll(async () => {
  await Promise.all([a, b].map((app) => app?.close()));
  await db?.drop();
});

const me = (app: FastifyInstance, auth: Record<string, string>) => app.inject({ method: "GET", url: "/v1/merchant", headers: auth });

let marker: Awaited<ReturnType<typeof createMerchant>> | undefined;
/**
 * Returns once both instances have handled every announcement committed before the call (creating a
 * merchant announces it, and may arrive after a test's first request on a loaded machine): announcements
 * arrive in commit order, so seeing a marker's, sent now, proves the earlier ones were handled.
 */
async function announcementsHandled(): Promise<void> {
  marker ??= await createMerchant(db.pool, { name: "Marker", email: "marker@acme.test", accounts: [randomAccount()] }, clock.now());
  const { id } = marker.merchant;
  const auth = { authorization: `Bearer ${marker.secret}` };
  const name = `Marker ${Math.random()}`;
  await db.pool.query("update merchants set name = $2 where id = $1", [id, name]);
  await db.pool.query("select pg_notify($1, $2)", [MERCHANT_CHANGES_CHANNEL, id]);
  for (const app of [a, b]) await waitFor(async () => (await me(app, auth)).json().name === name, "the marker's announcement");
}

async function merchant() {
  const { merchant, secret } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, clock.now());
  await announcementsHandled();
  return { merchant, secret, auth: { authorization: `Bearer ${secret}` } };
}
const usage = async (keyPrefix: string) =>
  (
    await db.pool.query<{ requests: number }>(
      "select coalesce(sum(u.requests), 0)::int as requests from api_key_usage u join api_keys k on k.id = u.key_id where k.prefix = $1",
      [keyPrefix],
    )
  ).rows[0]!.requests;

describe("API keys cached per instance", () => {
  it("stop working on every instance as soon as a revocation is announced", async () => {
    const m = await merchant();
    const { key, secret } = await createApiKey(db.pool, m.merchant.id, null);
    const auth = { authorization: `Bearer ${secret}` };
    expect([(await me(a, auth)).statusCode, (await me(b, auth)).statusCode]).toEqual([200, 200]);
    await revokeApiKey(db.pool, key.id, clock.now());
    await waitFor(async () => (await me(a, auth)).statusCode === 401 && (await me(b, auth)).statusCode === 401, "the revocation to reach both instances");
    expect((await me(a, m.auth)).statusCode).toBe(200);
  });

  it("stop working within API_KEY_MAX_AGE_MS when the announcement is lost", async () => {
    const m = await merchant();
    expect((await me(a, m.auth)).statusCode).toBe(200);
    // Revoked behind the application's back: nothing is announced.
    await db.pool.query("update api_keys set revoked_at = now() where merchant_id = $1", [m.merchant.id]);
    expect((await me(a, m.auth)).statusCode).toBe(200);
    clock.advance(API_KEY_MAX_AGE_MS);
    expect((await me(a, m.auth)).statusCode).toBe(401);
  });

  it("refuse a key whose expiry passes while it is cached", async () => {
    const m = await merchant();
    const { secret } = await createApiKey(db.pool, m.merchant.id, new Date(clock.now().getTime() + 100));
    const auth = { authorization: `Bearer ${secret}` };
    expect((await me(a, auth)).statusCode).toBe(200);
    clock.advance(100);
    expect((await me(a, auth)).statusCode).toBe(401);
  });

  it("count each instance's requests at once there, and on every instance at the next read", async () => {
    const m = await merchant();
    const prefix = m.secret.slice(0, 10);
    const statuses = async (app: FastifyInstance, n: number) => {
      const out = new Set<number>();
      for (let i = 0; i < n; i++) out.add((await me(app, m.auth)).statusCode);
      return [...out];
    };
    expect(await statuses(a, LIMIT - 2)).toEqual([200]);
    // One read sent one request; the others are counted on `a` alone so far.
    expect(await usage(prefix)).toBe(1);
    expect(await statuses(b, 1)).toEqual([200]);
    expect(await usage(prefix)).toBe(2);

    clock.advance(API_KEY_MAX_AGE_MS);
    // `a` reads again, sending what it counted and this one: the limit, reached.
    expect(await statuses(a, 1)).toEqual([200]);
    expect(await usage(prefix)).toBe(LIMIT);
    // `b`, which served two, reads again and learns of `a`'s: one more is over the limit.
    const limited = await me(b, m.auth);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe("rate_limited");
    const windowEnds = Math.ceil(clock.now().getTime() / 60_000) * 60_000;
    expect(limited.headers["retry-after"]).toBe(String(Math.ceil((windowEnds - clock.now().getTime()) / 1000)));
    expect(await usage(prefix)).toBe(LIMIT + 1);
    // `a` counts its own at once, without a read.
    expect(await statuses(a, 1)).toEqual([429]);
    expect(await usage(prefix)).toBe(LIMIT + 1);
  });

  it("let a merchant's write be read back at once on the same instance, and soon on the others", async () => {
    const m = await merchant();
    expect((await me(a, m.auth)).json().name).toBe("Acme");
    expect((await me(b, m.auth)).json().name).toBe("Acme");
    const patch = (name: string) => a.inject({ method: "PATCH", url: "/v1/merchant", headers: m.auth, payload: { name } });
    expect((await patch("Acme Two")).statusCode).toBe(200);
    expect((await me(a, m.auth)).json().name).toBe("Acme Two");
    // A second write starts from the first, not from a cached copy: nothing is undone.
    expect((await a.inject({ method: "PATCH", url: "/v1/merchant", headers: m.auth, payload: { email: "two@acme.test" } })).json()).toMatchObject({
      name: "Acme Two",
      email: "two@acme.test",
    });
    await waitFor(async () => (await me(b, m.auth)).json().email === "two@acme.test", "the change to reach the other instance");
    expect((await me(b, m.auth)).json().name).toBe("Acme Two");
  });
});
