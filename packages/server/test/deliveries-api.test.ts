import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { DELIVERIES_CHANNEL } from "../src/webhooks/wakeup.js";
import type { EventType } from "../src/events/types.js";
import { processRecoveries } from "../src/webhooks/maintenance.js";
import { failDelivery } from "../src/webhooks/queue.js";
import { buildTestApp, seedMerchant, TestClock, type TestApp } from "./support/app.js";

let t: TestApp;
const clock = new TestClock();
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

type Auth = { authorization: string };
type Method = "GET" | "POST" | "PATCH" | "DELETE";

const call = (auth: Auth, method: Method, url: string, payload?: object) =>
  t.app.inject({ method, url, headers: auth, ...(payload === undefined ? {} : { payload }) });

async function setup(enabledEvents = ["*"]) {
  const m = await seedMerchant(t);
  const res = await call(m.auth, "POST", "/v1/webhook_endpoints", { url: "https://example.com/hooks", enabled_events: enabledEvents });
  expect(res.statusCode).toBe(201);
  return { ...m, endpointId: res.json().id as string };
}

/** Records an event at `at` (through the outbox) and returns the id of its delivery to `endpointId`. */
async function emit(merchantId: string, endpointId: string, at: string, type: EventType = "payment.created") {
  const event = await transaction(t.db.pool, (tx) => recordEvent(tx, { merchantId, type, object: { id: "pay_x" }, now: new Date(at) }));
  const { rows } = await t.db.pool.query<{ id: string }>("select id from webhook_deliveries where event_id = $1 and endpoint_id = $2", [
    event.id,
    endpointId,
  ]);
  return { eventId: event.id, deliveryId: rows[0]!.id };
}

async function setStatus(deliveryId: string, status: string) {
  await t.db.pool.query("update webhook_deliveries set status = $2 where id = $1", [deliveryId, status]);
}

/**
 * Logs a failed attempt the way a worker does: lease the row, then fail it (finally when `retryAt`
 * is null). Returns the delivery's new status.
 */
async function failAttempt(deliveryId: string, attempt: { startedAt: string; statusCode: number | null; errorClass: string; body: string | null }, retryAt: Date | null) {
  const { rows } = await t.db.pool.query<{ attempts: number; endpoint_id: string }>(
    // As a claim does: the lease only; recording the attempt counts it.
    "update webhook_deliveries set locked_by = 'test-worker' where id = $1 returning attempts + 1 as attempts, endpoint_id",
    [deliveryId],
  );
  const leased = rows[0]!;
  const status = await transaction(t.db.pool, (tx) =>
    failDelivery(tx, {
      id: deliveryId,
      endpointId: leased.endpoint_id,
      lease: "test-worker",
      now: new Date(attempt.startedAt),
      nextAttemptAt: retryAt,
      attempt: {
        attempt: leased.attempts,
        startedAt: new Date(attempt.startedAt),
        durationMs: 250,
        statusCode: attempt.statusCode,
        errorClass: attempt.errorClass,
        responseBody: attempt.body,
      },
    }),
  );
  expect(status).toBeDefined();
  return status;
}

async function row(deliveryId: string) {
  const { rows } = await t.db.pool.query("select status, attempts, next_attempt_at, completed_at from webhook_deliveries where id = $1", [deliveryId]);
  return rows[0];
}

/** Resolves with the next NOTIFY on the deliveries channel, or rejects after `ms`. */
async function listenForWorkers(ms = 3000) {
  const client = new pg.Client({ connectionString: t.db.url });
  await client.connect();
  await client.query(`listen ${DELIVERIES_CHANNEL}`);
  const notified = new Promise<pg.Notification>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no NOTIFY")), ms);
    client.once("notification", (n) => {
      clearTimeout(timer);
      resolve(n);
    });
  }).finally(() => client.end());
  // Wrapped so that awaiting this function waits for LISTEN, not for the notification.
  return { notified };
}

