import { Memo } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { expireDuePayments } from "../src/payments/expiry.js";
import { applyPaymentRecord } from "../src/payments/settlement.js";
import { useChainApp } from "./support/chain.js";

const chain = useChainApp("2026-06-01T08:00:00.000Z", { paymentDefaults: { asset: "XLM", expires_in: 60 } });
const { clock, links, ctx, apply, pay, merchant, createPayment, getPayment, eventsOf } = chain;
const expire = (limit?: number) => expireDuePayments(chain.t.db.pool, clock.now(), links(), { limit });

/** Moves the clock to `iso` and expires what earlier tests left due, so counts below are this test's own. */
async function startAt(iso: string) {
  clock.set(new Date(iso));
  await expire();
}

describe("expireDuePayments", () => {
  it("expires pending and partially paid payments once expires_at is reached, in batches, each with payment.expired", async () => {
    await startAt("2026-06-01T08:00:00.000Z");
    const m = await merchant();
    const [a, b, partial] = [await createPayment(m, { amount: "5" }), await createPayment(m, { amount: "5" }), await createPayment(m, { amount: "5" })];
    const later = await createPayment(m, { amount: "5", expires_in: 120 });
    const confirmed = await createPayment(m, { amount: "5" });
    const canceled = await createPayment(m, { amount: "5" });
    await apply(await pay(m, "2", Memo.id(partial.memo)));
    await apply(await pay(m, "5", Memo.id(confirmed.memo)));
    await chain.t.app.inject({ method: "POST", url: `/v1/payments/${canceled.id}/cancel`, headers: m.auth });

    clock.advance(59_999);
    expect(await expire()).toBe(0);
    clock.advance(1);
    // Batches of two: two full batches and an empty one.
    expect(await expire(2)).toBe(3);
    expect(await expire(2)).toBe(0);

    const now = clock.now().toISOString();
    for (const p of [a, b]) expect(await getPayment(m, p.id)).toMatchObject({ status: "expired", expired_at: now, updated_at: now, amount_received: "0" });
    expect(await getPayment(m, partial.id)).toMatchObject({ status: "expired", expired_at: now, amount_received: "2", settlements: [expect.objectContaining({ amount: "2", late: false })] });
    expect(await getPayment(m, later.id)).toMatchObject({ status: "pending", expired_at: null });
    expect((await getPayment(m, confirmed.id)).status).toBe("confirmed");
    expect((await getPayment(m, canceled.id)).status).toBe("canceled");

    for (const p of [a, b, partial]) {
      const events = await eventsOf(p.id);
      expect(events.filter((e) => e.type === "payment.expired")).toHaveLength(1);
      const expired = JSON.parse(events.at(-1)!.body);
      expect(expired).toMatchObject({ type: "payment.expired", data: { object: await getPayment(m, p.id) } });
    }
    expect((await eventsOf(later.id)).map((e) => e.type)).toEqual(["payment.created"]);
  });

  it("skips a payment whose settlement is being applied, so the confirmation wins", async () => {
    await startAt("2026-06-02T08:00:00.000Z");
    const m = await merchant();
    const p = await createPayment(m, { amount: "1" });
    const record = await pay(m, "1", Memo.id(p.memo));
    clock.advance(120_000);
    const client = await chain.t.db.pool.connect();
    try {
      await client.query("begin");
      // Ingestion took the row lock just before expiry was due to run.
      expect(await applyPaymentRecord(client, record, ctx(m.account))).toMatchObject({ kind: "applied", status: "confirmed" });
      expect(await expire()).toBe(0);
      await client.query("commit");
    } finally {
      client.release();
    }
    expect(await expire()).toBe(0);
    expect(await getPayment(m, p.id)).toMatchObject({ status: "confirmed", expired_at: null });
  });
});

describe("late payments", () => {
  it("records a payment after expiry as late: no confirmation, payment.late_payment_received, once", async () => {
    await startAt("2026-06-03T08:00:00.000Z");
    const m = await merchant();
    const p = await createPayment(m, { amount: "3" });
    clock.advance(60_000);
    expect(await expire()).toBe(1);
    // Closed a second after expires_at: late, by the ledger's close time.
    clock.advance(1_000);
    const record = await pay(m, "3", Memo.id(p.memo));
    clock.advance(5_000);

    const outcome = await apply(record);
    expect(outcome).toEqual({ kind: "applied", paymentId: p.id, merchantId: m.merchant.id, status: "expired", eventType: "payment.late_payment_received", asset: "XLM", late: true });
    const got = await getPayment(m, p.id);
    expect(got).toMatchObject({ status: "expired", amount_received: "0", overpaid: false, confirmed_at: null, updated_at: clock.now().toISOString() });
    expect(got.settlements).toEqual([expect.objectContaining({ operation_id: record.id, amount: "3", late: true })]);
    expect((await eventsOf(p.id)).map((e) => e.type)).toEqual(["payment.created", "payment.expired", "payment.late_payment_received"]);
    expect(JSON.parse((await eventsOf(p.id))[2]!.body).data.object).toEqual(got);

    expect(await apply(record)).toEqual({ kind: "duplicate" });
    expect(await eventsOf(p.id)).toHaveLength(3);
  });

  it("treats payments to canceled and to already-confirmed payments as late", async () => {
    await startAt("2026-06-03T12:00:00.000Z");
    const m = await merchant();
    const canceled = await createPayment(m, { amount: "1" });
    await chain.t.app.inject({ method: "POST", url: `/v1/payments/${canceled.id}/cancel`, headers: m.auth });
    clock.advance(1_000);
    expect(await apply(await pay(m, "1", Memo.id(canceled.memo)))).toMatchObject({ status: "canceled", late: true, eventType: "payment.late_payment_received" });

    const paid = await createPayment(m, { amount: "1" });
    expect(await apply(await pay(m, "1", Memo.id(paid.memo)))).toMatchObject({ status: "confirmed", late: false });
    // The customer paid twice: the second payment is for the merchant to refund, not an overpayment.
    expect(await apply(await pay(m, "1", Memo.id(paid.memo)))).toMatchObject({ status: "confirmed", late: true, eventType: "payment.late_payment_received" });
    const got = await getPayment(m, paid.id);
    expect(got).toMatchObject({ amount_received: "1", overpaid: false });
    expect(got.settlements.map((s: { late: boolean }) => s.late)).toEqual([false, true]);
  });

  it("keeps what a partially paid payment received when it expires; a later top-up is late", async () => {
    await startAt("2026-06-04T08:00:00.000Z");
    const m = await merchant();
    const p = await createPayment(m, { amount: "5" });
    await apply(await pay(m, "2", Memo.id(p.memo)));
    clock.advance(60_000);
    expect(await expire()).toBe(1);
    clock.advance(1_000);
    expect(await apply(await pay(m, "3", Memo.id(p.memo)))).toMatchObject({ status: "expired", late: true });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "expired", amount_received: "2" });
  });

  it("sends a payment to the open payment that reuses an expired payment's memo", async () => {
    await startAt("2026-06-05T08:00:00.000Z");
    const m = await merchant();
    const old = await createPayment(m, { amount: "1", memo_type: "text", memo: "invoice-7" });
    clock.advance(60_000);
    expect(await expire()).toBe(1);
    const fresh = await createPayment(m, { amount: "1", memo_type: "text", memo: "invoice-7" });
    expect(await apply(await pay(m, "1", Memo.text("invoice-7")))).toMatchObject({ paymentId: fresh.id, status: "confirmed", late: false });
    expect((await getPayment(m, old.id)).settlements).toEqual([]);
  });
});
