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

describe("concurrent creations, written together", () => {
  const createPayment = (auth: { authorization: string }, payload: object) =>
    t.app.inject({ method: "POST", url: "/v1/payments", headers: auth, payload });
  const batchSizeMetric = async (suffix: "sum" | "count") => {
    const text = (await t.app.inject({ method: "GET", url: "/metrics" })).body;
    return Number(text.split("\n").find((l) => l.startsWith(`payment_create_batch_size_${suffix} `))?.split(" ")[1]);
  };

  it("answers each request with its own payment and event; of those asking for one memo, exactly one gets it", async () => {
    const m = await seedMerchant(t);
    const [sumBefore, countBefore] = [await batchSizeMetric("sum"), await batchSizeMetric("count")];
    const generated = Array.from({ length: 30 }, (_, i) => ({ amount: String(i + 1), asset: "XLM", metadata: { n: String(i) } }));
    const sameMemo = Array.from({ length: 6 }, () => ({ amount: "3", asset: "XLM", memo_type: "text", memo: "order-7" }));
    const answers = await Promise.all([...generated, ...sameMemo].map((payload) => createPayment(m.auth, payload)));

    const own = answers.slice(0, 30);
    expect(own.map((a) => a.statusCode)).toEqual(generated.map(() => 201));
    expect(own.map((a) => [a.json().amount, a.json().metadata.n])).toEqual(generated.map((g) => [g.amount, g.metadata.n]));
    const memoAnswers = answers.slice(30);
    expect(memoAnswers.filter((a) => a.statusCode === 201)).toHaveLength(1);
    for (const refused of memoAnswers.filter((a) => a.statusCode !== 201)) {
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.code).toBe("memo_in_use");
    }

    const created = answers.filter((a) => a.statusCode === 201).map((a) => a.json());
    const { rows } = await t.db.pool.query<{ payment_id: string; body: string }>(
      "select payment_id, body from events where merchant_id = $1 and type = 'payment.created'",
      [m.merchant.id],
    );
    expect(rows).toHaveLength(31);
    const bodies = new Map(rows.map((r) => [r.payment_id, JSON.parse(r.body)]));
    for (const payment of created) expect(bodies.get(payment.id)?.data.object).toEqual(payment);
    // Every request went through the batch once, and at least one statement carried several.
    expect((await batchSizeMetric("sum")) - sumBefore).toBe(36);
    expect((await batchSizeMetric("count")) - countBefore).toBeLessThan(36);
  });

  it("names the create statement on a direct connection, batched or with an Idempotency-Key, and never behind a transaction pooler", async () => {
    const preparedOn = async (app: TestApp, { keyed }: { keyed: boolean }) => {
      const m = await seedMerchant(app);
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          app.app.inject({
            method: "POST",
            url: "/v1/payments",
            headers: keyed ? { ...m.auth, "idempotency-key": `named-${i}` } : m.auth,
            payload: { amount: "1", asset: "XLM" },
          }),
        ),
      );
      expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 201));
      // Prepared statements belong to a session: ask every connection the pool holds.
      const clients = await Promise.all(Array.from({ length: app.db.pool.totalCount }, () => app.db.pool.connect()));
      try {
        const names = await Promise.all(clients.map(async (c) => (await c.query<{ name: string }>("select name from pg_prepared_statements")).rows.map((r) => r.name)));
        return names.flat();
      } finally {
        for (const c of clients) c.release();
      }
    };
    expect(await preparedOn(t, { keyed: false })).toContain("lumenpay_insert_payments_with_events");
    const [keyedOnly, pooled] = await Promise.all([buildTestApp(), buildTestApp({ env: { DATABASE_POOLER: "transaction" } })]);
    try {
      expect(await preparedOn(keyedOnly, { keyed: true })).toEqual(expect.arrayContaining(["lumenpay_idempotency_record", "lumenpay_insert_payments_with_events"]));
      const namedBehindPooler = [...(await preparedOn(pooled, { keyed: false })), ...(await preparedOn(pooled, { keyed: true }))];
      expect(namedBehindPooler.filter((name) => name.startsWith("lumenpay_"))).toEqual([]);
    } finally {
      await Promise.all([keyedOnly.close(), pooled.close()]);
    }
  });

  it("queues a delivery for each payment of a merchant with an endpoint, and none for another merchant's written alongside", async () => {
    const [hooked, plain] = [await seedMerchant(t), await seedMerchant(t)];
    const endpoint = await t.app.inject({
      method: "POST",
      url: "/v1/webhook_endpoints",
      headers: hooked.auth,
      payload: { url: "https://hooks.example.test/lumenpay", enabled_events: ["payment.created"] },
    });
    expect(endpoint.statusCode).toBe(201);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => createPayment(i % 2 === 0 ? hooked.auth : plain.auth, { amount: "1", asset: "XLM" })),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 201));
    const { rows } = await t.db.pool.query<{ merchant_id: string; n: number }>(
      `select e.merchant_id, count(d.id)::int as n from events e left join webhook_deliveries d on d.event_id = e.id
       where e.merchant_id = any ($1) group by e.merchant_id`,
      [[hooked.merchant.id, plain.merchant.id]],
    );
    expect(Object.fromEntries(rows.map((r) => [r.merchant_id, r.n]))).toEqual({ [hooked.merchant.id]: 10, [plain.merchant.id]: 0 });
  });
});