describe("GET /v1/webhook_endpoints/:id/deliveries", () => {
  it("lists an endpoint's deliveries newest first, filtered by status", async () => {
    const m = await setup();
    const first = await emit(m.merchant.id, m.endpointId, "2026-03-01T00:00:00Z");
    const second = await emit(m.merchant.id, m.endpointId, "2026-03-01T00:01:00Z", "payment.confirmed");
    await setStatus(first.deliveryId, "failed");

    const res = await call(m.auth, "GET", `/v1/webhook_endpoints/${m.endpointId}/deliveries`);
    expect(res.statusCode).toBe(200);
    const page = res.json();
    expect(page).toMatchObject({ object: "list", has_more: false, next_cursor: null });
    expect(page.data).toEqual([
      {
        id: second.deliveryId,
        object: "webhook_delivery",
        event_id: second.eventId,
        event_type: "payment.confirmed",
        endpoint_id: m.endpointId,
        status: "pending",
        attempt_count: 0,
        next_attempt_at: "2026-03-01T00:01:00.000Z",
        last_status_code: null,
        last_error: null,
        created_at: expect.any(String),
        completed_at: null,
      },
      expect.objectContaining({ id: first.deliveryId, status: "failed", event_type: "payment.created", next_attempt_at: null }),
    ]);

    const failed = await call(m.auth, "GET", `/v1/webhook_endpoints/${m.endpointId}/deliveries?status=failed`);
    expect(failed.json().data.map((d: { id: string }) => d.id)).toEqual([first.deliveryId]);
    const pending = await call(m.auth, "GET", `/v1/webhook_endpoints/${m.endpointId}/deliveries?status=pending`);
    expect(pending.json().data.map((d: { id: string }) => d.id)).toEqual([second.deliveryId]);

    const bad = await call(m.auth, "GET", `/v1/webhook_endpoints/${m.endpointId}/deliveries?status=lost`);
    expect(bad.json().error).toMatchObject({ code: "invalid_request", param: "status" });
    const missing = await call(m.auth, "GET", "/v1/webhook_endpoints/we_0000000000000000000000/deliveries");
    expect(missing.statusCode).toBe(404);
  });

  it("pages through deliveries created within the same millisecond without skipping any", async () => {
    const m = await setup();
    const ids: string[] = [];
    for (const micros of ["000100", "000300", "000200"]) {
      const { deliveryId } = await emit(m.merchant.id, m.endpointId, "2026-03-02T00:00:00Z");
      // PostgreSQL keeps microseconds; a cursor cut to milliseconds would lose the next two rows.
      await t.db.pool.query("update webhook_deliveries set created_at = $2 where id = $1", [deliveryId, `2026-03-02T00:00:00.${micros}Z`]);
      ids.push(deliveryId);
    }
    const seen: string[] = [];
    let url = `/v1/webhook_endpoints/${m.endpointId}/deliveries?limit=1`;
    for (let page = 0; page < 5; page++) {
      const body = (await call(m.auth, "GET", url)).json();
      seen.push(...body.data.map((d: { id: string }) => d.id));
      if (!body.has_more) break;
      url = `/v1/webhook_endpoints/${m.endpointId}/deliveries?limit=1&cursor=${body.next_cursor}`;
    }
    expect(seen).toEqual([ids[1], ids[2], ids[0]]);

    const after = await call(m.auth, "GET", `/v1/webhook_endpoints/${m.endpointId}/deliveries?starting_after=${ids[1]}`);
    expect(after.json().data.map((d: { id: string }) => d.id)).toEqual([ids[2], ids[0]]);
  });

  it("refuses starting_after from another endpoint's list", async () => {
    const m = await setup();
    const other = await call(m.auth, "POST", "/v1/webhook_endpoints", { url: "https://example.com/2", enabled_events: ["*"] });
    const { deliveryId } = await emit(m.merchant.id, m.endpointId, "2026-03-03T00:00:00Z");
    const res = await call(m.auth, "GET", `/v1/webhook_endpoints/${other.json().id}/deliveries?starting_after=${deliveryId}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe("invalid_starting_after");
  });
});

describe("GET /v1/deliveries/:id", () => {
  it("returns the delivery with its attempt log", async () => {
    const m = await setup();
    const { eventId, deliveryId } = await emit(m.merchant.id, m.endpointId, "2026-03-04T00:00:00Z");
    await failAttempt(deliveryId, { startedAt: "2026-03-04T00:00:01Z", statusCode: 500, errorClass: "http_status", body: "oops" }, new Date("2026-03-04T00:01:00Z"));
    await failAttempt(deliveryId, { startedAt: "2026-03-04T00:01:00Z", statusCode: null, errorClass: "timeout", body: null }, null);

    const res = await call(m.auth, "GET", `/v1/deliveries/${deliveryId}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      id: deliveryId,
      object: "webhook_delivery",
      event_id: eventId,
      event_type: "payment.created",
      endpoint_id: m.endpointId,
      status: "failed",
      attempt_count: 2,
      next_attempt_at: null,
      last_status_code: null,
      last_error: "timeout",
      created_at: expect.any(String),
      completed_at: "2026-03-04T00:01:00.000Z",
      attempts: [
        { attempt: 1, started_at: "2026-03-04T00:00:01.000Z", duration_ms: 250, status_code: 500, error_class: "http_status", response_body: "oops" },
        { attempt: 2, started_at: "2026-03-04T00:01:00.000Z", duration_ms: 250, status_code: null, error_class: "timeout", response_body: null },
      ],
    });
    expect((await call(m.auth, "GET", "/v1/deliveries/del_0000000000000000000000")).statusCode).toBe(404);
  });
});

