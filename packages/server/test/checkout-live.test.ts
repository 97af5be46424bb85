import { Memo } from "@stellar/stellar-sdk";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { LIVE_LIMITS, type LiveLimits } from "../src/checkout/live.js";
import { checkoutRoutes } from "../src/checkout/routes.js";
import { errorSchema, registerErrorHandler } from "../src/http/errors.js";
import { useChainApp } from "./support/chain.js";
import { openSse } from "./support/sse.js";

/**
 * The checkout's server-sent events against a real listener, with bounds small enough to watch:
 * the checkout plugin alone, over the chain app's database, clock and configuration.
 */

const chain = useChainApp("2026-09-02T10:00:00.000Z", { paymentDefaults: { asset: "XLM" } });
const opened: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((app) => app.close()));
});

async function liveServer(limits: Partial<LiveLimits>): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify();
  app.addSchema(errorSchema);
  registerErrorHandler(app);
  await app.register(checkoutRoutes, { pool: chain.t.db.pool, clock: chain.clock, config: chain.t.config, liveLimits: { ...LIVE_LIMITS, ...limits } });
  opened.push(app);
  return { app, url: await app.listen({ port: 0, host: "127.0.0.1" }) };
}

/** An event stream read block by block (the text between blank lines); `leave` disconnects like a closed tab. */
async function openEvents(url: string) {
  const sse = await openSse(url);
  const reader = sse.blocks;
  return {
    status: sse.status,
    headers: sse.headers,
    /** The next block, or undefined once the server ended the stream. */
    next: async () => (await reader.next()).value as string | undefined,
    /** The data of the next `status` event, skipping heartbeats. */
    async nextStatus(): Promise<{ state: string; html: string; version: string }> {
      for (let block = await this.next(); block !== undefined; block = await this.next()) {
        if (block.startsWith("event: status\n")) return JSON.parse(block.slice(block.indexOf("data: ") + 6));
      }
      throw new Error("the stream ended before a status event");
    },
    leave: sse.leave,
  };
}

async function newPayment(amount = "10") {
  const m = await chain.merchant();
  const p = await chain.createPayment(m, { amount });
  return { m, p, events: (url: string) => openEvents(`${url}/pay/${p.id}/events`) };
}

describe("GET /pay/:id/events", () => {
  it("sends the status at once, then again only when the payment changes, with heartbeats in between", async () => {
    const { url } = await liveServer({ intervalMs: 20, heartbeatMs: 100 });
    const { m, p, events } = await newPayment();
    const stream = await events(url);
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(stream.headers["cache-control"]).toBe("no-store");
    expect(await stream.next()).toBe(`retry: ${LIVE_LIMITS.retryMs}`);
    const first = await stream.nextStatus();
    expect(first).toMatchObject({ state: "pending", version: expect.any(String) });
    // Nothing changed: a comment keeps proxies from closing the connection, and no event repeats.
    expect(await stream.next()).toBe(": heartbeat");

    await chain.apply(await chain.pay(m, "4", Memo.id(p.memo)));
    const partial = await stream.nextStatus();
    expect(partial.state).toBe("partially_paid");
    expect(partial.version).not.toBe(first.version);
    expect(partial.html).toContain("amount=6&amp;");
    await chain.apply(await chain.pay(m, "6", Memo.id(p.memo)));
    expect((await stream.nextStatus()).state).toBe("paid");
    stream.leave();
  });

  it("sends expiry when the time passes, with no write to the payment", async () => {
    const { url } = await liveServer({ intervalMs: 20 });
    const m = await chain.merchant();
    const p = await chain.createPayment(m, { amount: "1", expires_in: 60 });
    const stream = await openEvents(`${url}/pay/${p.id}/events?lang=es`);
    expect(await stream.nextStatus()).toMatchObject({ state: "pending" });
    chain.clock.advance(60_000);
    expect(await stream.nextStatus()).toMatchObject({ state: "expired", message: "Esta solicitud de pago ha caducado" });
    stream.leave();
  });

  it("refuses streams beyond the per-process bound with 503 too_many_streams, and frees a slot when a client leaves", async () => {
    const { url } = await liveServer({ maxStreams: 1 });
    const { events } = await newPayment();
    const first = await events(url);
    expect(first.status).toBe(200);
    const refused = await (await newPayment()).events(url);
    expect(refused.status).toBe(503);
    expect(JSON.parse((await refused.next())!)).toMatchObject({ error: { code: "too_many_streams" } });

    first.leave();
    await expect
      .poll(async () => {
        const again = await events(url);
        again.leave();
        return again.status;
      })
      .toBe(200);
  });

  it("ends a stream after its lifetime, for EventSource to reconnect", async () => {
    const { url } = await liveServer({ intervalMs: 20, lifetimeMs: 200 });
    const stream = await (await newPayment()).events(url);
    await stream.nextStatus();
    while ((await stream.next()) !== undefined);
  });

  it("ends open streams as soon as the app closes, instead of holding the shutdown for their lifetime", async () => {
    const { app, url } = await liveServer({});
    const stream = await (await newPayment()).events(url);
    await stream.nextStatus();
    await app.close();
    expect(await stream.next()).toBeUndefined();
  });
});
