import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transaction } from "../src/db/pool.js";
import { recordEvent, type NewEvent, type RecordedEvent } from "../src/events/outbox.js";
import { API_VERSION } from "../src/events/types.js";
import { buildTestApp, seedMerchant, type TestApp } from "./support/app.js";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

type Auth = { authorization: string };
const get = (auth: Auth, url: string) => t.app.inject({ method: "GET", url, headers: auth });
const record = (e: Omit<NewEvent, "now"> & { at: string }) => transaction(t.db.pool, (tx) => recordEvent(tx, { ...e, now: new Date(e.at) }));
const ids = (body: { data: { id: string }[] }) => body.data.map((e) => e.id);

/** Follows next_cursor from `url` to the end; returns every id seen. */
async function walk(auth: Auth, url: string): Promise<string[]> {
  const seen: string[] = [];
  let next = url;
  for (let page = 0; page < 20; page++) {
    const res = await get(auth, next);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    seen.push(...ids(body));
    if (!body.has_more) {
      expect(body.next_cursor).toBeNull();
      return seen;
    }
    next = `${url}&cursor=${body.next_cursor}`;
  }
  throw new Error("more pages than expected");
}

describe("GET /v1/events/:id", () => {
  it("returns the envelope as delivered, as an event object", async () => {
    const m = await seedMerchant(t);
    const payment = await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "5", asset: "XLM" } });
    expect(payment.statusCode).toBe(201);
    const object = { id: payment.json().id, object: "payment", status: "confirmed", nested: { amount: "5" } };
    const event = await record({
      merchantId: m.merchant.id,
      type: "payment.confirmed",
      object,
      payment: { id: payment.json().id, sequence: 2 },
      at: "2026-04-01T00:00:00Z",
    });

    const res = await get(m.auth, `/v1/events/${event.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      id: event.id,
      object: "event",
      type: "payment.confirmed",
      created_at: "2026-04-01T00:00:00.000Z",
      api_version: API_VERSION,
      sequence: 2,
      data: { object },
    });
    expect(res.json()).toEqual({ ...JSON.parse(event.body), object: "event" });

    const plain = await record({ merchantId: m.merchant.id, type: "endpoint.disabled", object: { id: "we_x" }, at: "2026-04-01T00:00:01Z" });
    expect((await get(m.auth, `/v1/events/${plain.id}`)).json()).not.toHaveProperty("sequence");
    expect((await get(m.auth, "/v1/events/evt_doesnotexist")).statusCode).toBe(404);
  });
});

describe("GET /v1/events", () => {
  it("pages newest first, with ties broken by id, and filters by type", async () => {
    const m = await seedMerchant(t);
    const at = ["2026-04-02T00:00:00Z", "2026-04-02T00:00:01Z", "2026-04-02T00:00:01Z", "2026-04-02T00:00:01Z", "2026-04-02T00:00:02Z"];
    const types = ["payment.created", "payment.confirmed", "payment.created", "payment.created", "payment.expired"] as const;
    const events: RecordedEvent[] = [];
    for (let i = 0; i < at.length; i++) events.push(await record({ merchantId: m.merchant.id, type: types[i]!, object: { i }, at: at[i]! }));
    const tied = [events[1]!.id, events[2]!.id, events[3]!.id].sort().reverse();
    const newestFirst = [events[4]!.id, ...tied, events[0]!.id];

    for (const limit of [1, 2, 5, 100]) expect(await walk(m.auth, `/v1/events?limit=${limit}`), `limit ${limit}`).toEqual(newestFirst);
    const created = newestFirst.filter((id) => [events[0], events[2], events[3]].some((e) => e!.id === id));
    expect(await walk(m.auth, "/v1/events?type=payment.created&limit=1")).toEqual(created);

    const first = (await get(m.auth, "/v1/events?limit=2")).json();
    expect(first.data[0]).toEqual({ ...JSON.parse(events[4]!.body), object: "event" });
    expect(ids((await get(m.auth, `/v1/events?starting_after=${newestFirst[1]}`)).json())).toEqual(newestFirst.slice(2));
    expect(ids((await get(m.auth, `/v1/events?type=payment.created&starting_after=${newestFirst[1]}`)).json())).toEqual(
      created.filter((id) => newestFirst.indexOf(id) > 1),
    );
  });

  it("rejects bad filters and cursors", async () => {
    const m = await seedMerchant(t);
    const cases: [string, string, string][] = [
      ["type=payment.exploded", "invalid_request", "type"],
      ["cursor=bm90IGEgY3Vyc29y", "invalid_cursor", "cursor"],
      [`cursor=${Buffer.from("2026-04-01T00:00:00Z|we_x").toString("base64url")}`, "invalid_cursor", "cursor"],
      ["starting_after=evt_missing", "invalid_starting_after", "starting_after"],
      ["limit=1000", "invalid_request", "limit"],
      ["payment=pay_x", "invalid_request", "payment"],
    ];
    for (const [query, code, param] of cases) {
      const res = await get(m.auth, `/v1/events?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error, query).toMatchObject({ code, param });
    }
  });
});

describe("tenant isolation", () => {
  it("shows a merchant only its own events", async () => {
    const owner = await seedMerchant(t);
    const intruder = await seedMerchant(t);
    const event = await record({ merchantId: owner.merchant.id, type: "payment.created", object: {}, at: "2026-04-03T00:00:00Z" });

    const res = await get(intruder.auth, `/v1/events/${event.id}`);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe("resource_not_found");
    expect((await get(intruder.auth, "/v1/events")).json().data).toEqual([]);
    expect((await get(intruder.auth, `/v1/events?starting_after=${event.id}`)).json().error.code).toBe("invalid_starting_after");
    expect(ids((await get(owner.auth, "/v1/events")).json())).toEqual([event.id]);
  });
});
