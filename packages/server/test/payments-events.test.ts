import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, seedMerchant, type TestApp } from "./support/app.js";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

const eventsOf = async (paymentId: string) =>
  (await t.db.pool.query<{ type: string; sequence: number; body: string }>("select type, sequence, body from events where payment_id = $1 order by sequence", [paymentId])).rows;

describe("payment events (the outbox)", () => {
  it("writes payment.created and payment.canceled with growing sequence and the API's payment object", async () => {
    const m = await seedMerchant(t);
    const created = await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "5", asset: "XLM" } });
    expect(created.statusCode).toBe(201);
    const canceled = await t.app.inject({ method: "POST", url: `/v1/payments/${created.json().id}/cancel`, headers: m.auth });
    expect(canceled.statusCode).toBe(200);

    const events = await eventsOf(created.json().id);
    expect(events.map((e) => [e.type, e.sequence])).toEqual([["payment.created", 1], ["payment.canceled", 2]]);
    const [first, second] = events.map((e) => JSON.parse(e.body));
    expect(first).toMatchObject({ type: "payment.created", sequence: 1, api_version: expect.any(String), data: { object: created.json() } });
    expect(first.id).toMatch(/^evt_/);
    expect(second.data.object).toEqual(canceled.json());
  });

  it("writes no event when the request fails validation or the cancel is refused", async () => {
    const m = await seedMerchant(t);
    const before = await t.db.pool.query("select count(*)::int as n from events where merchant_id = $1", [m.merchant.id]);
    const bad = await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "0", asset: "XLM" } });
    expect(bad.statusCode).toBe(400);
    const created = await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "1", asset: "XLM" } });
    await t.app.inject({ method: "POST", url: `/v1/payments/${created.json().id}/cancel`, headers: m.auth });
    const again = await t.app.inject({ method: "POST", url: `/v1/payments/${created.json().id}/cancel`, headers: m.auth });
    expect(again.statusCode).toBe(409);
    const after = await t.db.pool.query("select count(*)::int as n from events where merchant_id = $1", [m.merchant.id]);
    expect(after.rows[0].n - before.rows[0].n).toBe(2);
  });
});