describe("POST /v1/deliveries/:id/retry", () => {
  it("queues a failed delivery for now, keeping its attempt count, and wakes the workers", async () => {
    const m = await setup();
    const { deliveryId } = await emit(m.merchant.id, m.endpointId, "2026-03-05T00:00:00Z");
    await failAttempt(deliveryId, { startedAt: "2026-03-05T00:00:01Z", statusCode: 503, errorClass: "http_status", body: null }, null);
    expect(await row(deliveryId)).toMatchObject({ status: "failed", attempts: 1 });

    clock.set(new Date("2026-03-05T12:00:00.000Z"));
    const { notified } = await listenForWorkers();
    const res = await call(m.auth, "POST", `/v1/deliveries/${deliveryId}/retry`);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ id: deliveryId, status: "pending", attempt_count: 1, next_attempt_at: "2026-03-05T12:00:00.000Z", completed_at: null });
    expect(await row(deliveryId)).toEqual({ status: "pending", attempts: 1, next_attempt_at: new Date("2026-03-05T12:00:00.000Z"), completed_at: null });
    await expect(notified).resolves.toMatchObject({ channel: DELIVERIES_CHANNEL });
  });

  it("refuses while the endpoint is disabled or deleted, and changes nothing", async () => {
    const m = await setup();
    const { deliveryId } = await emit(m.merchant.id, m.endpointId, "2026-03-06T00:00:00Z");
    await setStatus(deliveryId, "failed");
    await call(m.auth, "PATCH", `/v1/webhook_endpoints/${m.endpointId}`, { disabled: true });
    const disabled = await call(m.auth, "POST", `/v1/deliveries/${deliveryId}/retry`);
    expect(disabled.statusCode).toBe(409);
    expect(disabled.json().error.code).toBe("endpoint_disabled");
    expect(await row(deliveryId)).toMatchObject({ status: "failed" });

    await call(m.auth, "DELETE", `/v1/webhook_endpoints/${m.endpointId}`);
    const deleted = await call(m.auth, "POST", `/v1/deliveries/${deliveryId}/retry`);
    expect(deleted.statusCode).toBe(409);
    expect(deleted.json().error.code).toBe("endpoint_deleted");
    expect(await row(deliveryId)).toMatchObject({ status: "failed" });
    // The log of a deleted endpoint stays readable.
    expect((await call(m.auth, "GET", `/v1/deliveries/${deliveryId}`)).statusCode).toBe(200);
  });
});

describe("a failed attempt recorded after its endpoint changed", () => {
  it("parks the delivery when the endpoint was disabled during the attempt, and ends it when it was deleted", async () => {
    const m = await setup();
    const url = `/v1/webhook_endpoints/${m.endpointId}`;
    const first = await emit(m.merchant.id, m.endpointId, "2026-03-06T12:00:00Z");
    const second = await emit(m.merchant.id, m.endpointId, "2026-03-06T12:00:01Z");
    // Both in flight: leased rows are left to their worker by the PATCH.
    await t.db.pool.query("update webhook_deliveries set locked_by = 'test-worker' where id = any ($1)", [[first.deliveryId, second.deliveryId]]);
    expect((await call(m.auth, "PATCH", url, { disabled: true })).statusCode).toBe(200);
    expect(await row(first.deliveryId)).toMatchObject({ status: "pending" });

    const failure = { startedAt: "2026-03-06T12:00:02Z", statusCode: 500, errorClass: "http_status", body: null };
    const retryAt = new Date("2026-03-06T12:05:00Z");
    expect(await failAttempt(first.deliveryId, failure, retryAt)).toBe("endpoint_disabled");
    expect((await call(m.auth, "DELETE", url)).statusCode).toBe(200);
    expect(await failAttempt(second.deliveryId, failure, retryAt)).toBe("failed");

    expect(await row(first.deliveryId)).toMatchObject({ status: "endpoint_disabled", completed_at: null });
    expect(await row(second.deliveryId)).toMatchObject({ status: "failed", completed_at: new Date(failure.startedAt) });
  });
});

