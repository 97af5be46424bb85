import { Asset, Memo } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { CLOCK_SLACK_MS } from "../src/payments/matching.js";
import { expireDuePayments } from "../src/payments/expiry.js";
import type { HorizonPaymentRecord } from "../src/stellar/incoming.js";
import { useChainApp, type ChainMerchant } from "./support/chain.js";

/**
 * What a payment is follows from its operations' close times, however late Lumenpay sees them. The
 * local network's ledgers close at the test clock's time, so "Lumenpay was down" is simply applying
 * a record long after its ledger closed.
 */

const chain = useChainApp("2026-08-01T10:00:00.000Z", { paymentDefaults: { asset: "XLM", expires_in: 60 } });
const { clock, apply, merchant, createPayment, getPayment, eventsOf } = chain;
const expire = () => expireDuePayments(chain.t.db.pool, clock.now(), chain.links());
const eventTypes = async (paymentId: string) => (await eventsOf(paymentId)).map((e) => e.type);
const pay = (m: ChainMerchant, amount: string, memo: Memo) => chain.pay(m, amount, memo);
const at = (offsetMs: number, from: Date) => new Date(from.getTime() + offsetMs).toISOString();

describe("the ledger's close time decides", () => {
  it("confirms a payment whose operation closed before expiry even when it is seen after the expiry job ran", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "5" });
    const created = new Date(p.created_at);
    clock.advance(30_000);
    const record = await pay(m, "5", Memo.id(p.memo));
    // Lumenpay is down past expiry: the job expires the payment before ingestion sees the operation.
    clock.advance(60_000);
    expect(await expire()).toBeGreaterThanOrEqual(1);
    expect((await getPayment(m, p.id)).status).toBe("expired");

    expect(await apply(record)).toMatchObject({ kind: "applied", status: "confirmed", eventType: "payment.confirmed", late: false });
    const paid = await getPayment(m, p.id);
    expect(paid).toMatchObject({
      status: "confirmed",
      amount_received: "5",
      confirmed_at: at(30_000, created),
      expired_at: at(90_000, created),
      settlements: [expect.objectContaining({ closed_at: at(30_000, created), late: false })],
    });
    expect(await eventTypes(p.id)).toEqual(["payment.created", "payment.expired", "payment.confirmed"]);
    const confirmed = (await eventsOf(p.id))[2]!;
    expect(JSON.parse(confirmed.body)).toMatchObject({ sequence: 3, data: { object: paid } });
  });

  it("keeps a payment paid after expires_at expired, with one late event and a late settlement", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "5" });
    clock.advance(61_000);
    const record = await pay(m, "5", Memo.id(p.memo));
    await expire();
    expect(await apply(record)).toMatchObject({ status: "expired", eventType: "payment.late_payment_received", late: true });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "expired", amount_received: "0", settlements: [expect.objectContaining({ amount: "5", late: true })] });
    expect(await eventTypes(p.id)).toEqual(["payment.created", "payment.expired", "payment.late_payment_received"]);
  });

  it("expires a still-open payment first when an operation proves its deadline passed", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "5" });
    clock.advance(65_000);
    // The expiry job has not run yet: the operation alone shows the payment ran out.
    expect(await apply(await pay(m, "5", Memo.id(p.memo)))).toMatchObject({ status: "expired", late: true });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "expired", expired_at: clock.now().toISOString(), amount_received: "0" });
    expect(await eventTypes(p.id)).toEqual(["payment.created", "payment.expired", "payment.late_payment_received"]);
    expect(await expire()).toBe(0);
  });

  it("records an on-time partial payment seen after expiry, and the payment stays expired", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "5" });
    clock.advance(10_000);
    const record = await pay(m, "2", Memo.id(p.memo));
    clock.advance(60_000);
    await expire();
    expect(await apply(record)).toMatchObject({ status: "expired", eventType: "payment.partially_paid", late: false });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "expired", amount_received: "2" });
    const events = await eventsOf(p.id);
    expect(events.map((e) => [e.type, e.sequence, JSON.parse(e.body).data.object.status])).toEqual([
      ["payment.created", 1, "pending"],
      ["payment.expired", 2, "expired"],
      ["payment.partially_paid", 3, "partially_paid"],
      // The last event shows the state: a receiver that keeps the highest sequence ends on expired.
      ["payment.expired", 4, "expired"],
    ]);
  });

  it("confirms a payment canceled while its on-time operation was on its way; one after the cancel is late", async () => {
    const m = await merchant();
    const [paidInTime, paidLate] = [await createPayment(m, { amount: "1" }), await createPayment(m, { amount: "1" })];
    const inTime = await pay(m, "1", Memo.id(paidInTime.memo));
    clock.advance(1_000);
    for (const p of [paidInTime, paidLate]) {
      expect((await chain.t.app.inject({ method: "POST", url: `/v1/payments/${p.id}/cancel`, headers: m.auth })).statusCode).toBe(200);
    }
    clock.advance(1_000);
    const afterCancel = await pay(m, "1", Memo.id(paidLate.memo));

    expect(await apply(inTime)).toMatchObject({ status: "confirmed", late: false });
    expect(await getPayment(m, paidInTime.id)).toMatchObject({ status: "confirmed", canceled_at: expect.any(String) });
    expect(await apply(afterCancel)).toMatchObject({ status: "canceled", late: true, eventType: "payment.late_payment_received" });
    expect(await eventTypes(paidLate.id)).toEqual(["payment.created", "payment.canceled", "payment.late_payment_received"]);
  });

  it("treats a second operation after full payment as late, and never confirms twice", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "1" });
    const [first, second] = [await pay(m, "1", Memo.id(p.memo)), await pay(m, "1", Memo.id(p.memo))];
    expect(await apply(first)).toMatchObject({ status: "confirmed", late: false });
    expect(await apply(second)).toMatchObject({ status: "confirmed", late: true });
    expect(await eventTypes(p.id)).toEqual(["payment.created", "payment.confirmed", "payment.late_payment_received"]);
  });
});

