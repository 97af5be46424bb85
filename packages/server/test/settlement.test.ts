import { Memo } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { createMetrics } from "../src/metrics/registry.js";
import { chainEventId, observeSettlement } from "../src/payments/settlement.js";
import type { HorizonPaymentRecord } from "../src/stellar/incoming.js";
import { useChainApp, type ChainMerchant } from "./support/chain.js";

const chain = useChainApp("2026-05-01T10:00:00.000Z", { paymentDefaults: { asset: "XLM" } });
const { clock, apply, merchant, getPayment, eventsOf } = chain;
const createPayment = (m: ChainMerchant, amount: string) => chain.createPayment(m, { amount });

/** Pays the payment's memo on-chain and returns the Horizon record (not yet applied). */
const pay = (m: ChainMerchant, p: { memo: string }, amount: string): Promise<HorizonPaymentRecord> => chain.pay(m, amount, Memo.id(p.memo));

describe("amounts", () => {
  it("confirms an exact payment, leaves an underpayment partially paid and flags an overpayment", async () => {
    const m = await merchant();
    const [exact, under, over] = [await createPayment(m, "10"), await createPayment(m, "10"), await createPayment(m, "10")];
    expect(await apply(await pay(m, exact, "10"))).toMatchObject({ status: "confirmed", eventType: "payment.confirmed" });
    expect(await apply(await pay(m, under, "9.9999999"))).toMatchObject({ status: "partially_paid", eventType: "payment.partially_paid" });
    expect(await apply(await pay(m, over, "10.0000001"))).toMatchObject({ status: "confirmed", eventType: "payment.confirmed" });

    expect(await getPayment(m, exact.id)).toMatchObject({ status: "confirmed", amount_received: "10", overpaid: false, confirmed_at: clock.now().toISOString() });
    expect(await getPayment(m, under.id)).toMatchObject({ status: "partially_paid", amount_received: "9.9999999", overpaid: false, confirmed_at: null });
    expect(await getPayment(m, over.id)).toMatchObject({ status: "confirmed", amount_received: "10.0000001", overpaid: true });
  });

  it("handles seven-decimal amounts exactly, down to one stroop", async () => {
    const m = await merchant();
    const p = await createPayment(m, "12.3456789");
    expect(await apply(await pay(m, p, "12.3456788"))).toMatchObject({ status: "partially_paid" });
    expect(await getPayment(m, p.id)).toMatchObject({ amount_received: "12.3456788" });
    expect(await apply(await pay(m, p, "0.0000001"))).toMatchObject({ status: "confirmed" });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "confirmed", amount_received: "12.3456789", overpaid: false });
    const { rows } = await chain.t.db.pool.query("select amount_received_stroops::text as r from payments where id = $1", [p.id]);
    expect(rows[0].r).toBe("123456789");
  });

  it("accumulates two partial payments into one confirmation, recording each operation", async () => {
    const m = await merchant();
    const p = await createPayment(m, "5");
    const first = await pay(m, p, "2");
    clock.advance(90_000);
    const second = await pay(m, p, "3");
    expect(await apply(first)).toMatchObject({ status: "partially_paid", late: false });
    expect(await apply(second)).toMatchObject({ status: "confirmed", late: false, confirmationLatencySeconds: 90 });

    const paid = await getPayment(m, p.id);
    expect(paid).toMatchObject({ status: "confirmed", amount_received: "5", overpaid: false, confirmed_at: clock.now().toISOString() });
    expect(paid.settlements).toEqual(
      [first, second].map((r) => ({
        transaction_hash: r.transaction_hash,
        operation_id: r.id,
        ledger: Number(BigInt(r.id) >> 32n),
        closed_at: new Date(r.created_at).toISOString(),
        amount: r === first ? "2" : "3",
        asset: "XLM",
        from: chain.payer.publicKey(),
        late: false,
      })),
    );
    const transactions = await Promise.all([first, second].map((r) => chain.server.transactions().transaction(r.transaction_hash).call()));
    expect(paid.settlements.map((s: { ledger: number }) => s.ledger)).toEqual(transactions.map((tx) => tx.ledger_attr));

    const events = await eventsOf(p.id);
    expect(events.map((e) => [e.type, e.sequence])).toEqual([["payment.created", 1], ["payment.partially_paid", 2], ["payment.confirmed", 3]]);
    expect(JSON.parse(events[2]!.body).data.object).toEqual(paid);
  });
});