describe("POST /v1/webhook_endpoints/:id/recover", () => {
  it("re-queues failed and parked deliveries of events in [since, until) of this endpoint only", async () => {
    const m = await setup();
    const other = (await call(m.auth, "POST", "/v1/webhook_endpoints", { url: "https://example.com/other", enabled_events: ["*"] })).json();
    const at = (time: string) => emit(m.merchant.id, m.endpointId, `2026-03-07T${time}Z`);
    const before = await at("00:59:59.999");
    const atSince = await at("01:00:00");
    const parked = await at("01:30:00");
    const succeeded = await at("01:40:00");
    const pending = await at("01:50:00");
    const atUntil = await at("02:00:00");
    for (const d of [before, atSince, atUntil]) await setStatus(d.deliveryId, "failed");
    await setStatus(parked.deliveryId, "endpoint_disabled");
    await setStatus(succeeded.deliveryId, "succeeded");
    const { rows } = await t.db.pool.query<{ id: string }>("select id from webhook_deliveries where event_id = $1 and endpoint_id = $2", [
      atSince.eventId,
      other.id,
    ]);
    const otherEndpoints = rows[0]!.id;
    await setStatus(otherEndpoints, "failed");
    await t.db.pool.query("update webhook_deliveries set attempts = 5 where endpoint_id = $1", [m.endpointId]);

    clock.set(new Date("2026-03-08T00:00:00.000Z"));
    const res = await call(m.auth, "POST", `/v1/webhook_endpoints/${m.endpointId}/recover`, {
      since: "2026-03-07T01:00:00Z",
      until: "2026-03-07T02:00:00Z",
    });
    expect(res.statusCode).toBe(202);
    const recovery = res.json();
    expect(recovery).toEqual({
      id: expect.stringMatching(/^rcv_[0-9A-Za-z]{22}$/),
      object: "webhook_recovery",
      endpoint_id: m.endpointId,
      since: "2026-03-07T01:00:00.000Z",
      until: "2026-03-07T02:00:00.000Z",
      status: "running",
      requeued: 0,
      created_at: "2026-03-08T00:00:00.000Z",
      finished_at: null,
    });
    expect((await call(m.auth, "GET", `/v1/webhook_recoveries/${recovery.id}`)).json()).toEqual(recovery);

    clock.set(new Date("2026-03-08T00:00:05.000Z"));
    let wakes = 0;
    await processRecoveries(t.db.pool, clock.now(), () => wakes++);
    // One batch re-queued both, and woke the workers once it had committed.
    expect(wakes).toBe(1);

    const requeued = { status: "pending", attempts: 0, next_attempt_at: clock.now(), completed_at: null };
    expect(await row(atSince.deliveryId)).toEqual(requeued);
    expect(await row(parked.deliveryId)).toEqual(requeued);
    expect(await row(before.deliveryId)).toMatchObject({ status: "failed", attempts: 5 });
    expect(await row(atUntil.deliveryId)).toMatchObject({ status: "failed", attempts: 5 });
    expect(await row(succeeded.deliveryId)).toMatchObject({ status: "succeeded" });
    expect(await row(pending.deliveryId)).toMatchObject({ status: "pending", attempts: 5 });
    expect(await row(otherEndpoints)).toMatchObject({ status: "failed" });

    expect((await call(m.auth, "GET", `/v1/webhook_recoveries/${recovery.id}`)).json()).toEqual({
      ...recovery,
      status: "done",
      requeued: 2,
      finished_at: "2026-03-08T00:00:05.000Z",
    });
  });

  it("ends a recovery whose endpoint was disabled before it ran, re-queuing nothing", async () => {
    clock.set(new Date("2026-03-08T12:00:00.000Z"));
    const m = await setup();
    const { deliveryId } = await emit(m.merchant.id, m.endpointId, "2026-03-08T11:00:00Z");
    await setStatus(deliveryId, "failed");
    const recovery = (await call(m.auth, "POST", `/v1/webhook_endpoints/${m.endpointId}/recover`, { since: "2026-03-08T00:00:00Z" })).json();
    await call(m.auth, "PATCH", `/v1/webhook_endpoints/${m.endpointId}`, { disabled: true });

    let wakes = 0;
    await processRecoveries(t.db.pool, clock.now(), () => wakes++);
    expect(wakes).toBe(0);
    expect(await row(deliveryId)).toMatchObject({ status: "failed" });
    expect((await call(m.auth, "GET", `/v1/webhook_recoveries/${recovery.id}`)).json()).toMatchObject({ status: "done", requeued: 0 });
  });

  it("ends the window now by default", async () => {
    clock.set(new Date("2026-03-09T00:00:00.000Z"));
    const m = await setup();
    const res = await call(m.auth, "POST", `/v1/webhook_endpoints/${m.endpointId}/recover`, { since: "2026-03-08T00:00:00+02:00" });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ since: "2026-03-07T22:00:00.000Z", until: "2026-03-09T00:00:00.000Z" });
  });

  it("rejects a bad window or a disabled endpoint and writes nothing", async () => {
    clock.set(new Date("2026-03-10T00:00:00.000Z"));
    const m = await setup();
    const url = `/v1/webhook_endpoints/${m.endpointId}/recover`;
    const cases: [object, string, string][] = [
      [{ since: "2026-03-09T00:00:00Z", until: "2026-03-09T00:00:00Z" }, "invalid_time_range", "since"],
      [{ since: "2026-03-09T00:00:00Z", until: "2026-03-08T00:00:00Z" }, "invalid_time_range", "since"],
      [{ since: "2026-03-11T00:00:00Z" }, "invalid_time_range", "since"],
      [{ since: "yesterday" }, "invalid_date", "since"],
      [{ since: "2026-03-09T23:59:60Z" }, "invalid_date", "since"],
      [{ until: "2026-03-09T00:00:00Z" }, "invalid_request", "since"],
      [{ since: "2026-03-09T00:00:00Z", limit: 10 }, "invalid_request", "limit"],
    ];
    for (const [payload, code, param] of cases) {
      const res = await call(m.auth, "POST", url, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error, JSON.stringify(payload)).toMatchObject({ code, param });
    }
    await call(m.auth, "PATCH", `/v1/webhook_endpoints/${m.endpointId}`, { disabled: true });
    const disabled = await call(m.auth, "POST", url, { since: "2026-03-09T00:00:00Z" });
    expect(disabled.statusCode).toBe(409);
    expect(disabled.json().error.code).toBe("endpoint_disabled");

    const { rows } = await t.db.pool.query("select count(*)::int as n from webhook_recoveries where endpoint_id = $1", [m.endpointId]);
    expect(rows[0].n).toBe(0);
  });
});

