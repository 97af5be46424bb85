import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpError } from "../src/http/errors.js";
import { canonicalJson, idempotently, purgeExpiredIdempotencyKeys, requestHash, type IdempotencyScope } from "../src/http/idempotency.js";
import type { Db } from "../src/db/pool.js";
import { buildTestApp, randomAccount, seedMerchant, TestClock, type TestApp } from "./support/app.js";

let t: TestApp;
const clock = new TestClock();
beforeAll(async () => {
  t = await buildTestApp({ clock });
  // A table of the test's own, to observe whether a handler's writes committed.
  await t.db.pool.query("create table scratch (note text not null)");
});
afterAll(() => t.close());

type Auth = { authorization: string };
const DAY_MS = 24 * 60 * 60 * 1000;

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await t.db.pool.query<{ n: number }>(`select count(*)::int as n from ${sql}`, params);
  return rows[0]!.n;
}

async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function rejection(promise: Promise<unknown>): Promise<HttpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("requestHash", () => {
  it("ignores key order and separates paths and bodies", () => {
    expect(canonicalJson({ b: [1, { y: 2, x: 1 }], a: "é" })).toBe('{"a":"é","b":[1,{"x":1,"y":2}]}');
    const a = requestHash("POST", "/v1/payments", { amount: "1", asset: "XLM" });
    expect(requestHash("POST", "/v1/payments", { asset: "XLM", amount: "1" }).equals(a)).toBe(true);
    expect(requestHash("POST", "/v1/payments", { asset: "XLM", amount: "2" }).equals(a)).toBe(false);
    expect(requestHash("POST", "/v1/other", { asset: "XLM", amount: "1" }).equals(a)).toBe(false);
    expect(requestHash("POST", "/v1/x", undefined).equals(requestHash("POST", "/v1/x", {}))).toBe(true);
  });
});

