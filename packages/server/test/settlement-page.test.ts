import { Memo } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { transaction } from "../src/db/pool.js";
import { applyPaymentPage, type SettlementOutcome } from "../src/payments/settlement.js";
import type { HorizonPaymentRecord } from "../src/stellar/incoming.js";
import { useChainApp, type ChainMerchant } from "./support/chain.js";

/**
 * Ingestion applies a page of records in one transaction (`applyPaymentPage`): each record must
 * see what the earlier ones of the page did, exactly as if they had been applied one by one.
 */

const chain = useChainApp("2026-09-01T10:00:00.000Z", { paymentDefaults: { asset: "XLM" } });
const { clock, apply, merchant, createPayment, getPayment, eventsOf } = chain;

const applyPage = (m: ChainMerchant, records: HorizonPaymentRecord[]) =>
  transaction(chain.t.db.pool, (tx) => applyPaymentPage(tx, records, chain.ctx(m.account)));

/**
 * One story, told to every merchant in `ms` at the same ledger times: partial payments adding up,
 * an operation after the confirmation, operations paying nothing, late operations to a payment
 * still open past its deadline, and a memo reused after a cancel. Returns each merchant's payments
 * and its records in ledger order, none applied.
 */
async function story(ms: ChainMerchant[]) {
  const each = <T>(f: (m: ChainMerchant) => Promise<T>) => Promise.all(ms.map(f));
  const split = await each((m) => createPayment(m, { amount: "5" }));
  const short = await each((m) => createPayment(m, { amount: "1", expires_in: 60 }));
  const canceled = await each(async (m) => {
    const p = await createPayment(m, { amount: "2", memo_type: "text", memo: "order-7" });
    await chain.t.app.inject({ method: "POST", url: `/v1/payments/${p.id}/cancel`, headers: m.auth });
    return p;
  });
  clock.advance(10_000);
  const records: HorizonPaymentRecord[][] = ms.map(() => []);
  const pay = async (amount: string, memo: (i: number) => Memo | undefined) => {
    for (const [i, m] of ms.entries()) records[i]!.push(await chain.pay(m, amount, memo(i)));
  };
  await pay("2", (i) => Memo.id(split[i].memo));
  await pay("3", (i) => Memo.id(split[i].memo));
  await pay("1", (i) => Memo.id(split[i].memo));
  await pay("1", () => undefined);
  await pay("1", () => Memo.text("nobody's"));
  // For the canceled "order-7": late. Then the memo is reused, and paid in time.
  await pay("2", () => Memo.text("order-7"));
  clock.advance(1_000);
  const reused = await each((m) => createPayment(m, { amount: "2", memo_type: "text", memo: "order-7" }));
  clock.advance(1_000);
  await pay("2", () => Memo.text("order-7"));
  clock.advance(60_000);
  await pay("1", (i) => Memo.id(short[i].memo));
  await pay("1", (i) => Memo.id(short[i].memo));
  return { payments: ms.map((_, i) => [split[i], short[i], canceled[i], reused[i]]), records };
}

/** What must not depend on how the records were grouped: no ids, hashes or accounts. */
function comparable(object: Record<string, unknown>) {
  const { id, memo, payment_url, sep7_uri, destination, destination_account, settlements, ...rest } = object;
  void [id, memo, payment_url, sep7_uri, destination, destination_account];
  return { ...rest, settlements: (settlements as Array<Record<string, unknown>>).map((s) => ({ amount: s.amount, closed_at: s.closed_at, late: s.late })) };
}

const comparableOutcome = (o: SettlementOutcome) => {
  if (o.kind === "applied") return { ...o, paymentId: undefined, merchantId: undefined };
  return o.kind === "unmatched" ? { ...o, merchantId: undefined } : o;
};

async function effects(m: ChainMerchant, payments: Array<{ id: string }>) {
  const unmatched = await chain.t.db.pool.query<{ reason: string; amount: string }>(
    "select reason, amount_stroops::text as amount from unmatched_payments where merchant_id = $1 order by operation_id",
    [m.merchant.id],
  );
  return {
    payments: await Promise.all(payments.map(async (p) => comparable(await getPayment(m, p.id)))),
    events: await Promise.all(
      payments.map(async (p) => (await eventsOf(p.id)).map((e) => [e.type, e.sequence, comparable(JSON.parse(e.body).data.object)])),
    ),
    unmatched: unmatched.rows,
  };
}

