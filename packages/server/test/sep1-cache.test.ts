import type { FastifyInstance } from "fastify";
import { Keypair, Networks, Transaction } from "@stellar/stellar-sdk";
import pg from "pg";
import { parse } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createPool } from "../src/db/pool.js";
import { createLogger } from "../src/logger.js";
import { createMerchant, type MerchantIn } from "../src/merchants/service.js";
import { verifyHomeDomain } from "../src/merchants/home-domain.js";
import { getMerchant, MERCHANT_CHANGES_CHANNEL, updateMerchant } from "../src/merchants/store.js";
import { LookupCache, type Found, type LookupCacheOptions } from "../src/lookup-cache.js";
import { TOML_MAX_AGE_MS } from "../src/sep1/routes.js";
import { randomAccount, TestClock } from "./support/app.js";
import { createTestDatabase, listenersUp, type TestDatabase } from "./support/db.js";
import { waitFor } from "./support/wait.js";

const config = loadConfig({ LOG_LEVEL: "silent" });

/** One Lumenpay process: its own pool (whose queries it counts), clock and, with `listen`, LISTEN connection. */
interface Instance {
  app: FastifyInstance;
  clock: TestClock;
  queries: () => number;
  close(): Promise<void>;
}

let db: TestDatabase;
let a: Instance;
let b: Instance;
/** Without a LISTEN connection, as behind a transaction pooler with no DATABASE_DIRECT_URL. */
let polling: Instance;

async function instance({ listen }: { listen: boolean }): Promise<Instance> {
  const pool = createPool(db.url, { ...config.db, poolMin: 0, poolMax: 4 });
  let queries = 0;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  pool.query = ((...args: unknown[]) => {
    queries++;
    return query(...args);
  }) as pg.Pool["query"];
  const clock = new TestClock();
  const app = await buildApp({ config, pool, clock, logger: createLogger("silent"), ...(listen && { directUrl: db.url }) });
  await app.ready();
  return {
    app,
    clock,
    queries: () => queries,
    async close() {
      await app.close();
      await pool.end();
    },
  };
}

beforeAll(async () => {
  db = await createTestDatabase();
  [a, b, polling] = await Promise.all([instance({ listen: true }), instance({ listen: true }), instance({ listen: false })]);
});
afterAll(async () => {
  await Promise.all([a, b, polling].map((i) => i?.close()));
  await db?.drop();
});

const LISTEN_QUERY = `listen "${MERCHANT_CHANGES_CHANNEL}"`;

/** Both instances' LISTEN connections are up: a notification sent now reaches them. */
const bothListening = () => listenersUp(db, MERCHANT_CHANGES_CHANNEL, 2);

/**
 * Returns once `i` has handled every notification committed before this call (a merchant's creation
 * notifies too, and may arrive late on a loaded machine): notifications arrive in commit order, so
 * seeing the effect of a marker's sent now proves the earlier ones were handled.
 */
async function notificationsHandled(i: Instance): Promise<void> {
  const marker = await merchant({ name: "Marker" });
  expect(orgName((await byId(i, marker.merchant.id)).body)).toBe("Marker");
  await updateMerchant(db.pool, marker.merchant.id, { ...marker.merchant, name: "Marker seen" }, new Date());
  await db.pool.query("select pg_notify($1, $2)", [MERCHANT_CHANGES_CHANNEL, marker.merchant.id]);
  await waitFor(async () => orgName((await byId(i, marker.merchant.id)).body) === "Marker seen", "the marker's notification");
}

/** A merchant created by the operator: its home domain (if any) is verified at once. */
async function merchant(input: Partial<MerchantIn> = {}) {
  const created = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()], ...input }, new Date(), config);
  return { ...created, auth: { authorization: `Bearer ${created.secret}` } };
}

const byHost = (i: Instance, host: string) => i.app.inject({ method: "GET", url: "/.well-known/stellar.toml", headers: { host } });
const byId = (i: Instance, id: string) => i.app.inject({ method: "GET", url: `/.well-known/stellar.toml?merchant_id=${id}` });
const orgName = (body: string) => (parse(body) as { DOCUMENTATION: { ORG_NAME: string } }).DOCUMENTATION.ORG_NAME;