describe("idempotently", () => {
  const scope = (merchantId: string, key: string, body: unknown = {}, now = new Date("2026-06-01T00:00:00Z")): IdempotencyScope => ({
    merchantId,
    key,
    requestHash: requestHash("POST", "/v1/things", body),
    now,
  });

  it("stores the response in the handler's transaction and replays it without running the handler", async () => {
    const { merchant } = await seedMerchant(t);
    let runs = 0;
    const run = async (tx: Db) => {
      runs += 1;
      await tx.query("insert into scratch (note) values ($1)", [`${merchant.id} stored`]);
      return { status: 201, body: { n: runs } };
    };
    const first = await idempotently(t.db.pool, scope(merchant.id, "k1"), run);
    expect(first).toMatchObject({ status: 201, body: { n: 1 }, replayed: false });
    const again = await idempotently(t.db.pool, scope(merchant.id, "k1"), run);
    expect(again).toEqual({ status: 201, body: { n: 1 }, replayed: true });
    expect(runs).toBe(1);
    expect(await count("scratch where note = $1", [`${merchant.id} stored`])).toBe(1);

    const reused = await rejection(idempotently(t.db.pool, scope(merchant.id, "k1", { other: true }), run));
    expect(reused).toMatchObject({ status: 422, code: "idempotency_key_reused" });
    expect(runs).toBe(1);

    // Keys belong to one merchant.
    const other = await seedMerchant(t);
    expect(await idempotently(t.db.pool, scope(other.merchant.id, "k1", { other: true }), run)).toMatchObject({ replayed: false });
  });

  it("stores nothing, neither the handler's writes nor the key, when the handler throws", async () => {
    const { merchant } = await seedMerchant(t);
    const note = `${merchant.id} half-written`;
    const failing = idempotently(t.db.pool, scope(merchant.id, "k2"), async (tx) => {
      await tx.query("insert into scratch (note) values ($1)", [note]);
      throw new HttpError(400, "invalid_request", "rejected after a write");
    });
    expect(await rejection(failing)).toMatchObject({ status: 400 });
    expect(await count("scratch where note = $1", [note])).toBe(0);
    expect(await count("idempotency_keys where merchant_id = $1", [merchant.id])).toBe(0);

    // The key is still free: a retry, even with another body, runs.
    const retried = await idempotently(t.db.pool, scope(merchant.id, "k2", { fixed: true }), async () => ({ status: 200, body: "ok" }));
    expect(retried).toMatchObject({ status: 200, body: "ok", replayed: false });
  });

  it("answers 409 to a duplicate while the first is still executing", async () => {
    const { merchant } = await seedMerchant(t);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const first = idempotently(t.db.pool, scope(merchant.id, "k3"), async () => {
      started();
      await gate;
      return { status: 201, body: { first: true } };
    });
    await running;
    const duplicate = await rejection(idempotently(t.db.pool, scope(merchant.id, "k3"), async () => ({ status: 201, body: { first: false } })));
    expect(duplicate).toMatchObject({ status: 409, code: "idempotency_key_in_use" });
    release();
    expect(await first).toMatchObject({ body: { first: true }, replayed: false });
    expect(await idempotently(t.db.pool, scope(merchant.id, "k3"), async () => ({ status: 201, body: { first: false } }))).toEqual({
      status: 201,
      body: { first: true },
      replayed: true,
    });
  });

  it("answers 409 and stores nothing when a handler without the lock (one statement) recorded the key meanwhile", async () => {
    const { merchant } = await seedMerchant(t);
    const note = `${merchant.id} raced`;
    const k = scope(merchant.id, "k4");
    const raced = idempotently(t.db.pool, k, async (tx) => {
      await tx.query("insert into scratch (note) values ($1)", [note]);
      // As a payment created with the same key would: its record committed after this request's read.
      await t.db.pool.query(
        "insert into idempotency_keys (merchant_id, key, request_hash, response_status, response_body, created_at) values ($1, $2, $3, 201, '{\"first\": true}', $4)",
        [merchant.id, "k4", k.requestHash, k.now],
      );
      return { status: 201, body: { first: false } };
    });
    expect(await rejection(raced)).toMatchObject({ status: 409, code: "idempotency_key_in_use" });
    expect(await count("scratch where note = $1", [note])).toBe(0);
    expect(await idempotently(t.db.pool, k, async () => ({ status: 201, body: { first: false } }))).toEqual({ status: 201, body: { first: true }, replayed: true });
  });

  it("treats records older than 24 h as absent, and purges them", async () => {
    const { merchant } = await seedMerchant(t);
    const start = new Date("2026-06-01T00:00:00Z");
    const at = (ms: number) => new Date(start.getTime() + ms);
    await idempotently(t.db.pool, scope(merchant.id, "old", {}, start), async () => ({ status: 201, body: 1 }));
    await idempotently(t.db.pool, scope(merchant.id, "young", {}, at(DAY_MS / 2)), async () => ({ status: 201, body: 2 }));

    // Still within 24 h: a different body is a reuse.
    const reused = await rejection(idempotently(t.db.pool, scope(merchant.id, "old", { x: 1 }, at(DAY_MS - 1)), async () => ({ status: 201, body: 3 })));
    expect(reused.code).toBe("idempotency_key_reused");
    // After 24 h the record is overwritten.
    const reborn = await idempotently(t.db.pool, scope(merchant.id, "old", { x: 1 }, at(DAY_MS)), async () => ({ status: 201, body: 3 }));
    expect(reborn).toMatchObject({ body: 3, replayed: false });
    expect(await count("idempotency_keys where merchant_id = $1", [merchant.id])).toBe(2);

    expect(await purgeExpiredIdempotencyKeys(t.db.pool, at(DAY_MS + DAY_MS / 2))).toBeGreaterThanOrEqual(1);
    const { rows } = await t.db.pool.query("select key from idempotency_keys where merchant_id = $1 order by key", [merchant.id]);
    expect(rows).toEqual([{ key: "old" }]);
  });
});