describe("a page of records", () => {
  it("has exactly the effects of its records applied one by one", async () => {
    const [one, page] = [await merchant(), await merchant()];
    const { payments, records } = await story([one, page]);
    const oneByOne: SettlementOutcome[] = [];
    for (const record of records[0]!) oneByOne.push(await apply(record));
    const paged = await applyPage(page, records[1]!);

    expect(paged.map(comparableOutcome)).toEqual(oneByOne.map(comparableOutcome));
    expect(await effects(page, payments[1]!)).toEqual(await effects(one, payments[0]!));
  });

  it("lets each record see the earlier ones: amounts add up, a confirmed payment takes late payments, an expiry happens once", async () => {
    const m = await merchant();
    const { payments, records } = await story([m]);
    const [split, short, canceled, reused] = payments[0]!;
    const outcomes = await applyPage(m, records[0]!);

    expect(outcomes.map((o) => (o.kind === "applied" ? [o.status, o.eventType] : o.kind === "unmatched" ? o.reason : o.kind))).toEqual([
      ["partially_paid", "payment.partially_paid"],
      ["confirmed", "payment.confirmed"],
      ["confirmed", "payment.late_payment_received"],
      "no_memo",
      "unknown_memo",
      ["canceled", "payment.late_payment_received"],
      ["confirmed", "payment.confirmed"],
      ["expired", "payment.late_payment_received"],
      ["expired", "payment.late_payment_received"],
    ]);
    const paid = await getPayment(m, split.id);
    expect(paid).toMatchObject({ status: "confirmed", amount_received: "5", overpaid: false });
    expect(paid.settlements.map((s: { amount: string; late: boolean }) => [s.amount, s.late])).toEqual([["2", false], ["3", false], ["1", true]]);
    // Each event shows the payment as that record left it, with the settlements so far.
    const events = (await eventsOf(split.id)).map((e) => ({ ...e, object: JSON.parse(e.body).data.object }));
    expect(events.map((e) => [e.type, e.sequence, e.object.amount_received, e.object.settlements.length])).toEqual([
      ["payment.created", 1, "0", 0],
      ["payment.partially_paid", 2, "2", 1],
      ["payment.confirmed", 3, "5", 2],
      ["payment.late_payment_received", 4, "5", 3],
    ]);
    expect(events.at(-1)!.object).toEqual(paid);

    expect((await eventsOf(short.id)).map((e) => e.type)).toEqual(["payment.created", "payment.expired", "payment.late_payment_received", "payment.late_payment_received"]);
    expect(await getPayment(m, canceled.id)).toMatchObject({ status: "canceled", settlements: [expect.objectContaining({ late: true })] });
    expect(await getPayment(m, reused.id)).toMatchObject({ status: "confirmed", amount_received: "2" });
  });

  it("changes nothing when applied again, as after a crash before its cursor committed", async () => {
    const m = await merchant();
    const { payments, records } = await story([m]);
    await applyPage(m, records[0]!);
    const before = await effects(m, payments[0]!);
    expect(new Set((await applyPage(m, records[0]!)).map((o) => o.kind))).toEqual(new Set(["duplicate"]));
    expect(await effects(m, payments[0]!)).toEqual(before);
  });

  it("applies records already applied one by one as duplicates, and the rest of the page as new", async () => {
    const m = await merchant();
    const { payments, records } = await story([m]);
    for (const record of records[0]!.slice(0, 4)) await apply(record);
    const outcomes = await applyPage(m, records[0]!);
    expect(outcomes.slice(0, 4).map((o) => o.kind)).toEqual(["duplicate", "duplicate", "duplicate", "duplicate"]);
    expect(outcomes.slice(4).map((o) => o.kind)).toEqual(["unmatched", "applied", "applied", "applied", "applied"]);
    expect(await getPayment(m, payments[0]![0]!.id)).toMatchObject({ status: "confirmed", amount_received: "5" });
  });
});
