import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Networks } from "@stellar/stellar-sdk";
import { buildTestApp, randomAccount, seedMerchant, TestClock, type TestApp } from "./support/app.js";

let t: TestApp;
const clock = new TestClock();
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

type Auth = { authorization: string };

const create = (auth: Auth, payload: unknown) => t.app.inject({ method: "POST", url: "/v1/payments", headers: auth, payload: payload as object });
const get = (auth: Auth, url: string) => t.app.inject({ method: "GET", url, headers: auth });
const cancel = (auth: Auth, id: string) => t.app.inject({ method: "POST", url: `/v1/payments/${id}/cancel`, headers: auth });

async function countPayments(merchantId: string): Promise<number> {
  const { rows } = await t.db.pool.query<{ n: number }>("select count(*)::int as n from payments where merchant_id = $1", [merchantId]);
  return rows[0]!.n;
}

async function paymentsCreatedMetric(asset: string): Promise<number> {
  const text = (await t.app.inject({ method: "GET", url: "/metrics" })).body;
  const line = text.split("\n").find((l) => l.startsWith(`payments_created_total{asset="${asset}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("POST /v1/payments", () => {
  it("creates a pending payment with a generated id memo, links and a SEP-7 URI", async () => {
    clock.set(new Date("2026-03-01T12:00:00.000Z"));
    const issuer = randomAccount();
    const m = await seedMerchant(t, { accepted_assets: ["XLM", { code: "USDC", issuer }] });
    const res = await create(m.auth, {
      amount: "12.50",
      asset: { code: "USDC", issuer },
      description: "Order 42",
      metadata: { order_id: "42" },
    });
    expect(res.statusCode).toBe(201);
    const p = res.json();
    expect(p).toEqual({
      id: expect.stringMatching(/^pay_[0-9A-Za-z]{22}$/),
      object: "payment",
      status: "pending",
      amount: "12.5",
      asset: { code: "USDC", issuer },
      destination: m.merchant.accounts[0],
      destination_account: m.merchant.accounts[0],
      muxed_id: null,
      memo_type: "id",
      memo: expect.stringMatching(/^\d{1,20}$/),
      amount_received: "0",
      overpaid: false,
      settlements: [],
      description: "Order 42",
      metadata: { order_id: "42" },
      success_url: null,
      payment_url: `${t.config.publicBaseUrl}/pay/${p.id}`,
      sep7_uri: expect.stringMatching(/^web\+stellar:pay\?/),
      expires_at: "2026-03-01T13:00:00.000Z",
      monitor_for: 86400,
      created_at: "2026-03-01T12:00:00.000Z",
      updated_at: "2026-03-01T12:00:00.000Z",
      canceled_at: null,
      confirmed_at: null,
      expired_at: null,
    });
    const sep7 = new URLSearchParams(p.sep7_uri.slice("web+stellar:pay?".length));
    expect(Object.fromEntries(sep7)).toEqual({
      destination: m.merchant.accounts[0],
      amount: "12.5",
      asset_code: "USDC",
      asset_issuer: issuer,
      memo: p.memo,
      memo_type: "MEMO_ID",
      msg: "Order 42",
      network_passphrase: Networks.TESTNET,
    });

    const { rows } = await t.db.pool.query("select amount_stroops, memo from payments where id = $1", [p.id]);
    expect(rows[0]).toEqual({ amount_stroops: "125000000", memo: p.memo });
    expect(await paymentsCreatedMetric(`USDC:${issuer}`)).toBe(1);

    const got = await get(m.auth, `/v1/payments/${p.id}`);
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(p);
  });

  it("uses the given destination, memo and expires_in", async () => {
    clock.set(new Date("2026-03-02T00:00:00.000Z"));
    const second = randomAccount();
    const m = await seedMerchant(t, { accounts: [randomAccount(), second] });
    const res = await create(m.auth, { amount: "1", asset: "XLM", destination: second, memo_type: "text", memo: "inv 7", expires_in: 60 });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ destination: second, memo_type: "text", memo: "inv 7", expires_at: "2026-03-02T00:01:00.000Z" });
  });

  it.each([
    ["0.0000001", "0.0000001"],
    ["922337203685.4775807", "922337203685.4775807"],
    ["100.000", "100"],
  ])("accepts amount %j and returns %j", async (amount, canonical) => {
    const m = await seedMerchant(t);
    const res = await create(m.auth, { amount, asset: "XLM" });
    expect(res.statusCode).toBe(201);
    expect(res.json().amount).toBe(canonical);
  });

  it("rejects bad amounts with invalid_amount and writes nothing", async () => {
    const m = await seedMerchant(t);
    const bad: unknown[] = [
      "0.00000001", "0", "-1", "1e3", " 1", "1.", ".5", "1,5", "922337203685.4775808", "", "1 000",
      12.5, // a JSON number is a float: refused even when it looks exact
      1,
    ];
    for (const amount of bad) {
      const res = await create(m.auth, { amount, asset: "XLM" });
      expect(res.statusCode, JSON.stringify(amount)).toBe(400);
      expect(res.json().error, JSON.stringify(amount)).toMatchObject({ code: "invalid_amount", param: "amount" });
    }
    expect(await countPayments(m.merchant.id)).toBe(0);
  });

  it.each([
    ["text", "é".repeat(14)],
    ["text", "🚀".repeat(7)],
    ["id", "18446744073709551615"],
    ["id", "0"],
  ])("accepts a %s memo %j", async (memo_type, memo) => {
    const m = await seedMerchant(t);
    const res = await create(m.auth, { amount: "1", asset: "XLM", memo_type, memo });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ memo_type, memo });
  });

  it("stores a hash memo as lower-case hex and sends it base64 in the SEP-7 URI", async () => {
    const m = await seedMerchant(t);
    const hex = "AB01".repeat(16);
    const res = await create(m.auth, { amount: "1", asset: "XLM", memo_type: "hash", memo: hex });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ memo_type: "hash", memo: hex.toLowerCase() });
    const sep7 = new URLSearchParams(res.json().sep7_uri.slice("web+stellar:pay?".length));
    expect(sep7.get("memo_type")).toBe("MEMO_HASH");
    expect(Buffer.from(sep7.get("memo")!, "base64").toString("hex")).toBe(hex.toLowerCase());
  });

  it("rejects bad memos and writes nothing", async () => {
    const m = await seedMerchant(t);
    const cases: [Record<string, unknown>, string, string][] = [
      [{ memo_type: "text", memo: "é".repeat(15) }, "invalid_memo", "memo"],
      [{ memo_type: "text", memo: "🚀".repeat(8) }, "invalid_memo", "memo"],
      [{ memo_type: "text", memo: "" }, "invalid_memo", "memo"],
      [{ memo_type: "id", memo: "18446744073709551616" }, "invalid_memo", "memo"],
      [{ memo_type: "id", memo: "-5" }, "invalid_memo", "memo"],
      [{ memo_type: "id", memo: 42 }, "invalid_memo", "memo"], // big ids lose digits as JSON numbers
      [{ memo_type: "hash", memo: "ab".repeat(31) }, "invalid_memo", "memo"],
      [{ memo_type: "hash", memo: "g".repeat(64) }, "invalid_memo", "memo"],
      [{ memo: "42" }, "invalid_memo", "memo_type"],
      [{ memo_type: "id" }, "invalid_memo", "memo"],
      [{ memo_type: "return", memo: "ab".repeat(32) }, "invalid_request", "memo_type"],
    ];
    for (const [fields, code, param] of cases) {
      const res = await create(m.auth, { amount: "1", asset: "XLM", ...fields });
      expect(res.statusCode, JSON.stringify(fields)).toBe(400);
      expect(res.json().error, JSON.stringify(fields)).toMatchObject({ code, param });
    }
    expect(await countPayments(m.merchant.id)).toBe(0);
  });

  it("rejects other bad fields with a param and writes nothing", async () => {
    const issuer = randomAccount();
    const m = await seedMerchant(t, { accepted_assets: ["XLM"] });
    const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"]));
    const cases: [Record<string, unknown>, string, string][] = [
      [{ asset: { code: "USDC", issuer } }, "asset_not_accepted", "asset"],
      [{ asset: { code: "US DC", issuer } }, "invalid_asset", "asset.code"],
      [{ asset: "BTC" }, "invalid_request", "asset"],
      [{ destination: randomAccount() }, "invalid_destination", "destination"],
      [{ expires_in: 59 }, "invalid_request", "expires_in"],
      [{ expires_in: 7 * 24 * 3600 + 1 }, "invalid_request", "expires_in"],
      [{ monitor_for: -1 }, "invalid_request", "monitor_for"],
      [{ monitor_for: 30 * 86_400 + 1 }, "invalid_request", "monitor_for"],
      [{ monitor_for: 1.5 }, "invalid_request", "monitor_for"],
      [{ description: "x".repeat(1001) }, "invalid_request", "description"],
      [{ description: "a\u0000b" }, "invalid_request", "description"],
      [{ metadata: tooMany }, "invalid_request", "metadata"],
      [{ metadata: { ["k".repeat(41)]: "v" } }, "invalid_request", "metadata"],
      [{ metadata: { k: "v".repeat(501) } }, "invalid_request", "metadata.k"],
      [{ metadata: { k: { nested: true } } }, "invalid_request", "metadata.k"],
      [{ surprise: 1 }, "invalid_request", "surprise"],
    ];
    for (const [fields, code, param] of cases) {
      const res = await create(m.auth, { amount: "1", asset: "XLM", ...fields });
      expect(res.statusCode, JSON.stringify(fields).slice(0, 80)).toBe(400);
      expect(res.json().error, JSON.stringify(fields).slice(0, 80)).toMatchObject({ code, param });
    }
    const ok = await create(m.auth, {
      amount: "1",
      asset: "XLM",
      description: "x".repeat(1000),
      metadata: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`${"k".repeat(38)}${i}`.slice(-40), "v".repeat(500)])),
      expires_in: 7 * 24 * 3600,
      monitor_for: 30 * 86_400,
    });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().monitor_for).toBe(30 * 86_400);
    expect(await countPayments(m.merchant.id)).toBe(1);
  });

  it("stores a success_url for the hosted page in canonical form: https, or http to this machine outside production", async () => {
    const m = await seedMerchant(t);
    const accepted = [
      ["https://shop.example/orders/42/thanks?paid=1", "https://shop.example/orders/42/thanks?paid=1"],
      ["HTTPS://Shop.Example/a b", "https://shop.example/a%20b"],
      ["http://localhost:3000/done", "http://localhost:3000/done"],
      ["http://127.0.0.1/done", "http://127.0.0.1/done"],
    ];
    for (const [given, stored] of accepted) {
      const res = await create(m.auth, { amount: "1", asset: "XLM", success_url: given });
      expect(res.statusCode, given).toBe(201);
      expect(res.json().success_url).toBe(stored);
      expect((await get(m.auth, `/v1/payments/${res.json().id}`)).json().success_url).toBe(stored);
    }
    const refused = [
      "http://shop.example/thanks",
      "http://localhost.shop.example/",
      "http://[::1]/",
      "javascript:alert(1)",
      "data:text/html,hi",
      "ftp://shop.example/",
      "https://user:secret@shop.example/",
      "//shop.example/thanks",
      "not a url",
      "",
      // Under the schema's 2048 characters as sent, over them once percent-encoded.
      `https://shop.example/${"é".repeat(1000)}`,
    ];
    for (const success_url of refused) {
      const res = await create(m.auth, { amount: "1", asset: "XLM", success_url });
      expect(res.statusCode, success_url).toBe(400);
      expect(res.json().error, success_url).toMatchObject({ code: "invalid_success_url", param: "success_url" });
    }
    const long = await create(m.auth, { amount: "1", asset: "XLM", success_url: `https://shop.example/${"a".repeat(2048)}` });
    expect(long.statusCode).toBe(400);
    expect(long.json().error).toMatchObject({ param: "success_url" });
    expect(await countPayments(m.merchant.id)).toBe(accepted.length);
  });

  it("refuses http success URLs in production, to localhost too", async () => {
    const production = await buildTestApp({ env: { NODE_ENV: "production" } });
    try {
      const m = await seedMerchant(production);
      const post = (success_url: string) =>
        production.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "1", asset: "XLM", success_url } });
      const res = await post("http://localhost:3000/done");
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: "invalid_success_url", param: "success_url" });
      expect((await post("https://shop.example/done")).statusCode).toBe(201);
    } finally {
      await production.close();
    }
  });

  it("refuses a second open payment with the same destination and memo", async () => {
    const m = await seedMerchant(t, { accounts: [randomAccount(), randomAccount()] });
    const memo = { memo_type: "text", memo: "table 7" };
    const first = await create(m.auth, { amount: "1", asset: "XLM", ...memo });
    expect(first.statusCode).toBe(201);
    const clash = await create(m.auth, { amount: "2", asset: "XLM", ...memo });
    expect(clash.statusCode).toBe(409);
    expect(clash.json().error).toMatchObject({ code: "memo_in_use", param: "memo" });
    expect(await countPayments(m.merchant.id)).toBe(1);

    const otherAccount = await create(m.auth, { amount: "2", asset: "XLM", destination: m.merchant.accounts[1], ...memo });
    expect(otherAccount.statusCode).toBe(201);
    // A canceled payment no longer holds its memo.
    expect((await cancel(m.auth, first.json().id)).statusCode).toBe(200);
    expect((await create(m.auth, { amount: "2", asset: "XLM", ...memo })).statusCode).toBe(201);
  });

  it("answers 413 to a body over 1 MiB and 415 to non-JSON", async () => {
    const m = await seedMerchant(t);
    const big = await t.app.inject({
      method: "POST",
      url: "/v1/payments",
      headers: { ...m.auth, "content-type": "application/json" },
      payload: JSON.stringify({ amount: "1", asset: "XLM", description: "x".repeat(1024 * 1024) }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe("payload_too_large");
    const text = await t.app.inject({
      method: "POST",
      url: "/v1/payments",
      headers: { ...m.auth, "content-type": "text/plain" },
      payload: "amount=1",
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe("unsupported_media_type");
    expect(await countPayments(m.merchant.id)).toBe(0);
  });

  it("requires an API key", async () => {
    const res = await t.app.inject({ method: "POST", url: "/v1/payments", payload: { amount: "1", asset: "XLM" } });
    expect(res.statusCode).toBe(401);
  });
});

describe("GET /v1/payments/:id and POST /v1/payments/:id/cancel", () => {
  it("answers 404 to malformed and unknown ids", async () => {
    const m = await seedMerchant(t);
    for (const id of ["nope", "pay_short", "pay_AAAAAAAAAAAAAAAAAAAAAA", "mer_AAAAAAAAAAAAAAAAAAAAAA"]) {
      const got = await get(m.auth, `/v1/payments/${id}`);
      expect(got.statusCode, id).toBe(404);
      expect(got.json().error.code).toBe("resource_not_found");
      expect((await cancel(m.auth, id)).statusCode, id).toBe(404);
    }
  });

  it("cancels only a pending payment, at the clock's time", async () => {
    clock.set(new Date("2026-04-01T00:00:00.000Z"));
    const m = await seedMerchant(t);
    const p = (await create(m.auth, { amount: "3", asset: "XLM" })).json();
    clock.advance(5_000);
    const res = await cancel(m.auth, p.id);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      ...p,
      status: "canceled",
      canceled_at: "2026-04-01T00:00:05.000Z",
      updated_at: "2026-04-01T00:00:05.000Z",
    });
    const again = await cancel(m.auth, p.id);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe("payment_not_cancelable");

    const confirmed = (await create(m.auth, { amount: "3", asset: "XLM" })).json();
    await t.db.pool.query("update payments set status = 'confirmed' where id = $1", [confirmed.id]);
    expect((await cancel(m.auth, confirmed.id)).json().error.code).toBe("payment_not_cancelable");
    expect((await get(m.auth, `/v1/payments/${confirmed.id}`)).json().status).toBe("confirmed");
  });
});

describe("tenant isolation", () => {
  it("hides one merchant's payments from another on every route", async () => {
    const a = await seedMerchant(t, { name: "A" });
    const b = await seedMerchant(t, { name: "B" });
    const p = (await create(a.auth, { amount: "1", asset: "XLM" })).json();
    await create(b.auth, { amount: "2", asset: "XLM" });

    const got = await get(b.auth, `/v1/payments/${p.id}`);
    expect(got.statusCode).toBe(404);
    expect(got.json().error.code).toBe("resource_not_found");

    const listed = await get(b.auth, "/v1/payments?limit=100");
    expect(listed.statusCode).toBe(200);
    expect(listed.json().data.map((x: { amount: string }) => x.amount)).toEqual(["2"]);

    const after = await get(b.auth, `/v1/payments?starting_after=${p.id}`);
    expect(after.statusCode).toBe(400);
    expect(after.json().error).toMatchObject({ code: "invalid_starting_after", param: "starting_after" });

    const canceled = await cancel(b.auth, p.id);
    expect(canceled.statusCode).toBe(404);
    expect((await get(a.auth, `/v1/payments/${p.id}`)).json().status).toBe("pending");

    // B cannot use A's destination either.
    const foreign = await create(b.auth, { amount: "1", asset: "XLM", destination: a.merchant.accounts[0] });
    expect(foreign.json().error.code).toBe("invalid_destination");
  });
});

describe("GET /v1/payments", () => {
  const ids = (res: { json(): { data: { id: string }[] } }) => res.json().data.map((p) => p.id);

  it("pages newest first with cursors and starting_after, and filters by status and creation time", async () => {
    const m = await seedMerchant(t);
    clock.set(new Date("2026-05-01T00:00:00.000Z"));
    const created: { id: string; created_at: string; status: string }[] = [];
    for (let i = 0; i < 25; i++) {
      // Groups of five share a timestamp, so the id tie-break is exercised.
      if (i % 5 === 0) clock.advance(60_000);
      created.push((await create(m.auth, { amount: String(i + 1), asset: "XLM" })).json());
    }
    for (const i of [1, 6, 7, 20, 24]) {
      expect((await cancel(m.auth, created[i]!.id)).statusCode).toBe(200);
      created[i]!.status = "canceled";
    }
    const newestFirst = [...created].sort((x, y) => (x.created_at === y.created_at ? (x.id < y.id ? 1 : -1) : x.created_at < y.created_at ? 1 : -1));

    const seen: string[] = [];
    let url = "/v1/payments?limit=10";
    for (const expected of [{ n: 10, more: true }, { n: 10, more: true }, { n: 5, more: false }]) {
      const page = await get(m.auth, url);
      expect(page.statusCode).toBe(200);
      const body = page.json();
      expect(body.object).toBe("list");
      expect(body.data).toHaveLength(expected.n);
      expect(body.has_more).toBe(expected.more);
      seen.push(...ids(page));
      if (expected.more) {
        expect(body.next_cursor).toEqual(expect.any(String));
        url = `/v1/payments?limit=10&cursor=${encodeURIComponent(body.next_cursor)}`;
      } else {
        expect(body.next_cursor).toBeNull();
      }
    }
    expect(seen).toEqual(newestFirst.map((p) => p.id));

    const defaultPage = await get(m.auth, "/v1/payments");
    expect(ids(defaultPage)).toEqual(newestFirst.slice(0, 10).map((p) => p.id));
    const afterThird = await get(m.auth, `/v1/payments?limit=4&starting_after=${newestFirst[2]!.id}`);
    expect(ids(afterThird)).toEqual(newestFirst.slice(3, 7).map((p) => p.id));

    // Canceled ones, two per page.
    const canceled = newestFirst.filter((p) => p.status === "canceled").map((p) => p.id);
    const canceledSeen: string[] = [];
    url = "/v1/payments?status=canceled&limit=2";
    for (;;) {
      const body = (await get(m.auth, url)).json();
      canceledSeen.push(...body.data.map((p: { id: string; status: string }) => (expect(p.status).toBe("canceled"), p.id)));
      if (!body.has_more) break;
      url = `/v1/payments?status=canceled&limit=2&cursor=${encodeURIComponent(body.next_cursor)}`;
    }
    expect(canceledSeen).toEqual(canceled);

    // The second and third minutes, inclusive at both ends, pending only.
    const window = "created_gte=2026-05-01T00:02:00.000Z&created_lte=2026-05-01T00:03:00Z";
    const inWindow = newestFirst
      .filter((p) => p.created_at >= "2026-05-01T00:02:00.000Z" && p.created_at <= "2026-05-01T00:03:00.000Z" && p.status === "pending")
      .map((p) => p.id);
    expect(inWindow).toHaveLength(8);
    const first = (await get(m.auth, `/v1/payments?${window}&status=pending&limit=4`)).json();
    expect(first.has_more).toBe(true);
    const second = (await get(m.auth, `/v1/payments?${window}&status=pending&limit=4&cursor=${encodeURIComponent(first.next_cursor)}`)).json();
    expect(second.has_more).toBe(false);
    expect([...first.data, ...second.data].map((p: { id: string }) => p.id)).toEqual(inWindow);
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["status=paid", "status"],
    ["created_gte=yesterday", "created_gte"],
    ["cursor=bm9wZQ", "cursor"],
    ["cursor=x&starting_after=pay_AAAAAAAAAAAAAAAAAAAAAA", "cursor"],
    ["starting_after=pay_AAAAAAAAAAAAAAAAAAAAAA", "starting_after"],
    ["colour=red", "colour"],
  ])("rejects %s", async (query, param) => {
    const m = await seedMerchant(t);
    const res = await get(m.auth, `/v1/payments?${query}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.param).toBe(param);
  });
});

describe("OpenAPI", () => {
  it("documents every payments route with its Idempotency-Key header and error responses", async () => {
    const spec = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    const createOp = spec.paths["/v1/payments"].post;
    expect(createOp.tags).toEqual(["payments"]);
    expect(createOp.parameters).toContainEqual(expect.objectContaining({ in: "header", name: "idempotency-key" }));
    expect(Object.keys(createOp.responses)).toEqual(expect.arrayContaining(["201", "400", "409", "422"]));
    expect(spec.paths["/v1/payments"].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["limit", "starting_after", "cursor", "status", "created_gte", "created_lte"]),
    );
    expect(spec.paths["/v1/payments/{id}"].get.summary).toBe("Retrieve a payment");
    expect(spec.paths["/v1/payments/{id}/cancel"].post.responses).toHaveProperty("409");
  });
});