describe("Idempotency-Key on POST /v1/payments", () => {
  const post = (auth: Auth, key: string | undefined, payload: object, url = "/v1/payments") =>
    t.app.inject({ method: "POST", url, headers: { ...auth, ...(key === undefined ? {} : { "idempotency-key": key }) }, payload });
  const payments = (merchantId: string) => count("payments where merchant_id = $1", [merchantId]);

  async function metric(asset: string): Promise<number> {
    const text = (await t.app.inject({ method: "GET", url: "/metrics" })).body;
    const line = text.split("\n").find((l) => l.startsWith(`payments_created_total{asset="${asset}"}`));
    return line ? Number(line.split(" ").pop()) : 0;
  }

  it("replays the first response for the same key and body, and refuses another body or path", async () => {
    clock.set(new Date("2026-07-01T00:00:00Z"));
    const issuer = randomAccount();
    const m = await seedMerchant(t, { accepted_assets: [{ code: "EURC", issuer }] });
    const body = { amount: "5", asset: { code: "EURC", issuer }, metadata: { a: "1", b: "2" } };
    const first = await post(m.auth, "order-1", body);
    expect(first.statusCode).toBe(201);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();

    clock.advance(60_000);
    const replay = await post(m.auth, "order-1", { metadata: { b: "2", a: "1" }, asset: { issuer, code: "EURC" }, amount: "5" });
    expect(replay.statusCode).toBe(201);
    expect(replay.headers["idempotent-replayed"]).toBe("true");
    expect(replay.json()).toEqual(first.json());
    expect(await payments(m.merchant.id)).toBe(1);
    expect(await metric(`EURC:${issuer}`)).toBe(1);

    const changed = await post(m.auth, "order-1", { ...body, amount: "6" });
    expect(changed.statusCode).toBe(422);
    expect(changed.json().error.code).toBe("idempotency_key_reused");
    const otherPath = await post(m.auth, "order-1", {}, `/v1/payments/${first.json().id}/cancel`);
    expect(otherPath.statusCode).toBe(422);
    expect((await t.app.inject({ method: "GET", url: `/v1/payments/${first.json().id}`, headers: m.auth })).json().status).toBe("pending");
    expect(await payments(m.merchant.id)).toBe(1);

    // A day later the key is free again.
    clock.advance(DAY_MS);
    const later = await post(m.auth, "order-1", { ...body, amount: "6" });
    expect(later.statusCode).toBe(201);
    expect(later.json().id).not.toBe(first.json().id);
    expect(await payments(m.merchant.id)).toBe(2);
    expect(await metric(`EURC:${issuer}`)).toBe(2);
  });

  it("stores nothing for a rejected request, so the key can be used again", async () => {
    const m = await seedMerchant(t);
    const bad = await post(m.auth, "k-400", { amount: "0", asset: "XLM" });
    expect(bad.statusCode).toBe(400);
    const taken = await post(m.auth, "k-409a", { amount: "1", asset: "XLM", memo_type: "id", memo: "7" });
    expect(taken.statusCode).toBe(201);
    const clash = await post(m.auth, "k-409b", { amount: "1", asset: "XLM", memo_type: "id", memo: "7" });
    expect(clash.statusCode).toBe(409);
    expect(await count("idempotency_keys where merchant_id = $1 and key <> 'k-409a'", [m.merchant.id])).toBe(0);
    expect(await payments(m.merchant.id)).toBe(1);

    expect((await post(m.auth, "k-400", { amount: "1", asset: "XLM" })).statusCode).toBe(201);
    expect((await post(m.auth, "k-409a", {}, `/v1/payments/${taken.json().id}/cancel`)).statusCode).toBe(422);
    expect((await post(m.auth, "k-cancel", {}, `/v1/payments/${taken.json().id}/cancel`)).statusCode).toBe(200);
    expect((await post(m.auth, "k-409b", { amount: "1", asset: "XLM", memo_type: "id", memo: "7" })).statusCode).toBe(201);
  });

  it("replays a cancel instead of answering 409 the second time", async () => {
    const m = await seedMerchant(t);
    const p = (await post(m.auth, undefined, { amount: "1", asset: "XLM" })).json();
    const url = `/v1/payments/${p.id}/cancel`;
    const first = await t.app.inject({ method: "POST", url, headers: { ...m.auth, "idempotency-key": "cancel-1" } });
    expect(first.statusCode).toBe(200);
    const again = await t.app.inject({ method: "POST", url, headers: { ...m.auth, "idempotency-key": "cancel-1" } });
    expect(again.statusCode).toBe(200);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.json()).toEqual(first.json());
    const fresh = await t.app.inject({ method: "POST", url, headers: { ...m.auth, "idempotency-key": "cancel-2" } });
    expect(fresh.statusCode).toBe(409);
  });

  it.each([["x".repeat(256)], ["tab\there"], ["ключ"]])("rejects the key %j with 400", async (key) => {
    const m = await seedMerchant(t);
    const res = await post(m.auth, key, { amount: "1", asset: "XLM" });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe("invalid_idempotency_key");
    expect(await payments(m.merchant.id)).toBe(0);
  });

  it("accepts a 255-character key of printable ASCII", async () => {
    const m = await seedMerchant(t);
    const key = " !~".repeat(85);
    expect((await post(m.auth, key, { amount: "1", asset: "XLM" })).statusCode).toBe(201);
    expect((await post(m.auth, key, { amount: "1", asset: "XLM" })).headers["idempotent-replayed"]).toBe("true");
  });

  it("waits for a request still recording the same key, then replays its response, or creates if it rolled back", async () => {
    const [m, probe] = [await seedMerchant(t), await seedMerchant(t)];
    const body = { amount: "4", asset: "XLM" };
    // The request's hash as the route computes it (from the body as validated), and a payment to
    // stand for the other request's response, from another merchant's record.
    const probed = await post(probe.auth, "probe", body);
    expect(probed.statusCode).toBe(201);
    const { rows } = await t.db.pool.query<{ request_hash: Buffer }>("select request_hash from idempotency_keys where merchant_id = $1", [probe.merchant.id]);
    const hash = rows[0]!.request_hash;
    const lockWaiters = () => count("pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
    // Another request's record, written and not yet committed: the create's statement must wait for it.
    const holdRecord = async (key: string) => {
      const other = await t.db.pool.connect();
      await other.query("begin");
      await other.query(
        "insert into idempotency_keys (merchant_id, key, request_hash, response_status, response_body, created_at) values ($1, $2, $3, 201, $4, now())",
        [m.merchant.id, key, hash, probed.body],
      );
      return other;
    };

    const committing = await holdRecord("held-1");
    const waiting = post(m.auth, "held-1", body);
    await until(async () => (await lockWaiters()) === 1);
    await committing.query("commit");
    committing.release();
    const replayed = await waiting;
    expect(replayed.statusCode).toBe(201);
    expect(replayed.headers["idempotent-replayed"]).toBe("true");
    expect(replayed.json()).toEqual(probed.json());
    expect(await payments(m.merchant.id)).toBe(0);

    const rollingBack = await holdRecord("held-2");
    const proceeding = post(m.auth, "held-2", body);
    await until(async () => (await lockWaiters()) === 1);
    await rollingBack.query("rollback");
    rollingBack.release();
    const created = await proceeding;
    expect(created.statusCode).toBe(201);
    expect(created.headers["idempotent-replayed"]).toBeUndefined();
    expect(await payments(m.merchant.id)).toBe(1);
    const again = await post(m.auth, "held-2", body);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.json()).toEqual(created.json());
  });

  it("creates exactly one payment when ten identical requests arrive at once", async () => {
    const m = await seedMerchant(t);
    const body = { amount: "9.99", asset: "XLM", description: "burst" };
    const responses = await Promise.all(Array.from({ length: 10 }, () => post(m.auth, "burst-1", body)));
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    const created = responses.filter((r) => r.statusCode === 201).map((r) => r.json());
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const c of created) expect(c).toEqual(created[0]);
    for (const r of responses.filter((r) => r.statusCode === 409)) expect(r.json().error.code).toBe("idempotency_key_in_use");

    expect(await payments(m.merchant.id)).toBe(1);
    const after = await post(m.auth, "burst-1", body);
    expect(after.statusCode).toBe(201);
    expect(after.json()).toEqual(created[0]);
  });
});