describe("stale operations never settle a newer payment", () => {
  /** A canceled "order-42" and an operation for it that closed after the cancel, not yet applied. */
  async function reusedMemo(m: ChainMerchant, memo: string) {
    const a = await createPayment(m, { amount: "3", memo_type: "text", memo });
    await chain.t.app.inject({ method: "POST", url: `/v1/payments/${a.id}/cancel`, headers: m.auth });
    clock.advance(10_000);
    const record = await pay(m, "3", Memo.text(memo));
    return { a, record };
  }

  it("records it against the old payment as late, whether the new payment exists yet or not", async () => {
    const m = await merchant();
    // Seen before the merchant reuses the memo…
    const before = await reusedMemo(m, "order-41");
    expect(await apply(before.record)).toMatchObject({ paymentId: before.a.id, late: true });
    // …and after: the new payment is created right after the operation closed, well within the clock slack.
    const after = await reusedMemo(m, "order-42");
    clock.advance(2_000);
    const b = await createPayment(m, { amount: "3", memo_type: "text", memo: "order-42" });
    expect(new Date(b.created_at).getTime() - Date.parse(after.record.created_at)).toBeLessThan(CLOCK_SLACK_MS);
    expect(await apply(after.record)).toMatchObject({ paymentId: after.a.id, late: true, eventType: "payment.late_payment_received" });
    expect(await getPayment(m, b.id)).toMatchObject({ status: "pending", amount_received: "0", settlements: [] });
    expect(await eventTypes(b.id)).toEqual(["payment.created"]);

    // Verifying the new payment finds the operation but leaves it to the payment it belongs to.
    const verified = await chain.t.app.inject({
      method: "POST",
      url: `/v1/payments/${b.id}/verify`,
      headers: m.auth,
      payload: { transaction_hash: after.record.transaction_hash },
    });
    expect(verified.statusCode).toBe(422);
    expect(verified.json().error.code).toBe("transaction_not_matching");
    expect((await chain.t.app.inject({ method: "POST", url: `/v1/payments/${b.id}/verify`, headers: m.auth })).json().status).toBe("pending");
  });

  it("lists an operation older than every payment carrying its memo as unmatched (before_payment), never settling one", async () => {
    const m = await merchant();
    const record = await pay(m, "3", Memo.text("order-43"));
    clock.advance(CLOCK_SLACK_MS + 1_000);
    const b = await createPayment(m, { amount: "3", memo_type: "text", memo: "order-43" });
    expect(await apply(record)).toEqual({ kind: "unmatched", merchantId: m.merchant.id, reason: "before_payment" });
    expect(await getPayment(m, b.id)).toMatchObject({ status: "pending", settlements: [] });
    const listed = (await chain.t.app.inject({ method: "GET", url: "/v1/unmatched_payments", headers: m.auth })).json().data;
    expect(listed).toEqual([expect.objectContaining({ reason: "before_payment", payment_id: b.id, operation_id: record.id, memo_type: "text", memo: "order-43" })]);
  });

  it("stops matching a payment after its monitoring window: late inside it, unmatched after it", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "1", monitor_for: 120 });
    expect(p.monitor_for).toBe(120);
    expect((await createPayment(m, { amount: "1" })).monitor_for).toBe(86_400);
    clock.advance(60_000 + 119_000);
    const inside = await pay(m, "1", Memo.id(p.memo));
    clock.advance(2_000);
    const outside = await pay(m, "1", Memo.id(p.memo));
    expect(await apply(inside)).toMatchObject({ paymentId: p.id, late: true });
    expect(await apply(outside)).toEqual({ kind: "unmatched", merchantId: m.merchant.id, reason: "after_monitoring_window" });
    expect((await getPayment(m, p.id)).settlements).toHaveLength(1);
  });

  it("matches only the payments of the merchant that owns the account now", async () => {
    const a = await merchant();
    const p = await createPayment(a, { amount: "1" });
    await chain.t.app.inject({ method: "POST", url: `/v1/payments/${p.id}/cancel`, headers: a.auth });
    // A gives the account up; B attaches it and receives an operation carrying A's old memo.
    await chain.t.app.inject({ method: "PATCH", url: "/v1/merchant", headers: a.auth, payload: { accounts: [(await chain.horizon.newAccount("1")).publicKey()] } });
    clock.advance(1_000);
    const b = await chain.merchant({ accounts: [a.account] });
    clock.advance(1_000);
    const record = await pay({ ...b, account: a.account }, "1", Memo.id(p.memo));
    expect(await apply(record)).toEqual({ kind: "unmatched", merchantId: b.merchant.id, reason: "unknown_memo" });
    expect((await getPayment(a, p.id)).settlements).toEqual([]);
  });
});

