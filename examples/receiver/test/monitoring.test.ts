import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlidingWindowCounter } from "../src/security/monitor.js";
import { OTHER_SECRET, paymentEvent, signed } from "./support/fixtures.js";
import { send, startTestReceiver, type TestReceiver } from "./support/receiver.js";

/** A local HTTP server standing in for Slack's incoming webhook. */
async function startSlack() {
  const posts: { contentType: string | undefined; body: Record<string, unknown> }[] = [];
  const waiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      posts.push({ contentType: req.headers["content-type"], body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown> });
      waiters.splice(0).forEach((wake) => wake());
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/XXXX`,
    posts,
    async waitFor(count: number) {
      while (posts.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("security monitoring", () => {
  let slack: Awaited<ReturnType<typeof startSlack>>;
  let r: TestReceiver;
  beforeAll(async () => {
    slack = await startSlack();
    r = await startTestReceiver({ SLACK_WEBHOOK_URL: slack.url, ALERT_EMAIL: "security@shop.example" });
  });
  afterAll(async () => {
    await r?.close();
    await slack?.close();
  });

  it("posts one Slack alert when an IP reaches 10 failed verifications, not one per failure", async () => {
    for (let i = 0; i < 9; i++) expect((await send(r.url, signed(paymentEvent(), { secret: OTHER_SECRET }))).status).toBe(401);
    expect(slack.posts).toEqual([]);
    for (let i = 0; i < 6; i++) expect((await send(r.url, signed(paymentEvent(), { secret: OTHER_SECRET }))).status).toBe(401);

    // Another address crossing the threshold afterwards: its alert arrives after any extra one for 127.0.0.1 would have.
    for (let i = 0; i < 10; i++) await send(r.url, signed(paymentEvent(), { secret: OTHER_SECRET }), { localAddress: "127.0.0.2" });
    await slack.waitFor(2);
    expect(slack.posts).toEqual([
      {
        contentType: "application/json",
        body: {
          text:
            "Lumenpay webhook receiver: 10 invalid_signature rejections from 127.0.0.1 in the last 300 s " +
            "(latest: NoMatchingSignatureError). Alert contact: security@shop.example.",
        },
      },
      { contentType: "application/json", body: { text: expect.stringContaining("from 127.0.0.2") } },
    ]);
    const alerts = r.logs.filter((line) => line.kind === "security.alert");
    expect(alerts).toEqual([
      expect.objectContaining({ level: 50, ip: "127.0.0.1", reason: "invalid_signature", count: 10, alert_email: "security@shop.example" }),
      expect.objectContaining({ ip: "127.0.0.2" }),
    ]);
    expect(r.rawLogs()).not.toContain(slack.url);
  });

  it("still logs every rejection but counts and alerts nothing with ENABLE_SECURITY_MONITORING=false", async () => {
    const quiet = await startTestReceiver({ SLACK_WEBHOOK_URL: slack.url, ENABLE_SECURITY_MONITORING: "false" });
    try {
      for (let i = 0; i < 12; i++) await send(quiet.url, signed(paymentEvent(), { secret: OTHER_SECRET }));
      expect(quiet.logs.filter((line) => line.kind === "security.rejection")).toHaveLength(12);
      expect(quiet.logs.filter((line) => line.kind === "security.alert")).toEqual([]);
    } finally {
      await quiet.close();
    }
  });
});

describe("SlidingWindowCounter", () => {
  function counter(options: { threshold?: number; windowMs?: number; maxKeys?: number } = {}) {
    let now = 1_000_000;
    const c = new SlidingWindowCounter({ threshold: 3, windowMs: 1000, maxKeys: 100, ...options, now: () => now });
    return { c, tick: (ms: number) => (now += ms) };
  }

  it("reports the crossing once, and again only after the window fell below the threshold", () => {
    const { c, tick } = counter();
    expect([c.hit("a"), c.hit("a"), c.hit("a"), c.hit("a")].map((h) => h.crossed)).toEqual([false, false, true, false]);
    // Still three or more within any second: the same crossing, no new alert.
    tick(400);
    expect(c.hit("a").crossed).toBe(false);
    tick(1001);
    // The window now holds only this hit: re-armed, and crossing needs three again.
    expect(c.hit("a")).toEqual({ count: 1, crossed: false });
    expect(c.hit("a").crossed).toBe(false);
    expect(c.hit("a").crossed).toBe(true);
  });

  it("counts keys apart and forgets hits older than the window", () => {
    const { c, tick } = counter();
    c.hit("a");
    c.hit("a");
    expect(c.hit("b").count).toBe(1);
    tick(1000);
    expect(c.hit("a")).toEqual({ count: 1, crossed: false });
  });

  it("keeps at most maxKeys keys, dropping the least recently hit", () => {
    const { c } = counter({ maxKeys: 2 });
    c.hit("a");
    c.hit("b");
    c.hit("a");
    c.hit("c");
    expect(c.size).toBe(2);
    // "a" survived (recently hit, its count intact); "b" was evicted and starts over.
    expect(c.hit("a")).toEqual({ count: 3, crossed: true });
    expect(c.hit("b").count).toBe(1);
  });
});
