import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { startReceiver } from "../src/server.js";
import { paymentEvent, SECRET, signed } from "./support/fixtures.js";
import { send, startTestReceiver, type TestReceiver } from "./support/receiver.js";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const redis = createClient({ url: REDIS_URL });
let first: TestReceiver;
let second: TestReceiver;
const eventIds: string[] = [];

beforeAll(async () => {
  await redis.connect();
  first = await startTestReceiver({ REDIS_URL });
  second = await startTestReceiver({ REDIS_URL });
});
afterAll(async () => {
  await Promise.all([first?.close(), second?.close()]);
  if (eventIds.length > 0) await redis.del(eventIds.map((id) => `lumenpay:webhooks:${id}`));
  await redis.close();
});

describe("REDIS_URL", () => {
  it("shares handled ids between instances: a duplicate sent to the other one is recognised", async () => {
    const event = paymentEvent();
    eventIds.push(event.id);
    const handled = await send(first.url, signed(event));
    expect(handled.json()).toEqual({ status: "processed" });
    expect(await redis.exists(`lumenpay:webhooks:${event.id}`)).toBe(1);

    const duplicate = await send(second.url, signed(event));
    expect(duplicate.status).toBe(200);
    expect(duplicate.json()).toEqual({ status: "duplicate" });
    expect(first.orders.history).toHaveLength(1);
    expect(second.orders.history).toEqual([]);
  });

  it("lets a concurrent duplicate run its handler only once across instances", async () => {
    const event = paymentEvent();
    eventIds.push(event.id);
    const answers = await Promise.all([send(first.url, signed(event)), send(second.url, signed(event))]);
    const bodies = answers.map((a) => a.json().status);
    expect(bodies).toContain("processed");
    expect(bodies.filter((s) => s === "processed")).toHaveLength(1);
    const handledBy = (r: TestReceiver) => r.orders.history.filter((update) => update.eventId === event.id);
    expect([...handledBy(first), ...handledBy(second)]).toHaveLength(1);
  });

  it("fails the start when Redis cannot be reached, instead of starting without replay protection", async () => {
    const config = parseConfig({ WEBHOOK_SECRET: SECRET, PORT: "0", HOST: "127.0.0.1", REDIS_URL: "redis://127.0.0.1:1" });
    await expect(startReceiver(config, { log: createLogger("silent") })).rejects.toThrow(/ECONNREFUSED/);
  });
});
