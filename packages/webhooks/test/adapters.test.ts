import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { afterEach, describe, expect, it } from "vitest";
import {
  createRouter,
  expressHandler,
  fastifyPlugin,
  fetchHandler,
  nodeHandler,
  NonRetryableError,
  Webhook,
  type EventOf,
  type RouterOptions,
} from "../src/index.js";
import { confirmedEvent, delivery, newSecret } from "./support/fixtures.js";
import { post } from "./support/http.js";
import { frameworks, type Receiver } from "./support/servers.js";

const receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

const TWO_MB = "x".repeat(2 * 1024 * 1024);

describe.each(Object.entries(frameworks))("%s adapter", (_name, start) => {
  async function setup(options: Partial<RouterOptions> = {}, fail?: (attempt: number) => Error | undefined) {
    const secret = newSecret();
    const handled: EventOf<"payment.confirmed">[] = [];
    const errors: unknown[] = [];
    const router = createRouter({ webhook: new Webhook({ secrets: [secret] }), onError: (e) => errors.push(e), ...options });
    router.on("payment.confirmed", (event) => {
      const error = fail?.(handled.length + 1);
      handled.push(event);
      if (error) throw error;
    });
    const receiver = await start(router);
    receivers.push(receiver);
    return { secret, handled, errors, url: receiver.url };
  }

  it("answers 200 to a valid delivery after running its handler once, with the typed event", async () => {
    const { secret, handled, url } = await setup();
    const event = confirmedEvent();
    const res = await post(url, delivery(secret, event));
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: "processed" });
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(handled).toEqual([event]);
    expect(handled[0]?.data.object.amount_received).toBe("12.5");
  });

  it("answers 401 to a bad signature without running the handler", async () => {
    const { handled, url } = await setup();
    const res = await post(url, delivery(newSecret()));
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ error: "invalid_signature" });
    expect(handled).toHaveLength(0);
  });

  it("answers 413 to a 2 MB body, announced by Content-Length or sent chunked", async () => {
    const { secret, handled, url } = await setup();
    const { headers } = delivery(secret, TWO_MB);
    expect((await post(url, { headers, body: TWO_MB })).status).toBe(413);
    expect((await post(url, { headers, body: TWO_MB, chunked: true })).status).toBe(413);
    expect(handled).toHaveLength(0);
  });

  it("answers 415 to a body that is not application/json", async () => {
    const { secret, handled, url } = await setup();
    const { body, headers } = delivery(secret);
    const res = await post(url, { body, headers: { ...headers, "content-type": "text/plain" } });
    expect(res.status).toBe(415);
    expect(handled).toHaveLength(0);
  });

  it("answers 400 to a valid signature over malformed JSON", async () => {
    const { secret, handled, url } = await setup();
    const res = await post(url, delivery(secret, '{"id":"evt_1","type":'));
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: "invalid_payload" });
    expect(handled).toHaveLength(0);
  });

  it("acknowledges a duplicate webhook-id with 200 without running the handler again", async () => {
    const { secret, handled, url } = await setup();
    const signed = delivery(secret);
    expect((await post(url, signed)).status).toBe(200);
    const again = await post(url, delivery(secret, signed.body, signed.headers["webhook-id"]));
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ status: "duplicate" });
    expect(handled).toHaveLength(1);
  });

  it("answers 409 to a duplicate when onDuplicate is reject", async () => {
    const { secret, handled, url } = await setup({ onDuplicate: "reject" });
    const signed = delivery(secret);
    expect((await post(url, signed)).status).toBe(200);
    const again = await post(url, signed);
    expect(again.status).toBe(409);
    expect(again.json).toEqual({ status: "duplicate" });
    expect(handled).toHaveLength(1);
  });

  it("answers 500 when the handler fails, and runs it again on Lumenpay's retry of the same id", async () => {
    const { secret, handled, errors, url } = await setup({}, (attempt) => (attempt === 1 ? new Error("database down") : undefined));
    const signed = delivery(secret);
    const first = await post(url, signed);
    expect(first.status).toBe(500);
    expect(first.text).not.toContain("database down");
    expect(errors).toEqual([new Error("database down")]);
    const retry = await post(url, delivery(secret, signed.body, signed.headers["webhook-id"]));
    expect(retry.status).toBe(200);
    expect(retry.json).toEqual({ status: "processed" });
    expect(handled).toHaveLength(2);
  });

  it("stops at a NonRetryableError but still answers 5xx", async () => {
    const { secret, handled, url } = await setup({ retryDelaysMs: [0] }, () => new NonRetryableError("no such order"));
    const res = await post(url, delivery(secret));
    expect(res.status).toBe(500);
    expect(handled).toHaveLength(1);
  });

  it("answers 200 ignored to an event type with no handler", async () => {
    const { secret, handled, url } = await setup();
    const expired = { ...confirmedEvent(), type: "payment.expired" };
    const future = { ...confirmedEvent(), type: "payment.refunded" };
    for (const event of [expired, future]) {
      const res = await post(url, delivery(secret, event));
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ status: "ignored" });
    }
    expect(handled).toHaveLength(0);
  });
});

