import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTimestamp } from "../src/http/inputs.js";
import { buildTestApp, seedMerchant, type TestApp } from "./support/app.js";

/** The classes of input an adversarial run turned into 500s: each must be a 4xx with error.code, and write nothing. */

let t: TestApp;
let port: number;
beforeAll(async () => {
  t = await buildTestApp();
  await t.app.listen({ host: "127.0.0.1", port: 0 });
  port = (t.app.server.address() as AddressInfo).port;
});
afterAll(() => t.close());

const cursor = (text: string) => Buffer.from(text).toString("base64url");
const count = async (table: string) => (await t.db.pool.query<{ n: number }>(`select count(*)::int as n from ${table}`)).rows[0]!.n;

/** Sends raw bytes and returns the raw answer: for what a well-behaved HTTP client would refuse to send. */
function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(request));
    let answer = "";
    socket.setEncoding("utf8").on("data", (d: string) => (answer += d)).on("end", () => resolve(answer)).on("error", reject);
  });
}

describe("values that pass a schema but not PostgreSQL", () => {
  it.each([
    ["an impossible date", "2026-02-30T10:00:00.000Z|pay_0000000000000000000000"],
    ["year 0", "0000-01-01T00:00:00.000Z|pay_0000000000000000000000"],
    ["a leap second", "2026-12-31T23:59:60.000Z|pay_0000000000000000000000"],
    ["an id of another shape", "2026-01-01T00:00:00.000Z|pay_\u0000"],
  ])("refuses a forged cursor with %s as invalid_cursor", async (_name, text) => {
    const m = await seedMerchant(t);
    for (const url of ["/v1/payments", "/v1/events", "/v1/unmatched_payments", "/v1/webhook_endpoints"]) {
      const res = await t.app.inject({ method: "GET", url: `${url}?cursor=${cursor(text)}`, headers: m.auth });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code, url).toBe("invalid_cursor");
    }
  });

  it.each(["2026-12-31T23:59:60Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "0000-01-01T00:00:00Z", "2026-01-01", "2026-01-01T00:00:00"])(
    "refuses created_gte=%s as invalid_date",
    async (date) => {
      const m = await seedMerchant(t);
      const res = await t.app.inject({ method: "GET", url: `/v1/payments?created_gte=${encodeURIComponent(date)}`, headers: m.auth });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: "invalid_date", param: "created_gte" });
    },
  );

  it("reads RFC 3339 dates as PostgreSQL does: real days, leap years, offsets, microseconds", () => {
    expect(parseTimestamp("2024-02-29T23:59:59.999999+05:30")?.toISOString()).toBe("2024-02-29T18:29:59.999Z");
    expect(parseTimestamp("2000-02-29T00:00:00Z")).toBeDefined();
    expect(parseTimestamp("1900-02-29T00:00:00Z")).toBeUndefined();
    expect(parseTimestamp("2026-01-01T00:00:00+24:00")).toBeUndefined();
  });

  it("refuses NUL in path ids, query strings and every text field, and writes nothing", async () => {
    const m = await seedMerchant(t);
    const before = await count("payments");
    const cases: Array<[string, string, object | undefined]> = [
      ["GET", "/v1/payments/pay_%00", undefined],
      ["GET", "/v1/payments?status=pending%00", undefined],
      ["POST", "/v1/payments", { amount: "1", asset: "XLM", description: "a\u0000b" }],
      ["POST", "/v1/payments", { amount: "1", asset: "XLM", metadata: { "k\u0000": "v" } }],
      ["POST", "/v1/webhook_endpoints", { url: "https://example.test/\u0000", enabled_events: ["*"] }],
      ["PATCH", "/v1/merchant", { name: "Acme\u0000" }],
    ];
    for (const [method, url, payload] of cases) {
      const res = await t.app.inject({ method: method as "GET", url, headers: m.auth, ...(payload && { payload }) });
      expect([400, 404], `${method} ${url}`).toContain(res.statusCode);
      expect(typeof res.json().error.code).toBe("string");
    }
    expect(await count("payments")).toBe(before);
    expect((await t.app.inject({ method: "GET", url: "/v1/merchant", headers: m.auth })).json().name).toBe("Acme");
  });

  it("answers 404 for an id of another shape, on every route that takes one", async () => {
    const m = await seedMerchant(t);
    for (const url of ["/v1/payments/pay_short", "/v1/payments/evt_0000000000000000000000", "/v1/events/x", "/v1/unmatched_payments/unm_", "/v1/deliveries/del_%E2%9C%85"]) {
      const res = await t.app.inject({ method: "GET", url, headers: m.auth });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code, url).toBe("resource_not_found");
    }
  });
});

describe("numbers and sizes", () => {
  it.each(["0x10", "1e1", "+5", " 5", "5.0", "٣", "-1", "0"])("refuses limit=%s", async (limit) => {
    const m = await seedMerchant(t);
    const res = await t.app.inject({ method: "GET", url: `/v1/payments?limit=${encodeURIComponent(limit)}`, headers: m.auth });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: "invalid_request", param: "limit" });
  });

  it("bounds accepted_assets before looking at it", async () => {
    const m = await seedMerchant(t);
    const huge = Array.from({ length: 8_000 }, (_, i) => ({ code: `C${i % 1000}`, issuer: m.merchant.accounts[0] }));
    const res = await t.app.inject({ method: "PATCH", url: "/v1/merchant", headers: m.auth, payload: { accepted_assets: huge } });
    expect(res.statusCode).toBe(400);
    expect(typeof res.json().error.code).toBe("string");
  });
});

describe("malformed requests", () => {
  it("answers a malformed percent-encoding in the API's error shape", async () => {
    const m = await seedMerchant(t);
    const res = await t.app.inject({ method: "GET", url: "/v1/payments/%E0%A4%A", headers: m.auth });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: { code: "invalid_url", message: "The URL is malformed." } });
  });

  it("answers what Node's HTTP parser refuses in the API's error shape", async () => {
    const answer = await raw("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toEqual({ error: { code: "invalid_request", message: "The HTTP request is malformed." } });
  });
});
