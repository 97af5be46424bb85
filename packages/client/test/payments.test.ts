import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { Lumenpay, type Page, type Payment, type PaymentCreateParams, type paths } from "../src/index.js";
import { collect, failure, startApi, type RunningApi } from "./support/api.js";

let api: RunningApi;
beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());

/** A client for a merchant of its own. */
async function newClient(): Promise<Lumenpay> {
  const { apiKey } = await api.merchant();
  return new Lumenpay({ apiKey, baseUrl: api.url });
}

describe("payments against the real server", () => {
  it("creates, retrieves and cancels a payment, with amounts as decimal strings", async () => {
    const lumenpay = await newClient();
    const created = await lumenpay.payments.create({ amount: "12.50", asset: "XLM", metadata: { order: "42" } });
    expect(created).toMatchObject({ object: "payment", status: "pending", amount: "12.5", amount_received: "0", metadata: { order: "42" } });
    expect(created.id).toMatch(/^pay_/);

    expect(await lumenpay.payments.retrieve(created.id)).toEqual(created);

    const canceled = await lumenpay.payments.cancel(created.id);
    expect(canceled).toMatchObject({ id: created.id, status: "canceled", canceled_at: expect.any(String) });
    expect((await lumenpay.payments.retrieve(created.id)).status).toBe("canceled");
  });

  it("iterates every payment across pages, newest first, following the server's cursor", async () => {
    const lumenpay = await newClient();
    const ids: string[] = [];
    // One at a time, so the creation order (and so the list order) is known.
    for (let i = 0; i < 23; i++) ids.push((await lumenpay.payments.create({ amount: `${i + 1}`, asset: "XLM" })).id);
    const newestFirst = [...ids].reverse();

    const list = lumenpay.payments.list({ limit: 10 });
    const first = await list.firstPage();
    expect(first.data.map((p) => p.id)).toEqual(newestFirst.slice(0, 10));
    expect(first).toMatchObject({ object: "list", has_more: true, next_cursor: expect.any(String) });

    const pages = await collect(list.pages());
    expect(pages.map((page) => page.data.length)).toEqual([10, 10, 3]);
    expect(pages.at(-1)).toMatchObject({ has_more: false, next_cursor: null });
    expect((await collect(list)).map((p) => p.id)).toEqual(newestFirst);
  });

  it("keeps the filters on every page, and starts after `starting_after` without sending it again", async () => {
    const lumenpay = await newClient();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await lumenpay.payments.create({ amount: "1", asset: "XLM" })).id);
    const canceled = [ids[0]!, ids[2]!, ids[3]!, ids[6]!];
    for (const id of canceled) await lumenpay.payments.cancel(id);

    const onlyCanceled = await collect(lumenpay.payments.list({ status: "canceled", limit: 2 }));
    expect(onlyCanceled.map((p) => p.id)).toEqual([...canceled].reverse());

    // The server refuses `cursor` with `starting_after`: the second page must carry the cursor alone.
    const olderThanFifth = await collect(lumenpay.payments.list({ starting_after: ids[4]!, limit: 2 }));
    expect(olderThanFifth.map((p) => p.id)).toEqual(ids.slice(0, 4).reverse());
  });

  it("lists nothing for a merchant without payments, in one request", async () => {
    const lumenpay = await newClient();
    expect(await collect(lumenpay.payments.list().pages())).toEqual([{ object: "list", data: [], has_more: false, next_cursor: null }]);
  });
});

describe("API errors", () => {
  it("raises a 400 with its code, param, status and request id", async () => {
    const lumenpay = await newClient();
    const error = await failure(lumenpay.payments.create({ amount: "12.345678901", asset: "XLM" }));
    expect(error).toMatchObject({ name: "LumenpayError", status: 400, code: "invalid_amount", param: "amount" });
    expect(error.message).toMatch(/7 decimals/);
    expect(error.requestId).toMatch(/^req_/);
  });

  it("raises a 404 resource_not_found for an unknown id", async () => {
    const lumenpay = await newClient();
    const error = await failure(lumenpay.payments.retrieve("pay_0000000000000000000000"));
    expect(error).toMatchObject({ status: 404, code: "resource_not_found", param: undefined });
  });

  it("raises the server's 409 when a canceled payment is canceled again", async () => {
    const lumenpay = await newClient();
    const { id } = await lumenpay.payments.create({ amount: "3", asset: "XLM" });
    await lumenpay.payments.cancel(id);
    expect(await failure(lumenpay.payments.cancel(id))).toMatchObject({ status: 409, code: "payment_not_cancelable" });
  });

  it("raises a 401 for an API key the server does not know", async () => {
    const lumenpay = new Lumenpay({ apiKey: "sk_not_a_real_key", baseUrl: api.url });
    expect(await failure(lumenpay.payments.retrieve("pay_0000000000000000000000"))).toMatchObject({ status: 401, code: "invalid_api_key" });
  });
});

describe("options", () => {
  it("sends every request through the fetch it is given, with the API key", async () => {
    const { apiKey } = await api.merchant();
    const sent: Array<{ url: string; authorization: string | null }> = [];
    const lumenpay = new Lumenpay({
      apiKey,
      baseUrl: `${api.url}/`,
      fetch: (input, init) => {
        sent.push({ url: String(input), authorization: new Headers(init?.headers).get("authorization") });
        return fetch(input, init);
      },
    });
    await lumenpay.payments.list({ limit: 5, status: "pending" }).firstPage();
    expect(sent).toEqual([{ url: `${api.url}/v1/payments?limit=5&status=pending`, authorization: `Bearer ${apiKey}` }]);
  });

  it("refuses a client without an API key or with a baseUrl that is not a URL", () => {
    expect(() => new Lumenpay({ apiKey: "", baseUrl: api.url })).toThrow(TypeError);
    expect(() => new Lumenpay({ apiKey: "sk_x", baseUrl: "localhost:4000" })).toThrow(/baseUrl/);
    expect(() => new Lumenpay({ apiKey: "sk_x", baseUrl: api.url, maxRetries: -1 })).toThrow(/maxRetries/);
  });
});

describe("types", () => {
  it("are the server's: money is a decimal string, and a list response is a Page", () => {
    expectTypeOf<Payment["amount"]>().toEqualTypeOf<string>();
    expectTypeOf<PaymentCreateParams["amount"]>().toEqualTypeOf<string>();
    expectTypeOf<paths["/v1/payments"]["get"]["responses"][200]["content"]["application/json"]>().toEqualTypeOf<Page<Payment>>();
    expectTypeOf<Lumenpay["payments"]["create"]>().returns.resolves.toEqualTypeOf<Payment>();
  });
});
