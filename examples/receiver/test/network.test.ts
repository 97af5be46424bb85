import { afterEach, describe, expect, it } from "vitest";
import { paymentEvent, signed } from "./support/fixtures.js";
import { rejections, send, startTestReceiver, type TestReceiver } from "./support/receiver.js";

const running: TestReceiver[] = [];
async function receiver(env: Record<string, string> = {}): Promise<TestReceiver> {
  const started = await startTestReceiver(env);
  running.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

/** The receiver's URL on another address of the same listener (e.g. [::1] for one bound to "::"). */
const at = (r: TestReceiver, host: string) => r.url.replace("127.0.0.1", host);

describe("ALLOWED_IPS", () => {
  it("answers 403 to a sender outside the list, before verifying anything", async () => {
    const r = await receiver({ ALLOWED_IPS: "127.0.0.1/32, 2001:db8::/32" });
    const event = paymentEvent();
    // Linux routes all of 127.0.0.0/8 to loopback, so 127.0.0.2 is a second client address.
    const outsider = await send(r.url, signed(event), { localAddress: "127.0.0.2" });
    expect(outsider.status).toBe(403);
    expect(outsider.json()).toMatchObject({ error: "forbidden" });
    expect(r.orders.history).toEqual([]);
    expect(rejections(r)).toEqual([expect.objectContaining({ ip: "127.0.0.2", reason: "ip_not_allowed", status: 403, webhook_id: event.id })]);

    const allowed = await send(r.url, signed(event), { localAddress: "127.0.0.1" });
    expect(allowed.status).toBe(200);
    expect(r.orders.history).toHaveLength(1);
  });

  it("matches IPv4 clients of a dual-stack listener, whose addresses arrive as ::ffff:a.b.c.d, and IPv6 clients", async () => {
    const r = await receiver({ HOST: "::", ALLOWED_IPS: "127.0.0.1, ::1/128" });
    expect((await send(at(r, "127.0.0.1"), signed(paymentEvent()))).status).toBe(200);
    expect((await send(at(r, "[::1]"), signed(paymentEvent()))).status).toBe(200);
    expect((await send(at(r, "127.0.0.1"), signed(paymentEvent()), { localAddress: "127.0.0.2" })).status).toBe(403);
    expect(rejections(r)).toEqual([expect.objectContaining({ ip: "127.0.0.2", reason: "ip_not_allowed" })]);

    const v4only = await receiver({ HOST: "::", ALLOWED_IPS: "127.0.0.0/8" });
    expect((await send(at(v4only, "[::1]"), signed(paymentEvent()))).status).toBe(403);
    expect(rejections(v4only)).toEqual([expect.objectContaining({ ip: "::1", reason: "ip_not_allowed" })]);
  });

  it("uses X-Forwarded-For only from proxies TRUST_PROXY trusts", async () => {
    const env = { ALLOWED_IPS: "198.51.100.0/24" };
    const behindProxy = await receiver({ ...env, TRUST_PROXY: "loopback" });
    const from = (r: TestReceiver, ip: string) => {
      const delivery = signed(paymentEvent());
      return send(r.url, { body: delivery.body, headers: { ...delivery.headers, "x-forwarded-for": ip } });
    };
    expect((await from(behindProxy, "198.51.100.7")).status).toBe(200);
    expect((await from(behindProxy, "203.0.113.9")).status).toBe(403);
    expect(rejections(behindProxy)).toEqual([expect.objectContaining({ ip: "203.0.113.9", reason: "ip_not_allowed" })]);

    // Not behind a proxy: anyone could write that header, so the socket's address decides.
    const direct = await receiver({ ...env, TRUST_PROXY: "false" });
    expect((await from(direct, "198.51.100.7")).status).toBe(403);
    expect(rejections(direct)).toEqual([expect.objectContaining({ ip: "127.0.0.1", reason: "ip_not_allowed" })]);
  });
});

describe("rate limiting", () => {
  it("answers 429 with Retry-After once one IP passes 100 requests in a minute", async () => {
    const r = await receiver();
    const event = paymentEvent();
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 150; i++) {
      const answer = await send(r.url, signed(event));
      statuses.push(answer.status);
      if (answer.status === 429) retryAfter ??= answer.headers["retry-after"] as string;
    }
    expect(statuses.slice(0, 100).every((s) => s === 200)).toBe(true);
    expect(statuses.slice(100).every((s) => s === 429)).toBe(true);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    // Another client is counted on its own.
    expect((await send(r.url, signed(event), { localAddress: "127.0.0.2" })).status).toBe(200);
    expect(rejections(r).filter((line) => line.reason === "rate_limited")).toHaveLength(50);
  });

  it("exempts allow-listed senders, and can be switched off", async () => {
    const listed = await receiver({ ALLOWED_IPS: "127.0.0.1" });
    const unlimited = await receiver({ ENABLE_RATE_LIMITING: "false" });
    for (const r of [listed, unlimited]) {
      const event = paymentEvent();
      for (let i = 0; i < 150; i++) expect((await send(r.url, signed(event))).status).toBe(200);
    }
    // Those outside the list are limited, so a flood of refused requests is cut short too.
    const outsider: number[] = [];
    for (let i = 0; i < 110; i++) outsider.push((await send(listed.url, signed(paymentEvent()), { localAddress: "127.0.0.2" })).status);
    expect(new Set(outsider.slice(0, 100))).toEqual(new Set([403]));
    expect(new Set(outsider.slice(100))).toEqual(new Set([429]));
  });

  it("follows RATE_LIMIT_PER_MINUTE", async () => {
    const r = await receiver({ RATE_LIMIT_PER_MINUTE: "5" });
    const statuses = [];
    for (let i = 0; i < 7; i++) statuses.push((await send(r.url, signed(paymentEvent()))).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
  });
});
