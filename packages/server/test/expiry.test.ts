import { Horizon, type Keypair, Memo } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transaction } from "../src/db/pool.js";
import { expireDuePayments } from "../src/payments/expiry.js";
import { applyPaymentRecord, type HorizonPaymentRecord } from "../src/payments/settlement.js";
import { startLocalHorizon, type LocalHorizon } from "../src/stellar/local-horizon/index.js";
import { buildTestApp, seedMerchant, TestClock, type TestApp } from "./support/app.js";

let t: TestApp;
let horizon: LocalHorizon;
let server: Horizon.Server;
let payer: Keypair;
const clock = new TestClock(new Date("2026-06-01T08:00:00.000Z"));

beforeAll(async () => {
  horizon = await startLocalHorizon();
  server = new Horizon.Server(horizon.url, { allowHttp: true });
  t = await buildTestApp({
    clock,
    env: { STELLAR_NETWORK: "custom", STELLAR_NETWORK_PASSPHRASE: horizon.networkPassphrase, HORIZON_URL: horizon.url },
  });
  payer = await horizon.newAccount("100000");
});
afterAll(async () => {
  await t?.close();
  await horizon?.close();
});

const links = () => ({ publicBaseUrl: t.config.publicBaseUrl, networkPassphrase: horizon.networkPassphrase });
const ctx = () => ({ now: clock.now(), networkPassphrase: horizon.networkPassphrase, links: links() });
const apply = (record: HorizonPaymentRecord) => transaction(t.db.pool, (tx) => applyPaymentRecord(tx, record, ctx()));
const expire = (limit?: number) => expireDuePayments(t.db.pool, clock.now(), links(), limit);

/** Moves the clock to `iso` and expires what earlier tests left due, so counts below are this test's own. */
async function startAt(iso: string) {
  clock.set(new Date(iso));
  await expire();
}

async function merchant() {
  const account = (await horizon.newAccount("1")).publicKey();
  return { ...(await seedMerchant(t, { accounts: [account] })), account };
}
type Merchant = Awaited<ReturnType<typeof merchant>>;

async function createPayment(m: Merchant, body: Record<string, unknown>) {
  const res = await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { asset: "XLM", expires_in: 60, ...body } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}
const getPayment = async (m: Merchant, id: string) => (await t.app.inject({ method: "GET", url: `/v1/payments/${id}`, headers: m.auth })).json();
const eventsOf = async (paymentId: string) =>
  (await t.db.pool.query<{ type: string; body: string }>("select type, body from events where payment_id = $1 order by sequence", [paymentId])).rows;

async function pay(m: Merchant, memo: Memo, amount: string): Promise<HorizonPaymentRecord> {
  const { hash } = await horizon.pay({ from: payer, to: m.account, amount, memo });
  const page = await server.payments().forAccount(m.account).join("transactions").order("desc").limit(200).call();
  return page.records.find((r) => r.transaction_hash === hash)!;
}

describe("expireDuePayments", () => {
  it("expires pending and partially paid payments once expires_at is reached, in batches, each with payment.expired", async () => {
    await startAt("2026-06-01T08:00:00.000Z");
    const m = await merchant();
    const [a, b, partial] = [await createPayment(m, { amount: "5" }), await createPayment(m, { amount: "5" }), await createPayment(m, { amount: "5" })];
    const later = await createPayment(m, { amount: "5", expires_in: 120 });
    const confirmed = await createPayment(m, { amount: "5" });
    const canceled = await createPayment(m, { amount: "5" });
    await apply(await pay(m, Memo.id(partial.memo), "2"));
    await apply(await pay(m, Memo.id(confirmed.memo), "5"));
    await t.app.inject({ method: "POST", url: `/v1/payments/${canceled.id}/cancel`, headers: m.auth });

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
    const record = await pay(m, Memo.id(p.memo), "1");
    clock.advance(120_000);
    const client = await t.db.pool.connect();
    try {
      await client.query("begin");
      // Ingestion took the row lock just before expiry was due to run.
      expect(await applyPaymentRecord(client, record, ctx())).toMatchObject({ kind: "applied", status: "confirmed" });
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
    const record = await pay(m, Memo.id(p.memo), "3");
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
    await t.app.inject({ method: "POST", url: `/v1/payments/${canceled.id}/cancel`, headers: m.auth });
    expect(await apply(await pay(m, Memo.id(canceled.memo), "1"))).toMatchObject({ status: "canceled", late: true, eventType: "payment.late_payment_received" });

    const paid = await createPayment(m, { amount: "1" });
    expect(await apply(await pay(m, Memo.id(paid.memo), "1"))).toMatchObject({ status: "confirmed", late: false });
    // The customer paid twice: the second payment is for the merchant to refund, not an overpayment.
    expect(await apply(await pay(m, Memo.id(paid.memo), "1"))).toMatchObject({ status: "confirmed", late: true, eventType: "payment.late_payment_received" });
    const got = await getPayment(m, paid.id);
    expect(got).toMatchObject({ amount_received: "1", overpaid: false });
    expect(got.settlements.map((s: { late: boolean }) => s.late)).toEqual([false, true]);
  });

  it("keeps what a partially paid payment received when it expires; a later top-up is late", async () => {
    await startAt("2026-06-04T08:00:00.000Z");
    const m = await merchant();
    const p = await createPayment(m, { amount: "5" });
    await apply(await pay(m, Memo.id(p.memo), "2"));
    clock.advance(60_000);
    expect(await expire()).toBe(1);
    expect(await apply(await pay(m, Memo.id(p.memo), "3"))).toMatchObject({ status: "expired", late: true });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "expired", amount_received: "2" });
  });

  it("sends a payment to the open payment that reuses an expired payment's memo", async () => {
    await startAt("2026-06-05T08:00:00.000Z");
    const m = await merchant();
    const old = await createPayment(m, { amount: "1", memo_type: "text", memo: "invoice-7" });
    clock.advance(60_000);
    expect(await expire()).toBe(1);
    const fresh = await createPayment(m, { amount: "1", memo_type: "text", memo: "invoice-7" });
    expect(await apply(await pay(m, Memo.text("invoice-7"), "1"))).toMatchObject({ paymentId: fresh.id, status: "confirmed", late: false });
    expect((await getPayment(m, old.id)).settlements).toEqual([]);
  });
});
