import { randomBytes } from "node:crypto";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryReplayStore, RedisReplayStore, type IoRedisLike, type ReplayStore } from "../src/index.js";

describe("MemoryReplayStore", () => {
  function clock() {
    let now = Date.parse("2026-01-01T00:00:00Z");
    return { now: () => now, advance: (seconds: number) => (now += seconds * 1000) };
  }

  it("is true for the first sighting of an id only", async () => {
    const store = new MemoryReplayStore();
    expect(await store.checkAndRemember("evt_1", 60)).toBe(true);
    expect(await store.checkAndRemember("evt_1", 60)).toBe(false);
    expect(await store.checkAndRemember("evt_2", 60)).toBe(true);
  });

  it("forgets an id once its TTL has passed, and not before", async () => {
    const time = clock();
    const store = new MemoryReplayStore({ now: time.now });
    await store.checkAndRemember("evt_1", 60);
    time.advance(59);
    expect(await store.checkAndRemember("evt_1", 60)).toBe(false);
    time.advance(1);
    expect(await store.checkAndRemember("evt_1", 60)).toBe(true);
  });

  it("remember replaces the TTL, forget drops the id", async () => {
    const time = clock();
    const store = new MemoryReplayStore({ now: time.now });
    await store.checkAndRemember("evt_1", 10);
    await store.remember("evt_1", 3600);
    time.advance(600);
    expect(await store.checkAndRemember("evt_1", 10)).toBe(false);
    await store.forget("evt_1");
    expect(await store.checkAndRemember("evt_1", 10)).toBe(true);
  });

  it("evicts the least recently used id beyond maxEntries", async () => {
    const store = new MemoryReplayStore({ maxEntries: 3 });
    for (const id of ["a", "b", "c"]) await store.checkAndRemember(id, 60);
    // Seeing "a" again makes "b" the least recently used.
    expect(await store.checkAndRemember("a", 60)).toBe(false);
    await store.checkAndRemember("d", 60);
    expect(store.size).toBe(3);
    expect(await store.checkAndRemember("a", 60)).toBe(false);
    expect(await store.checkAndRemember("c", 60)).toBe(false);
    expect(await store.checkAndRemember("b", 60)).toBe(true);
  });

  it("never holds more than maxEntries", async () => {
    const store = new MemoryReplayStore({ maxEntries: 100 });
    for (let i = 0; i < 1000; i++) await store.checkAndRemember(`evt_${i}`, 60);
    expect(store.size).toBe(100);
    expect(await store.checkAndRemember("evt_999", 60)).toBe(false);
    expect(await store.checkAndRemember("evt_0", 60)).toBe(true);
  });

  it("rejects a bad maxEntries or TTL with TypeError", async () => {
    expect(() => new MemoryReplayStore({ maxEntries: 0 })).toThrow(TypeError);
    await expect(new MemoryReplayStore().checkAndRemember("evt_1", 0)).rejects.toThrow(TypeError);
    await expect(new MemoryReplayStore().remember("evt_1", 1.5)).rejects.toThrow(TypeError);
  });
});

describe("RedisReplayStore against a real Redis", () => {
  const client = createClient({ url: "redis://127.0.0.1:6379" });
  const prefix = `lumenpay-test:${randomBytes(6).toString("hex")}:`;
  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
    await client.quit();
  });

  // The same Redis behind ioredis's calling convention, to check the store speaks it: ioredis
  // itself is not installed here. Options go to Redis verbatim, as ioredis sends them.
  const ioredisShaped = (): IoRedisLike => ({
    status: "ready",
    set: (key: string, value: string, ex: "EX", ttl: number, nx?: "NX") =>
      client.sendCommand(["SET", key, value, ex, String(ttl), ...(nx ? [nx] : [])]),
    del: (key: string) => client.del(key),
  });

  const stores: [string, () => ReplayStore][] = [
    ["a node-redis client", () => new RedisReplayStore({ client, prefix })],
    ["an ioredis-style client", () => new RedisReplayStore({ client: ioredisShaped(), prefix })],
    [
      "explicit commands",
      () =>
        new RedisReplayStore({
          prefix,
          commands: {
            set: async (key, value, ttl, nx) => (await client.set(key, value, nx ? { NX: true, EX: ttl } : { EX: ttl })) === "OK",
            del: (key) => client.del(key),
          },
        }),
    ],
  ];

  it.each(stores)("with %s: SET NX EX under the prefix, remember extends, forget deletes", async (_name, make) => {
    const store = make();
    const id = `evt_${randomBytes(8).toString("hex")}`;
    expect(await store.checkAndRemember(id, 30)).toBe(true);
    expect(await store.checkAndRemember(id, 30)).toBe(false);
    expect(await client.get(`${prefix}${id}`)).toBe("1");
    const ttl = await client.ttl(`${prefix}${id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30);

    await store.remember(id, 259_200);
    expect(await client.ttl(`${prefix}${id}`)).toBeGreaterThan(30);
    await store.forget(id);
    expect(await client.exists(`${prefix}${id}`)).toBe(0);
    expect(await store.checkAndRemember(id, 30)).toBe(true);
  });

  it("lets exactly one of many concurrent callers claim an id", async () => {
    const stores = [new RedisReplayStore({ client, prefix }), new RedisReplayStore({ client: ioredisShaped(), prefix })];
    const id = `evt_${randomBytes(8).toString("hex")}`;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % 2]!.checkAndRemember(id, 30)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("uses the default prefix when none is given", async () => {
    const id = `evt_${randomBytes(8).toString("hex")}`;
    await new RedisReplayStore({ client }).checkAndRemember(id, 5);
    expect(await client.exists(`lumenpay:webhooks:${id}`)).toBe(1);
    await client.del(`lumenpay:webhooks:${id}`);
  });

  it("refuses a client it cannot recognise instead of guessing its SET options", () => {
    const unknown = { set: async () => "OK", del: async () => 1 };
    expect(() => new RedisReplayStore({ client: unknown as unknown as IoRedisLike })).toThrow(/commands/);
  });
});
