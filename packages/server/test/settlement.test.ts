import { Horizon, type Keypair, Memo } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transaction } from "../src/db/pool.js";
import { createMetrics } from "../src/metrics/registry.js";
import { applyPaymentRecord, chainEventId, observeSettlement, type HorizonPaymentRecord } from "../src/payments/settlement.js";
import { startLocalHorizon, type LocalHorizon } from "../src/stellar/local-horizon/index.js";
import { buildTestApp, seedMerchant, TestClock, type TestApp } from "./support/app.js";

let t: TestApp;
let horizon: LocalHorizon;
let server: Horizon.Server;
let payer: Keypair;
const clock = new TestClock(new Date("2026-05-01T10:00:00.000Z"));

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

const ctx = () => ({
  now: clock.now(),
  networkPassphrase: horizon.networkPassphrase,
  links: { publicBaseUrl: t.config.publicBaseUrl, networkPassphrase: horizon.networkPassphrase },
});
const apply = (record: HorizonPaymentRecord) => transaction(t.db.pool, (tx) => applyPaymentRecord(tx, record, ctx()));

async function recordOf(account: string, hash: string): Promise<HorizonPaymentRecord> {
  const page = await server.payments().forAccount(account).join("transactions").order("desc").limit(200).call();
  const record = page.records.find((r) => r.transaction_hash === hash);
  if (!record) throw new Error(`Horizon lists no payment of ${hash} for ${account}`);
  return record;
}

async function merchant() {
  const account = (await horizon.newAccount("1")).publicKey();
  return { ...(await seedMerchant(t, { accounts: [account] })), account };
}
type Merchant = Awaited<ReturnType<typeof merchant>>;

async function createPayment(m: Merchant, amount: string) {
  const res = await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount, asset: "XLM" } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}
const getPayment = async (m: Merchant, id: string) => (await t.app.inject({ method: "GET", url: `/v1/payments/${id}`, headers: m.auth })).json();
const eventsOf = async (paymentId: string) =>
  (await t.db.pool.query<{ id: string; type: string; sequence: number; body: string }>(
    "select id, type, sequence, body from events where payment_id = $1 order by sequence",
    [paymentId],
  )).rows;

/** Pays the payment's memo on-chain and returns the Horizon record (not yet applied). */
async function pay(m: Merchant, p: { memo: string }, amount: string): Promise<HorizonPaymentRecord> {
  const { hash } = await horizon.pay({ from: payer, to: m.account, amount, memo: Memo.id(p.memo) });
  return recordOf(m.account, hash);
}

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
    const { rows } = await t.db.pool.query("select amount_received_stroops::text as r from payments where id = $1", [p.id]);
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
        from: payer.publicKey(),
        late: false,
      })),
    );
    const transactions = await Promise.all([first, second].map((r) => server.transactions().transaction(r.transaction_hash).call()));
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
    const expected = chainEventId(horizon.networkPassphrase, record.id, "payment.confirmed");
    expect(confirmed.id).toBe(expected);
    expect(expected).toMatch(/^evt_[0-9a-f]{22}$/);
    expect(JSON.parse(confirmed.body).id).toBe(expected);
    // Another network, operation or type gives another id.
    expect(chainEventId("Test SDF Network ; September 2015", record.id, "payment.confirmed")).not.toBe(expected);
    expect(chainEventId(horizon.networkPassphrase, (BigInt(record.id) + 1n).toString(), "payment.confirmed")).not.toBe(expected);
    expect(chainEventId(horizon.networkPassphrase, record.id, "payment.partially_paid")).not.toBe(expected);
  });
});

describe("observeSettlement", () => {
  it("counts confirmations by asset and their latency from creation, and nothing else", async () => {
    const metrics = createMetrics(t.db.pool);
    const m = await merchant();
    const p = await createPayment(m, "3");
    clock.advance(42_000);
    const partial = await apply(await pay(m, p, "1"));
    observeSettlement(metrics, partial);
    observeSettlement(metrics, { kind: "duplicate" });
    observeSettlement(metrics, { kind: "ignored", reason: "no_matching_payment" });
    expect((await metrics.paymentsConfirmed.get()).values).toEqual([]);

    const confirmed = await apply(await pay(m, p, "2"));
    expect(confirmed).toMatchObject({ kind: "applied", eventType: "payment.confirmed", asset: "XLM", confirmationLatencySeconds: 42 });
    observeSettlement(metrics, confirmed);
    expect((await metrics.paymentsConfirmed.get()).values).toEqual([expect.objectContaining({ labels: { asset: "XLM" }, value: 1 })]);
    const latency = (await metrics.paymentConfirmationLatency.get()).values;
    expect(latency.find((v) => v.metricName === "payment_confirmation_latency_seconds_sum")?.value).toBe(42);
    expect(latency.find((v) => v.metricName === "payment_confirmation_latency_seconds_count")?.value).toBe(1);
  });
});
