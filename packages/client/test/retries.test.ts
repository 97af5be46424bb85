import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Lumenpay } from "../src/index.js";
import { TestClock } from "../../server/test/support/app.js";
import { collect, failure, recordingClient, startApi, type RunningApi } from "./support/api.js";
import { startProxy, type Proxy } from "./support/proxy.js";

/**
 * Retries and idempotency through a real HTTP proxy in front of the real server: the proxy drops,
 * fails or answers requests as each test scripts it and records what reached it.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let api: RunningApi;
let proxy: Proxy;
let apiKey: string;
beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());
beforeEach(async () => {
  proxy = await startProxy(api.url);
  ({ apiKey } = await api.merchant());
});
afterEach(() => proxy.close());

/** A client through the proxy that records its retry delays instead of waiting them out. */
const viaProxy = (options: { maxRetries?: number; timeoutMs?: number } = {}) => recordingClient({ apiKey, baseUrl: proxy.url, ...options });
/** A client straight to the server, to look at what the calls through the proxy did. */
const direct = () => new Lumenpay({ apiKey, baseUrl: api.url });

const keysSeen = () => proxy.seen.map((request) => request.headers["idempotency-key"]);

describe("idempotency", () => {
  it("retries a POST whose response was lost under the same generated key: the server creates one payment", async () => {
    const { lumenpay, delays } = viaProxy();
    proxy.script("drop");
    const payment = await lumenpay.payments.create({ amount: "5", asset: "XLM" });

    expect(proxy.seen.map((r) => `${r.method} ${r.url} → ${r.upstream?.status}`)).toEqual(["POST /v1/payments → 201", "POST /v1/payments → 201"]);
    const [first, second] = keysSeen();
    expect(first).toMatch(UUID);
    expect(second).toBe(first);
    expect(proxy.seen[1]?.upstream?.headers.get("idempotent-replayed")).toBe("true");
    expect(payment.id).toBe(JSON.parse(proxy.seen[0]!.upstream!.body).id);
    expect((await collect(direct().payments.list())).map((p) => p.id)).toEqual([payment.id]);
    expect(delays).toHaveLength(1);
  });

  it("retries after a 500 under the caller's key, and cancels once", async () => {
    const { lumenpay } = viaProxy();
    proxy.script("fail");
    const payment = await lumenpay.payments.create({ amount: "5", asset: "XLM" }, { idempotencyKey: "order-42" });
    expect(keysSeen()).toEqual(["order-42", "order-42"]);
    expect(await collect(direct().payments.list())).toHaveLength(1);

    proxy.script("fail");
    const canceled = await lumenpay.payments.cancel(payment.id);
    expect(canceled.status).toBe("canceled");
    const cancels = proxy.seen.slice(2);
    expect(cancels.map((r) => r.upstream?.status)).toEqual([200, 200]);
    expect(cancels[1]?.headers["idempotency-key"]).toBe(cancels[0]?.headers["idempotency-key"]);
    expect(cancels[1]?.upstream?.headers.get("idempotent-replayed")).toBe("true");
  });

  it("gives each call a key of its own, and none to a GET", async () => {
    const { lumenpay } = viaProxy();
    const a = await lumenpay.payments.create({ amount: "1", asset: "XLM" });
    const b = await lumenpay.payments.create({ amount: "1", asset: "XLM" });
    await lumenpay.payments.retrieve(a.id);
    const [keyA, keyB, getKey] = keysSeen();
    expect(keyA).toMatch(UUID);
    expect(keyB).toMatch(UUID);
    expect(keyB).not.toBe(keyA);
    expect(getKey).toBeUndefined();
    expect(b.id).not.toBe(a.id);
  });
});

