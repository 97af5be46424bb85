import { Memo } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { VERIFY_LIMIT_PER_MINUTE } from "../src/payments/verify-routes.js";
import { buildTestApp, seedMerchant } from "./support/app.js";
import { useChainApp, type ChainMerchant } from "./support/chain.js";

const chain = useChainApp("2026-07-01T09:00:00.000Z", { paymentDefaults: { amount: "5", asset: "XLM" } });
const { clock, merchant, createPayment, getPayment, eventsOf } = chain;
const verify = (m: ChainMerchant, id: string, payload?: object) =>
  chain.t.app.inject({ method: "POST", url: `/v1/payments/${id}/verify`, headers: m.auth, ...(payload && { payload }) });
const eventTypes = async (paymentId: string) => (await eventsOf(paymentId)).map((e) => e.type);

describe("POST /v1/payments/:id/verify", () => {
  it("without a hash, finds the payments on the destination's recent history and applies them in chain order", async () => {
    const m = await merchant();
    const p = await createPayment(m);
    const unchanged = await verify(m, p.id);
    expect(unchanged.statusCode).toBe(200);
    expect(unchanged.json()).toEqual(p);

    const first = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "2", memo: Memo.id(p.memo) });
    await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "1", memo: Memo.id("1") });
    const second = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "3", memo: Memo.id(p.memo) });
    const res = await verify(m, p.id);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ id: p.id, status: "confirmed", amount_received: "5", confirmed_at: clock.now().toISOString() });
    expect(body.settlements.map((s: { transaction_hash: string; amount: string }) => [s.transaction_hash, s.amount])).toEqual([
      [first.hash, "2"],
      [second.hash, "3"],
    ]);
    expect(await eventTypes(p.id)).toEqual(["payment.created", "payment.partially_paid", "payment.confirmed"]);

    // Verifying again (or ingestion catching up) changes nothing.
    expect((await verify(m, p.id)).json()).toEqual(body);
    expect(await eventTypes(p.id)).toHaveLength(3);
    const metrics = (await chain.t.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toMatch(/^payments_confirmed_total\{asset="XLM"\} [1-9]/m);
  });

  it("with a hash, fetches that transaction from Horizon and applies it", async () => {
    const m = await merchant();
    const p = await createPayment(m, { muxed: true });
    const { hash } = await chain.horizon.pay({ from: chain.payer, to: p.destination, amount: "5" });
    const res = await verify(m, p.id, { transaction_hash: hash.toUpperCase() });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ status: "confirmed", settlements: [expect.objectContaining({ transaction_hash: hash, amount: "5", late: false })] });
    // Already applied: still a success, not a mismatch.
    expect((await verify(m, p.id, { transaction_hash: hash })).statusCode).toBe(200);
  });

  it("refuses a hash whose transaction does not pay this payment, and one Horizon does not know", async () => {
    const m = await merchant();
    const p = await createPayment(m);
    const elsewhere = await chain.horizon.newAccount("1");
    const other = await chain.horizon.pay({ from: chain.payer, to: elsewhere.publicKey(), amount: "5", memo: Memo.id(p.memo) });
    const wrongMemo = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "5", memo: Memo.id("12345") });
    const failed = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "5", memo: Memo.id(p.memo), successful: false });
    for (const hash of [other.hash, wrongMemo.hash, failed.hash]) {
      const res = await verify(m, p.id, { transaction_hash: hash });
      expect(res.statusCode, hash).toBe(422);
      expect(res.json().error).toMatchObject({ code: "transaction_not_matching", param: "transaction_hash" });
    }
    const unknown = await verify(m, p.id, { transaction_hash: "ab".repeat(32) });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error).toMatchObject({ code: "transaction_not_found", param: "transaction_hash" });
    const malformed = await verify(m, p.id, { transaction_hash: "not-a-hash" });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error).toMatchObject({ code: "invalid_request", param: "transaction_hash" });

    expect(await getPayment(m, p.id)).toMatchObject({ status: "pending", settlements: [] });
  });

  it("answers 404 for another merchant's payment and touches nothing", async () => {
    const owner = await merchant();
    const intruder = await merchant();
    const p = await createPayment(owner);
    const { hash } = await chain.horizon.pay({ from: chain.payer, to: owner.account, amount: "5", memo: Memo.id(p.memo) });
    for (const payload of [undefined, { transaction_hash: hash }]) {
      const res = await verify(intruder, p.id, payload);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe("resource_not_found");
    }
    expect(await eventTypes(p.id)).toEqual(["payment.created"]);
  });

  it(`allows ${VERIFY_LIMIT_PER_MINUTE} verifications a minute per merchant, then 429 with Retry-After`, async () => {
    clock.set(new Date("2026-07-01T10:00:15.000Z"));
    const m = await merchant();
    const other = await merchant();
    const p = await createPayment(m);
    for (let i = 0; i < VERIFY_LIMIT_PER_MINUTE; i++) expect((await verify(m, p.id)).statusCode).toBe(200);
    const limited = await verify(m, p.id);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers["retry-after"]).toBe("45");
    expect(limited.json().error.code).toBe("rate_limited");
    // Other merchants and other routes are not affected.
    expect((await verify(other, (await createPayment(other)).id)).statusCode).toBe(200);
    expect((await chain.t.app.inject({ method: "GET", url: `/v1/payments/${p.id}`, headers: m.auth })).statusCode).toBe(200);
    clock.advance(45_000);
    expect((await verify(m, p.id)).statusCode).toBe(200);
  });

  it("answers 502 when Horizon cannot be reached", async () => {
    const down = await buildTestApp({ env: { STELLAR_NETWORK: "custom", STELLAR_NETWORK_PASSPHRASE: chain.horizon.networkPassphrase, HORIZON_URL: "http://127.0.0.1:9" } });
    try {
      const m = await seedMerchant(down);
      const created = await down.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "1", asset: "XLM" } });
      const res = await down.app.inject({ method: "POST", url: `/v1/payments/${created.json().id}/verify`, headers: m.auth });
      expect(res.statusCode).toBe(502);
      expect(res.json().error.code).toBe("horizon_unavailable");
    } finally {
      await down.close();
    }
  });
});