describe("stellar.toml served from memory", () => {
  it("serves a change made through another instance once its NOTIFY arrives, clocks standing still", async () => {
    const m = await merchant({ name: "Before", home_domain: "shop.example" });
    await bothListening();
    expect(orgName((await byHost(b, "shop.example")).body)).toBe("Before");
    // Cached as naming nobody, until the change below makes it name the merchant.
    expect((await byHost(b, "localhost:7001")).statusCode).toBe(404);

    const patched = await a.app.inject({ method: "PATCH", url: "/v1/merchant", headers: m.auth, payload: { name: "After", home_domain: "localhost:7001" } });
    expect(patched.statusCode, patched.body).toBe(200);

    await waitFor(async () => (await byHost(b, "localhost:7001")).statusCode === 200, "b to serve the new home domain");
    expect(orgName((await byHost(b, "localhost:7001")).body)).toBe("After");
    expect((await byHost(b, "shop.example")).statusCode).toBe(404);
  });

  it("drops everything when the LISTEN connection comes back, as notifications may have been lost", async () => {
    const m = await merchant({ name: "Before", home_domain: "reconnect.example" });
    await bothListening();
    await notificationsHandled(b);
    expect(orgName((await byHost(b, "reconnect.example")).body)).toBe("Before");
    // Written without a notification: b keeps serving what it cached.
    await updateMerchant(db.pool, m.merchant.id, { ...m.merchant, name: "After" }, new Date());
    expect(orgName((await byHost(b, "reconnect.example")).body)).toBe("Before");

    await db.pool.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'lumenpay-listener'",
    );
    await waitFor(async () => orgName((await byHost(b, "reconnect.example")).body) === "After", "b to drop its files on reconnecting");
  });

  it("without LISTEN, serves a change once the cached file is TOML_MAX_AGE_MS old, and not before", async () => {
    const m = await merchant({ name: "Before" });
    const before = await byId(polling, m.merchant.id);
    expect(orgName(before.body)).toBe("Before");

    const patched = await a.app.inject({ method: "PATCH", url: "/v1/merchant", headers: m.auth, payload: { name: "After" } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect((await byId(polling, m.merchant.id)).body).toBe(before.body);
    polling.clock.advance(TOML_MAX_AGE_MS - 1);
    expect((await byId(polling, m.merchant.id)).body).toBe(before.body);

    polling.clock.advance(1);
    const after = await byId(polling, m.merchant.id);
    expect(orgName(after.body)).toBe("After");
    expect(after.headers.etag).not.toBe(before.headers.etag);
  });

  it("queries the database once per key and maximum age, for a merchant and for a host naming nobody alike", async () => {
    const m = await merchant({ home_domain: "counted.example" });
    const burst = async (request: () => ReturnType<typeof byHost>, status: number) => {
      const before = polling.queries();
      const answers = await Promise.all(Array.from({ length: 20 }, request));
      expect(answers.map((r) => r.statusCode)).toEqual(Array(20).fill(status));
      return polling.queries() - before;
    };

    // Concurrent misses share one read; later requests read nothing.
    expect(await burst(() => byHost(polling, "counted.example"), 200)).toBe(1);
    expect(await burst(() => byHost(polling, "counted.example"), 200)).toBe(0);
    expect(await burst(() => byId(polling, m.merchant.id), 200)).toBe(1);
    expect(await burst(() => byHost(polling, "unknown.example"), 404)).toBe(1);
    expect(await burst(() => byHost(polling, "unknown.example"), 404)).toBe(0);
    // Longer than any home domain: answered without a read, and not kept.
    expect(await burst(() => byHost(polling, `${"x".repeat(300)}.example`), 404)).toBe(0);

    polling.clock.advance(TOML_MAX_AGE_MS);
    expect(await burst(() => byHost(polling, "counted.example"), 200)).toBe(1);
    expect(await burst(() => byHost(polling, "unknown.example"), 404)).toBe(1);
    expect(await burst(() => byHost(polling, "unknown.example"), 404)).toBe(0);
  });
});

describe("announcing merchant changes", () => {
  it("notifies every committed write that can change a file, and no refused one", async () => {
    const listener = new pg.Client({ connectionString: db.url });
    const heard: string[] = [];
    listener.on("notification", (n) => heard.push(n.payload!));
    await listener.connect();
    await listener.query(LISTEN_QUERY);
    const m = await merchant();
    const count = (id: string) => heard.filter((payload) => payload === id).length;
    const heardTimes = (id: string, times: number) => waitFor(async () => count(id) >= times, `${times} notification(s) for ${id}`);
    try {
      await heardTimes(m.merchant.id, 1);

      const other = await merchant();
      const refused = await a.app.inject({ method: "PATCH", url: "/v1/merchant", headers: m.auth, payload: { accounts: other.merchant.accounts } });
      expect(refused.statusCode).toBe(409);
      // Notifications arrive in commit order: once this one is heard, one from the refused write would have been.
      await a.app.inject({ method: "PATCH", url: "/v1/merchant", headers: other.auth, payload: { name: "Sentinel" } });
      await heardTimes(other.merchant.id, 2);
      expect(count(m.merchant.id)).toBe(1);

      const claimed = await a.app.inject({ method: "PATCH", url: "/v1/merchant", headers: m.auth, payload: { home_domain: "announced.example" } });
      expect(claimed.json().home_domain_verification.status).toBe("pending");
      await heardTimes(m.merchant.id, 2);

      const record = claimed.json().home_domain_verification.record.value as string;
      const current = (await getMerchant(db.pool, m.merchant.id))!;
      const lookupTxt = async (names: string[]) => names.map(() => ({ records: [record] }));
      await verifyHomeDomain(db.pool, current, { rules: config, lookupTxt, clock: a.clock, log: a.app.log });
      await heardTimes(m.merchant.id, 3);

      const owner = Keypair.random();
      const issued = await a.app.inject({ method: "POST", url: "/v1/merchant/accounts/challenge", headers: m.auth, payload: { account: owner.publicKey() } });
      const tx = new Transaction(issued.json().transaction as string, Networks.TESTNET);
      tx.sign(owner);
      const attached = await a.app.inject({ method: "POST", url: "/v1/merchant/accounts", headers: m.auth, payload: { transaction: tx.toXDR() } });
      expect(attached.statusCode, attached.body).toBe(200);
      await heardTimes(m.merchant.id, 4);
    } finally {
      await listener.end();
    }
  });
});

describe("LookupCache", () => {
  const limits: Omit<LookupCacheOptions<string>, "load"> = { clock: new TestClock(), maxAgeMs: 1_000, maxEntries: 100, maxBytes: 100, sizeOf: () => 1 };

  /** A cache over `data` (key → merchant id and value) that records the keys it reads. */
  function cacheOver(data: Map<string, { merchantId: string; value: string }>, options: Partial<typeof limits> = {}) {
    const reads: string[] = [];
    const load = async (key: string): Promise<Found<string>> => {
      reads.push(key);
      return data.get(key) ?? null;
    };
    return { cache: new LookupCache<string>({ ...limits, ...options, load }), reads };
  }

  it("keeps at most maxEntries keys, unknown ones included, evicting the least recently used", async () => {
    const { cache, reads } = cacheOver(new Map([["known", { merchantId: "mer_1", value: "file" }]]), { maxEntries: 3 });
    expect(await cache.get("known")).toBe("file");
    for (let i = 0; i < 50; i++) {
      expect(await cache.get(`unknown-${i}.example`)).toBeNull();
      // Used between misses: the most recently used key stays.
      expect(await cache.get("known")).toBe("file");
    }
    expect(cache.size).toBe(3);
    reads.length = 0;
    expect(await cache.get("known")).toBe("file");
    expect(await cache.get("unknown-49.example")).toBeNull();
    expect(reads).toEqual([]);
    expect(await cache.get("unknown-0.example")).toBeNull();
    expect(reads).toEqual(["unknown-0.example"]);
  });

  it("keeps at most maxBytes, and never an entry larger than that", async () => {
    const data = new Map(["a", "b", "c", "huge"].map((k) => [k, { merchantId: `mer_${k}`, value: k === "huge" ? "x".repeat(50) : "x".repeat(10) }]));
    const { cache } = cacheOver(data, { maxBytes: 25, sizeOf: (_key, value) => value?.length ?? 0 });
    for (const key of ["a", "b", "c"]) await cache.get(key);
    expect(cache.size).toBe(2);
    await cache.get("huge");
    expect(cache.size).toBe(2);
  });

  it("drops a merchant's keys and every key naming nobody, and no other merchant's", async () => {
    const data = new Map([
      ["shop.example", { merchantId: "mer_1", value: "one" }],
      ["id:mer_1", { merchantId: "mer_1", value: "one" }],
      ["other.example", { merchantId: "mer_2", value: "two" }],
    ]);
    const keys = [...data.keys(), "nobody.example"];
    const { cache, reads } = cacheOver(data);
    for (const key of keys) await cache.get(key);
    reads.length = 0;
    cache.dropMerchant("mer_1");
    for (const key of keys) await cache.get(key);
    expect(reads).toEqual(["shop.example", "id:mer_1", "nobody.example"]);
  });

  it("does not keep a read begun before an invalidation, which may have seen the data before the change", async () => {
    let current = "old";
    const seen: string[] = [];
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    const cache = new LookupCache<string>({
      ...limits,
      async load(): Promise<Found<string>> {
        const value = current;
        seen.push(value);
        // The first read answers last, as a slow read that raced the change would.
        if (seen.length === 1) await firstHeld;
        return { merchantId: "mer_1", value };
      },
    });
    const first = cache.get("shop.example");
    current = "new";
    cache.dropMerchant("mer_1");
    expect(await cache.get("shop.example")).toBe("new");
    releaseFirst();
    expect(await first).toBe("old");
    expect(await cache.get("shop.example")).toBe("new");
    expect(seen).toEqual(["old", "new"]);
  });

  it("does not keep a failed read", async () => {
    let fail = true;
    const cache = new LookupCache<string>({
      ...limits,
      load: async () => {
        if (fail) throw new Error("database down");
        return { merchantId: "mer_1", value: "file" };
      },
    });
    await expect(cache.get("shop.example")).rejects.toThrow("database down");
    fail = false;
    expect(await cache.get("shop.example")).toBe("file");
  });
});