describe("retries", () => {
  it("waits out Retry-After on a 429 and a 503, then succeeds", async () => {
    const { lumenpay, delays } = viaProxy();
    const { id } = await direct().payments.create({ amount: "2", asset: "XLM" });
    proxy.script({ status: 429, headers: { "retry-after": "7" } }, { status: 503, headers: { "retry-after": "1" } });
    expect((await lumenpay.payments.retrieve(id)).id).toBe(id);
    expect(delays).toEqual([7000, 1000]);
    expect(proxy.seen).toHaveLength(3);
  });

  it("backs off exponentially, with jitter, without a Retry-After", async () => {
    const { lumenpay, delays } = viaProxy();
    proxy.script({ status: 503 }, { status: 502 });
    await lumenpay.events.list().firstPage();
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeGreaterThanOrEqual(400);
    expect(delays[0]).toBeLessThanOrEqual(600);
    expect(delays[1]).toBeGreaterThanOrEqual(800);
    expect(delays[1]).toBeLessThanOrEqual(1200);
  });

  it("gives up after maxRetries and raises the last error", async () => {
    const { lumenpay, delays } = viaProxy({ maxRetries: 1 });
    proxy.script({ status: 500 }, { status: 503 }, { status: 503 });
    const error = await failure(lumenpay.events.list().firstPage());
    expect(error).toMatchObject({ status: 503, code: "proxy_503" });
    expect(proxy.seen).toHaveLength(2);
    expect(delays).toHaveLength(1);
  });

  it("never retries a 4xx other than 429", async () => {
    const { lumenpay, delays } = viaProxy();
    const invalid = await failure(lumenpay.payments.create({ amount: "-1", asset: "XLM" }));
    expect(invalid).toMatchObject({ status: 400, code: "invalid_amount", param: "amount" });
    proxy.script({ status: 409 });
    expect(await failure(lumenpay.events.list().firstPage())).toMatchObject({ status: 409, code: "proxy_409" });
    expect(proxy.seen).toHaveLength(2);
    expect(delays).toEqual([]);
  });

  it("wraps connection errors as network_error once the retries are spent, under one key", async () => {
    const { lumenpay, delays } = viaProxy();
    proxy.script("reset", "reset", "reset");
    const error = await failure(lumenpay.payments.create({ amount: "1", asset: "XLM" }));
    expect(error).toMatchObject({ code: "network_error", status: undefined, requestId: undefined });
    expect(error.message).toContain("POST");
    expect(error.cause).toBeInstanceOf(Error);
    expect(proxy.seen).toHaveLength(3);
    expect(new Set(keysSeen()).size).toBe(1);
    expect(delays).toHaveLength(2);
    expect(await collect(direct().payments.list())).toEqual([]);
  });

  it("times out an attempt that gets no answer, and retries it", async () => {
    const { lumenpay } = viaProxy({ timeoutMs: 300, maxRetries: 1 });
    proxy.script("hang");
    expect((await lumenpay.payments.list().firstPage()).object).toBe("list");
    expect(proxy.seen).toHaveLength(2);

    const { lumenpay: once } = viaProxy({ timeoutMs: 300, maxRetries: 0 });
    proxy.script("hang");
    expect(await failure(once.payments.list().firstPage())).toMatchObject({ code: "timeout", status: undefined });
  });

  it("reports a response that is not the API's as unexpected_response", async () => {
    const { lumenpay } = viaProxy({ maxRetries: 0 });
    proxy.script({ status: 502, headers: { "content-type": "text/html" }, body: "<h1>Bad gateway</h1>" });
    expect(await failure(lumenpay.events.list().firstPage())).toMatchObject({ status: 502, code: "unexpected_response" });
  });

  it("waits with a real timer unless told otherwise", async () => {
    const lumenpay = new Lumenpay({ apiKey, baseUrl: proxy.url, maxRetries: 1 });
    proxy.script({ status: 503 });
    await lumenpay.events.list().firstPage();
    const [first, second] = proxy.seen;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(400);
  });
});

describe("the server's own rate limit", () => {
  let limited: RunningApi;
  beforeAll(async () => {
    // A frozen clock keeps every request in one rate-limit window, 30 s before its end.
    limited = await startApi({ env: { API_RATE_LIMIT_PER_MINUTE: "2" }, clock: new TestClock(new Date("2026-01-01T00:00:30Z")) });
  });
  afterAll(() => limited.close());

  it("is retried after the server's Retry-After, then raised as rate_limited", async () => {
    const { apiKey: key } = await limited.merchant();
    const { lumenpay, delays } = recordingClient({ apiKey: key, baseUrl: limited.url, maxRetries: 1 });
    await lumenpay.events.list().firstPage();
    await lumenpay.events.list().firstPage();
    const error = await failure(lumenpay.events.list().firstPage());
    expect(error).toMatchObject({ status: 429, code: "rate_limited" });
    expect(delays).toEqual([30_000]);
  });
});