describe("tenant isolation", () => {
  it("answers 404 for another merchant's deliveries and recoveries, and changes nothing", async () => {
    clock.set(new Date("2026-03-11T00:00:00.000Z"));
    const owner = await setup();
    const intruder = await setup();
    const { deliveryId } = await emit(owner.merchant.id, owner.endpointId, "2026-03-10T00:00:00Z");
    await setStatus(deliveryId, "failed");
    const recovery = (await call(owner.auth, "POST", `/v1/webhook_endpoints/${owner.endpointId}/recover`, { since: "2026-03-01T00:00:00Z" })).json();

    const routes: [Method, string, object?][] = [
      ["GET", `/v1/deliveries/${deliveryId}`],
      ["POST", `/v1/deliveries/${deliveryId}/retry`],
      ["GET", `/v1/webhook_recoveries/${recovery.id}`],
      ["GET", `/v1/webhook_endpoints/${owner.endpointId}/deliveries`],
      ["POST", `/v1/webhook_endpoints/${owner.endpointId}/recover`, { since: "2026-03-01T00:00:00Z" }],
    ];
    for (const [method, url, payload] of routes) {
      const res = await call(intruder.auth, method, url, payload);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().error.code, `${method} ${url}`).toBe("resource_not_found");
    }
    const foreignCursor = await call(intruder.auth, "GET", `/v1/webhook_endpoints/${intruder.endpointId}/deliveries?starting_after=${deliveryId}`);
    expect(foreignCursor.json().error.code).toBe("invalid_starting_after");

    expect(await row(deliveryId)).toMatchObject({ status: "failed" });
    const { rows } = await t.db.pool.query("select count(*)::int as n from webhook_recoveries where endpoint_id = $1", [owner.endpointId]);
    expect(rows[0].n).toBe(1);
  });
});