describe("unmatched operations", () => {
  it("lists payments without memo, with an unknown memo and in the wrong asset, one event each, nothing confirmed", async () => {
    const issuer = await chain.horizon.newAccount("10");
    const usdc = new Asset("USDC", issuer.publicKey());
    await chain.horizon.pay({ from: issuer, to: chain.payer.publicKey(), amount: "100", asset: usdc });
    const m = await merchant();
    const p = await createPayment(m, { amount: "2" });
    const noMemo = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "2" });
    const unknown = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "2.5", memo: Memo.text("what is this") });
    const wrongAsset = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "2", asset: usdc, memo: Memo.id(p.memo) });
    const records: HorizonPaymentRecord[] = [];
    for (const { hash } of [noMemo, unknown, wrongAsset]) records.push(await chain.recordOf(m.account, hash));
    const outcomes = [];
    for (const record of records) {
      // Recorded a second apart, so the list's newest-first order is this order reversed.
      clock.advance(1_000);
      outcomes.push(await apply(record));
    }
    expect(outcomes.map((o) => o.kind === "unmatched" && o.reason)).toEqual(["no_memo", "unknown_memo", "wrong_asset"]);
    // Replayed: recorded once.
    expect(await apply(records[0]!)).toEqual({ kind: "duplicate" });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "pending", amount_received: "0", settlements: [] });

    const list = await chain.t.app.inject({ method: "GET", url: "/v1/unmatched_payments?limit=2", headers: m.auth });
    expect(list.statusCode).toBe(200);
    const page = list.json();
    expect(page).toMatchObject({ object: "list", has_more: true });
    const rest = (await chain.t.app.inject({ method: "GET", url: `/v1/unmatched_payments?cursor=${page.next_cursor}`, headers: m.auth })).json();
    const all = [...page.data, ...rest.data].reverse();
    expect(all).toEqual([
      expect.objectContaining({ object: "unmatched_payment", reason: "no_memo", amount: "2", asset: "XLM", memo_type: "none", memo: null, payment_id: null, transaction_hash: noMemo.hash }),
      expect.objectContaining({ reason: "unknown_memo", amount: "2.5", memo_type: "text", memo: "what is this", from: chain.payer.publicKey() }),
      expect.objectContaining({ reason: "wrong_asset", asset: { code: "USDC", issuer: issuer.publicKey() }, memo_type: "id", memo: p.memo, payment_id: p.id }),
    ]);
    expect(all.map((u: { destination: string; closed_at: string }) => [u.destination, u.closed_at])).toEqual(
      records.map((r) => [m.account, new Date(r.created_at).toISOString()]),
    );
    const filtered = (await chain.t.app.inject({ method: "GET", url: "/v1/unmatched_payments?reason=wrong_asset", headers: m.auth })).json();
    expect(filtered.data.map((u: { reason: string }) => u.reason)).toEqual(["wrong_asset"]);

    const one = await chain.t.app.inject({ method: "GET", url: `/v1/unmatched_payments/${all[1].id}`, headers: m.auth });
    expect(one.json()).toEqual(all[1]);

    const { rows } = await chain.t.db.pool.query<{ body: string }>(
      "select body from events where merchant_id = $1 and type = 'payment.unmatched_received' order by created_at, id",
      [m.merchant.id],
    );
    expect(rows.map((r) => JSON.parse(r.body).data.object.id).sort()).toEqual(all.map((u: { id: string }) => u.id).sort());

  });

  it("lists a muxed payment to an unknown id with its M address, and keeps each merchant's list to itself", async () => {
    const m = await merchant();
    const other = await merchant();
    const p = await createPayment(m, { amount: "1", muxed: true });
    const strangerId = (BigInt(p.muxed_id) ^ 1n).toString();
    const { muxedAddress } = await import("../src/payments/service.js");
    const stranger = muxedAddress(m.account, strangerId);
    const record = await chain.pay(m, "1", undefined, stranger);
    expect(await apply(record)).toMatchObject({ kind: "unmatched", reason: "unknown_memo" });
    const mine = (await chain.t.app.inject({ method: "GET", url: "/v1/unmatched_payments", headers: m.auth })).json().data;
    expect(mine).toEqual([expect.objectContaining({ destination: stranger, destination_account: m.account, muxed_id: strangerId })]);

    const theirs = await chain.t.app.inject({ method: "GET", url: "/v1/unmatched_payments", headers: other.auth });
    expect(theirs.json().data).toEqual([]);
    const peek = await chain.t.app.inject({ method: "GET", url: `/v1/unmatched_payments/${mine[0].id}`, headers: other.auth });
    expect(peek.statusCode).toBe(404);
    expect((await chain.t.app.inject({ method: "GET", url: "/v1/unmatched_payments/pay_x", headers: m.auth })).statusCode).toBe(404);
    expect((await chain.t.app.inject({ method: "GET", url: "/v1/unmatched_payments?reason=bogus", headers: m.auth })).statusCode).toBe(400);
  });
});