describe("framework specifics", () => {
  function router(secret: string, handled: unknown[]) {
    return createRouter({ webhook: new Webhook({ secrets: [secret] }) }).on("payment.confirmed", (event) => void handled.push(event));
  }
  async function listen(server: Server): Promise<string> {
    if (!server.listening) await new Promise((resolve) => server.once("listening", resolve));
    receivers.push({ url: "", close: () => new Promise((resolve) => server.close(() => resolve())) });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  }

  it("Express: explains the problem when express.json() parsed the body before the route", async () => {
    const secret = newSecret();
    const handled: unknown[] = [];
    const app = express();
    app.use(express.json());
    app.post("/hook", expressHandler(router(secret, handled)));
    const res = await post(await listen(app.listen(0, "127.0.0.1")), delivery(secret));
    expect(res.status).toBe(500);
    expect(res.json).toMatchObject({ error: "body_already_parsed" });
    expect(String(res.json.message)).toContain("express.json()");
    expect(String(res.json.message)).toContain("express.raw");
    expect(handled).toHaveLength(0);
  });

  it("Express: accepts the Buffer that express.raw() leaves in req.body", async () => {
    const secret = newSecret();
    const handled: unknown[] = [];
    const app = express();
    app.post("/hook", express.raw({ type: "application/json" }), expressHandler(router(secret, handled)));
    const res = await post(await listen(app.listen(0, "127.0.0.1")), delivery(secret));
    expect(res.status).toBe(200);
    expect(handled).toHaveLength(1);
  });

  it("Fastify: the raw-body parser stays inside the plugin, so other routes still get parsed JSON", async () => {
    const secret = newSecret();
    const handled: unknown[] = [];
    const app = Fastify();
    await app.register(fastifyPlugin(router(secret, handled)), { prefix: "/hook" });
    app.post("/echo", async (request) => ({ parsed: typeof request.body === "object", body: request.body }));
    await app.listen({ port: 0, host: "127.0.0.1" });
    receivers.push({ url: "", close: () => app.close() });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    expect((await post(`${url}/hook`, delivery(secret))).status).toBe(200);
    const echo = await post(`${url}/echo`, { headers: { "content-type": "application/json" }, body: '{"a":1}' });
    expect(echo.json).toEqual({ parsed: true, body: { a: 1 } });
    expect(handled).toHaveLength(1);
  });

  it("Hono: a body read before the handler gets a 500 that says so", async () => {
    const secret = newSecret();
    const handled: unknown[] = [];
    const app = new Hono();
    const handler = fetchHandler(router(secret, handled));
    app.post("/hook", async (c) => {
      await c.req.raw.json();
      return handler(c.req.raw);
    });
    const res = await post(await listen(serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }) as Server), delivery(secret));
    expect(res.status).toBe(500);
    expect(res.json).toMatchObject({ error: "body_already_parsed" });
    expect(handled).toHaveLength(0);
  });

  it("node:http: answers 405 to anything but POST, and a smaller bodyLimit is honoured", async () => {
    const secret = newSecret();
    const handled: unknown[] = [];
    const url = await listen(createServer(nodeHandler(router(secret, handled), { bodyLimit: 100 })).listen(0, "127.0.0.1"));
    const get = await post(url, { method: "GET" });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe("POST");
    expect((await post(url, delivery(secret))).status).toBe(413);
    expect(handled).toHaveLength(0);
  });
});