describe("replays and concurrent instances", () => {
  it("applies the same record twice as one confirmation with one event; the second is a duplicate", async () => {
    const m = await merchant();
    const p = await createPayment(m, "1");
    const record = await pay(m, p, "1");
    expect(await apply(record)).toMatchObject({ kind: "applied", status: "confirmed" });
    expect(await apply(record)).toEqual({ kind: "duplicate" });
    const paid = await getPayment(m, p.id);
    expect(paid).toMatchObject({ status: "confirmed", amount_received: "1" });
    expect(paid.settlements).toHaveLength(1);
    expect((await eventsOf(p.id)).map((e) => e.type)).toEqual(["payment.created", "payment.confirmed"]);
  });

  it("lets only one of three concurrent applications of the same operation count it", async () => {
    const m = await merchant();
    const p = await createPayment(m, "10");
    const record = await pay(m, p, "4");
    const outcomes = await Promise.all([apply(record), apply(record), apply(record)]);
    expect(outcomes.filter((o) => o.kind === "applied")).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === "duplicate")).toHaveLength(2);
    expect(await getPayment(m, p.id)).toMatchObject({ status: "partially_paid", amount_received: "4" });
    expect((await eventsOf(p.id)).map((e) => e.type)).toEqual(["payment.created", "payment.partially_paid"]);
  });

  it("serializes instances applying different operations to one payment, so no amount is lost", async () => {
    const m = await merchant();
    const p = await createPayment(m, "10");
    const [four, six] = [await pay(m, p, "4"), await pay(m, p, "6")];
    const outcomes = await Promise.all([apply(four), apply(six)]);
    expect(outcomes.map((o) => (o.kind === "applied" ? o.status : o.kind)).sort()).toEqual(["confirmed", "partially_paid"]);
    expect(await getPayment(m, p.id)).toMatchObject({ status: "confirmed", amount_received: "10" });
  });

  it("gives chain events ids derived from network, operation and type", async () => {
    const m = await merchant();
    const p = await createPayment(m, "1");
    const record = await pay(m, p, "1");
    await apply(record);
    const confirmed = (await eventsOf(p.id)).find((e) => e.type === "payment.confirmed")!;
    const expected = chainEventId(chain.horizon.networkPassphrase, record.id, "payment.confirmed");
    expect(confirmed.id).toBe(expected);
    expect(expected).toMatch(/^evt_[0-9a-f]{22}$/);
    expect(JSON.parse(confirmed.body).id).toBe(expected);
    // Another network, operation or type gives another id.
    expect(chainEventId("Test SDF Network ; September 2015", record.id, "payment.confirmed")).not.toBe(expected);
    expect(chainEventId(chain.horizon.networkPassphrase, (BigInt(record.id) + 1n).toString(), "payment.confirmed")).not.toBe(expected);
    expect(chainEventId(chain.horizon.networkPassphrase, record.id, "payment.partially_paid")).not.toBe(expected);
  });
});

describe("observeSettlement", () => {
  it("counts confirmations by asset with their latency from creation, and unmatched operations by reason", async () => {
    const metrics = createMetrics(chain.t.db.pool);
    const m = await merchant();
    const p = await createPayment(m, "3");
    clock.advance(42_000);
    const partial = await apply(await pay(m, p, "1"));
    observeSettlement(metrics, partial);
    observeSettlement(metrics, { kind: "duplicate" });
    observeSettlement(metrics, { kind: "ignored", reason: "not_ours" });
    expect((await metrics.paymentsConfirmed.get()).values).toEqual([]);
    observeSettlement(metrics, { kind: "unmatched", merchantId: m.merchant.id, reason: "no_memo" });
    expect((await metrics.paymentsUnmatched.get()).values).toEqual([expect.objectContaining({ labels: { reason: "no_memo" }, value: 1 })]);

    const confirmed = await apply(await pay(m, p, "2"));
    expect(confirmed).toMatchObject({ kind: "applied", eventType: "payment.confirmed", asset: "XLM", confirmationLatencySeconds: 42 });
    observeSettlement(metrics, confirmed);
    expect((await metrics.paymentsConfirmed.get()).values).toEqual([expect.objectContaining({ labels: { asset: "XLM" }, value: 1 })]);
    const latency = (await metrics.paymentConfirmationLatency.get()).values;
    expect(latency.find((v) => v.metricName === "payment_confirmation_latency_seconds_sum")?.value).toBe(42);
    expect(latency.find((v) => v.metricName === "payment_confirmation_latency_seconds_count")?.value).toBe(1);
  });
});
