import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keypair } from "@stellar/stellar-sdk";
import { transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { buildTestApp, seedMerchant, TestClock, type TestApp } from "./support/app.js";

let t: TestApp;
const clock = new TestClock();
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

type Auth = { authorization: string };
type Method = "GET" | "POST" | "PATCH" | "DELETE";

const call = (app: TestApp, auth: Auth, method: Method, url: string, payload?: object, headers: Record<string, string> = {}) =>
  app.app.inject({ method, url, headers: { ...auth, ...headers }, ...(payload === undefined ? {} : { payload }) });
const create = (auth: Auth, payload: object, app = t) => call(app, auth, "POST", "/v1/webhook_endpoints", payload);

async function createOk(auth: Auth, payload: object = {}, app = t) {
  const res = await create(auth, { url: "https://example.com/hooks", enabled_events: ["*"], ...payload }, app);
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;

async function rawEndpoint(app: TestApp, id: string) {
  const { rows } = await app.db.pool.query("select * from webhook_endpoints where id = $1", [id]);
  return rows[0];
}

async function countRows(table: string, where: string, value: string, app = t): Promise<number> {
  const { rows } = await app.db.pool.query<{ n: number }>(`select count(*)::int as n from ${table} where ${where} = $1`, [value]);
  return rows[0]!.n;
}

describe("POST /v1/webhook_endpoints", () => {
  it("creates an endpoint and shows its secret, which /secret shows again", async () => {
    clock.set(new Date("2026-02-01T10:00:00.000Z"));
    const m = await seedMerchant(t);
    const res = await create(m.auth, {
      url: "https://example.com/hooks",
      description: "Orders",
      enabled_events: ["payment.confirmed", "payment.expired", "payment.confirmed"],
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^we_[0-9A-Za-z]{22}$/),
      object: "webhook_endpoint",
      url: "https://example.com/hooks",
      description: "Orders",
      enabled_events: ["payment.confirmed", "payment.expired"],
      disabled: false,
      disabled_reason: null,
      previous_secret_expires_at: null,
      created_at: "2026-02-01T10:00:00.000Z",
      updated_at: "2026-02-01T10:00:00.000Z",
      secret: expect.stringMatching(SECRET),
    });
    // Without LUMENPAY_ENCRYPTION_KEY the secret is stored as is.
    expect((await rawEndpoint(t, body.id)).secret).toBe(body.secret);

    const { secret, ...endpoint } = body;
    const got = await call(t, m.auth, "GET", `/v1/webhook_endpoints/${body.id}`);
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(endpoint);
    const shown = await call(t, m.auth, "GET", `/v1/webhook_endpoints/${body.id}/secret`);
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toEqual({ secret, previous_secret: null, previous_secret_expires_at: null });
  });

  it("creates a disabled endpoint when asked, and normalizes the URL", async () => {
    const m = await seedMerchant(t);
    const body = await createOk(m.auth, { url: "https://EXAMPLE.com:443", disabled: true });
    expect(body).toMatchObject({ url: "https://example.com/", disabled: true });
  });

  it("rejects invalid URLs and event lists with a code and param, and writes nothing", async () => {
    const m = await seedMerchant(t);
    const valid = { url: "https://example.com/hooks", enabled_events: ["payment.created"] };
    const cases: [Record<string, unknown>, string, string][] = [
      [{ url: "http://example.com/hooks" }, "insecure_url", "url"],
      [{ url: "https://user:pw@example.com/hooks" }, "url_credentials", "url"],
      [{ url: "https://10.1.2.3/hooks" }, "forbidden_address", "url"],
      [{ url: "https://[::1]/hooks" }, "forbidden_address", "url"],
      [{ url: "https://0x7f000001/hooks" }, "forbidden_address", "url"],
      [{ url: "example.com/hooks" }, "invalid_url", "url"],
      [{ url: "ftp://example.com/hooks" }, "invalid_url", "url"],
      [{ url: `https://example.com/${"a".repeat(2048)}` }, "invalid_request", "url"],
      [{ enabled_events: ["payment.created", "payment.exploded"] }, "invalid_event_type", "enabled_events"],
      [{ enabled_events: ["*", "payment.created"] }, "invalid_event_type", "enabled_events"],
      [{ enabled_events: [] }, "invalid_request", "enabled_events"],
      [{ enabled_events: undefined }, "invalid_request", "enabled_events"],
      [{ url: undefined }, "invalid_request", "url"],
      [{ description: "a\u0000b" }, "invalid_request", "description"],
      [{ secret: "whsec_mine" }, "invalid_request", "secret"],
    ];
    for (const [fields, code, param] of cases) {
      const res = await create(m.auth, { ...valid, ...fields });
      const label = JSON.stringify(fields).slice(0, 80);
      expect(res.statusCode, label).toBe(400);
      expect(res.json().error, label).toMatchObject({ code, param });
    }
    expect(await countRows("webhook_endpoints", "merchant_id", m.merchant.id)).toBe(0);
  });

  it(`allows at most 16 live endpoints per merchant`, async () => {
    const m = await seedMerchant(t);
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) ids.push((await createOk(m.auth)).id);
    const refused = await create(m.auth, { url: "https://example.com/17", enabled_events: ["*"] });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.code).toBe("too_many_endpoints");
    expect(await countRows("webhook_endpoints", "merchant_id", m.merchant.id)).toBe(16);

    // A deleted endpoint frees its place.
    expect((await call(t, m.auth, "DELETE", `/v1/webhook_endpoints/${ids[0]}`)).statusCode).toBe(200);
    await createOk(m.auth);
  });

  it("replays an idempotent create with the same secret and creates one endpoint", async () => {
    const m = await seedMerchant(t);
    const payload = { url: "https://example.com/once", enabled_events: ["*"] };
    const key = { "idempotency-key": "create-endpoint-1" };
    const first = await call(t, m.auth, "POST", "/v1/webhook_endpoints", payload, key);
    const second = await call(t, m.auth, "POST", "/v1/webhook_endpoints", payload, key);
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.headers["idempotent-replayed"]).toBe("true");
    expect(second.json()).toEqual(first.json());
    expect(await countRows("webhook_endpoints", "merchant_id", m.merchant.id)).toBe(1);
    // The replayable response is stored without the secret.
    const { rows } = await t.db.pool.query("select response_body::text as body from idempotency_keys where merchant_id = $1", [m.merchant.id]);
    expect(rows[0].body).not.toContain(first.json().secret);
  });
});

describe("GET /v1/webhook_endpoints", () => {
  it("lists live endpoints newest first, a page at a time", async () => {
    const m = await seedMerchant(t);
    const ids: string[] = [];
    for (const at of ["2026-02-02T00:00:00Z", "2026-02-02T00:00:01Z", "2026-02-02T00:00:01Z", "2026-02-02T00:00:02Z", "2026-02-02T00:00:03Z"]) {
      clock.set(new Date(at));
      ids.push((await createOk(m.auth)).id);
    }
    await call(t, m.auth, "DELETE", `/v1/webhook_endpoints/${ids[4]}`);
    // Same created_at: the larger id comes first.
    const tied = [ids[1]!, ids[2]!].sort().reverse();
    const expected = [ids[3]!, ...tied, ids[0]!];

    const seen: string[] = [];
    let url = "/v1/webhook_endpoints?limit=2";
    for (;;) {
      const res = await call(t, m.auth, "GET", url);
      expect(res.statusCode).toBe(200);
      const page = res.json();
      expect(page.object).toBe("list");
      expect(page.data[0]).not.toHaveProperty("secret");
      seen.push(...page.data.map((e: { id: string }) => e.id));
      if (!page.has_more) {
        expect(page.next_cursor).toBeNull();
        break;
      }
      url = `/v1/webhook_endpoints?limit=2&cursor=${page.next_cursor}`;
    }
    expect(seen).toEqual(expected);

    const after = await call(t, m.auth, "GET", `/v1/webhook_endpoints?starting_after=${expected[1]}`);
    expect(after.json().data.map((e: { id: string }) => e.id)).toEqual(expected.slice(2));
  });

  it("rejects bad pagination parameters", async () => {
    const m = await seedMerchant(t);
    const other = await createOk((await seedMerchant(t)).auth);
    const cases: [string, string, string][] = [
      ["cursor=nonsense", "invalid_cursor", "cursor"],
      [`cursor=${Buffer.from("2026-01-01T00:00:00Z|pay_x").toString("base64url")}`, "invalid_cursor", "cursor"],
      [`cursor=x&starting_after=${other.id}`, "invalid_request", "cursor"],
      [`starting_after=${other.id}`, "invalid_starting_after", "starting_after"],
      ["limit=0", "invalid_request", "limit"],
      ["limit=101", "invalid_request", "limit"],
    ];
    for (const [query, code, param] of cases) {
      const res = await call(t, m.auth, "GET", `/v1/webhook_endpoints?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error, query).toMatchObject({ code, param });
    }
  });
});

describe("PATCH /v1/webhook_endpoints/:id", () => {
  it("changes only the given fields", async () => {
    clock.set(new Date("2026-02-03T00:00:00.000Z"));
    const m = await seedMerchant(t);
    const created = await createOk(m.auth, { description: "before", enabled_events: ["payment.created"] });
    clock.set(new Date("2026-02-03T01:00:00.000Z"));
    const res = await call(t, m.auth, "PATCH", `/v1/webhook_endpoints/${created.id}`, { description: "after" });
    expect(res.statusCode).toBe(200);
    const { secret, ...before } = created;
    expect(res.json()).toEqual({ ...before, description: "after", updated_at: "2026-02-03T01:00:00.000Z" });

    const more = await call(t, m.auth, "PATCH", `/v1/webhook_endpoints/${created.id}`, {
      url: "https://hooks.example.org/new",
      enabled_events: ["*"],
      description: null,
    });
    expect(more.json()).toMatchObject({ url: "https://hooks.example.org/new", enabled_events: ["*"], description: null });
    expect((await rawEndpoint(t, created.id)).secret).toBe(secret);
  });

  it("validates like create and changes nothing on error", async () => {
    const m = await seedMerchant(t);
    const created = await createOk(m.auth);
    const cases: [object, string, string][] = [
      [{ url: "http://example.com" }, "insecure_url", "url"],
      [{ url: "https://192.168.1.1/x", description: "new" }, "forbidden_address", "url"],
      [{ enabled_events: ["nope"] }, "invalid_event_type", "enabled_events"],
      [{ enabled_events: [] }, "invalid_request", "enabled_events"],
      [{}, "invalid_request", ""],
      [{ secret: "x" }, "invalid_request", "secret"],
    ];
    for (const [patch, code, param] of cases) {
      const res = await call(t, m.auth, "PATCH", `/v1/webhook_endpoints/${created.id}`, patch);
      expect(res.statusCode, JSON.stringify(patch)).toBe(400);
      expect(res.json().error, JSON.stringify(patch)).toMatchObject(param ? { code, param } : { code });
    }
    const { secret: _secret, ...unchanged } = created;
    expect((await call(t, m.auth, "GET", `/v1/webhook_endpoints/${created.id}`)).json()).toEqual(unchanged);
  });

  it("parks queued deliveries when disabled, and clears the reason when re-enabled", async () => {
    const m = await seedMerchant(t);
    const endpoint = await createOk(m.auth);
    const event = await transaction(t.db.pool, (tx) =>
      recordEvent(tx, { merchantId: m.merchant.id, type: "payment.created", object: { id: "pay_x" }, now: clock.now() }),
    );
    const disabled = await call(t, m.auth, "PATCH", `/v1/webhook_endpoints/${endpoint.id}`, { disabled: true });
    expect(disabled.json()).toMatchObject({ disabled: true, disabled_reason: "Disabled by the merchant." });
    const { rows } = await t.db.pool.query("select status from webhook_deliveries where event_id = $1", [event.id]);
    expect(rows).toEqual([{ status: "endpoint_disabled" }]);

    const enabled = await call(t, m.auth, "PATCH", `/v1/webhook_endpoints/${endpoint.id}`, { disabled: false });
    expect(enabled.json()).toMatchObject({ disabled: false, disabled_reason: null });
  });
});

describe("DELETE /v1/webhook_endpoints/:id", () => {
  it("soft-deletes the endpoint and fails what was queued for it", async () => {
    clock.set(new Date("2026-02-04T00:00:00.000Z"));
    const m = await seedMerchant(t);
    const endpoint = await createOk(m.auth);
    const event = await transaction(t.db.pool, (tx) =>
      recordEvent(tx, { merchantId: m.merchant.id, type: "payment.created", object: { id: "pay_x" }, now: clock.now() }),
    );
    const res = await call(t, m.auth, "DELETE", `/v1/webhook_endpoints/${endpoint.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id: endpoint.id, object: "webhook_endpoint", deleted: true });

    expect((await rawEndpoint(t, endpoint.id)).deleted_at).toEqual(new Date("2026-02-04T00:00:00.000Z"));
    const { rows } = await t.db.pool.query("select status, last_error from webhook_deliveries where event_id = $1", [event.id]);
    expect(rows).toEqual([{ status: "failed", last_error: "endpoint_deleted" }]);
    for (const [method, url] of [
      ["GET", `/v1/webhook_endpoints/${endpoint.id}`],
      ["GET", `/v1/webhook_endpoints/${endpoint.id}/secret`],
      ["DELETE", `/v1/webhook_endpoints/${endpoint.id}`],
    ] as const) {
      const again = await call(t, m.auth, method, url);
      expect(again.statusCode, `${method} ${url}`).toBe(404);
      expect(again.json().error.code).toBe("resource_not_found");
    }
    expect((await call(t, m.auth, "GET", "/v1/webhook_endpoints")).json().data).toEqual([]);
  });
});

describe("POST /v1/webhook_endpoints/:id/rotate_secret", () => {
  it("keeps the previous secret for the configured grace period by default", async () => {
    clock.set(new Date("2026-02-05T00:00:00.000Z"));
    const m = await seedMerchant(t);
    const endpoint = await createOk(m.auth);
    const res = await call(t, m.auth, "POST", `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`);
    expect(res.statusCode).toBe(200);
    const rotated = res.json();
    expect(t.config.webhooks.secretRotationGraceHours).toBe(24);
    expect(rotated).toEqual({
      secret: expect.stringMatching(SECRET),
      previous_secret: endpoint.secret,
      previous_secret_expires_at: "2026-02-06T00:00:00.000Z",
    });
    expect(rotated.secret).not.toBe(endpoint.secret);
    expect((await call(t, m.auth, "GET", `/v1/webhook_endpoints/${endpoint.id}/secret`)).json()).toEqual(rotated);
    expect((await call(t, m.auth, "GET", `/v1/webhook_endpoints/${endpoint.id}`)).json()).toMatchObject({
      previous_secret_expires_at: "2026-02-06T00:00:00.000Z",
      updated_at: "2026-02-05T00:00:00.000Z",
    });
    // What the delivery engine signs with.
    expect(await rawEndpoint(t, endpoint.id)).toMatchObject({
      secret: rotated.secret,
      previous_secret: endpoint.secret,
      previous_secret_expires_at: new Date("2026-02-06T00:00:00.000Z"),
    });

    clock.set(new Date("2026-02-06T00:00:00.001Z"));
    expect((await call(t, m.auth, "GET", `/v1/webhook_endpoints/${endpoint.id}/secret`)).json()).toEqual({
      secret: rotated.secret,
      previous_secret: null,
      previous_secret_expires_at: null,
    });
  });

  it("takes grace_period_hours, where 0 retires the old secret at once", async () => {
    clock.set(new Date("2026-02-07T00:00:00.000Z"));
    const m = await seedMerchant(t);
    const endpoint = await createOk(m.auth);
    const url = `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`;
    const hour = (await call(t, m.auth, "POST", url, { grace_period_hours: 1 })).json();
    expect(hour).toMatchObject({ previous_secret: endpoint.secret, previous_secret_expires_at: "2026-02-07T01:00:00.000Z" });

    const now = await call(t, m.auth, "POST", url, { grace_period_hours: 0 });
    expect(now.statusCode).toBe(200);
    expect(now.json()).toEqual({ secret: expect.stringMatching(SECRET), previous_secret: null, previous_secret_expires_at: null });

    for (const grace_period_hours of [-1, 721, 1.5]) {
      const bad = await call(t, m.auth, "POST", url, { grace_period_hours });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error).toMatchObject({ code: "invalid_request", param: "grace_period_hours" });
    }
    expect((await rawEndpoint(t, endpoint.id)).secret).toBe(now.json().secret);
  });
});

describe("POST /v1/webhook_endpoints/:id/test", () => {
  it("records a webhook.test event delivered to this endpoint only, whatever it subscribes to", async () => {
    clock.set(new Date("2026-02-08T00:00:00.000Z"));
    const m = await seedMerchant(t);
    const endpoint = await createOk(m.auth, { enabled_events: ["payment.confirmed"] });
    const other = await createOk(m.auth, { enabled_events: ["*"] });
    const res = await call(t, m.auth, "POST", `/v1/webhook_endpoints/${endpoint.id}/test`);
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toEqual({
      object: "webhook_test",
      event_id: expect.stringMatching(/^evt_/),
      delivery_id: expect.stringMatching(/^del_[0-9A-Za-z]{22}$/),
    });
    const { rows } = await t.db.pool.query("select id, endpoint_id, status, next_attempt_at from webhook_deliveries where event_id = $1", [
      body.event_id,
    ]);
    expect(rows).toEqual([
      { id: body.delivery_id, endpoint_id: endpoint.id, status: "pending", next_attempt_at: new Date("2026-02-08T00:00:00.000Z") },
    ]);
    expect(await countRows("webhook_deliveries", "endpoint_id", other.id)).toBe(0);

    const event = (await call(t, m.auth, "GET", `/v1/events/${body.event_id}`)).json();
    expect(event).toMatchObject({ type: "webhook.test", data: { object: { id: endpoint.id, object: "webhook_endpoint" } } });
    expect(JSON.stringify(event)).not.toContain(endpoint.secret);
  });

  it("refuses a disabled endpoint and records nothing", async () => {
    const m = await seedMerchant(t);
    const endpoint = await createOk(m.auth, { disabled: true });
    const res = await call(t, m.auth, "POST", `/v1/webhook_endpoints/${endpoint.id}/test`);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe("endpoint_disabled");
    expect(await countRows("events", "merchant_id", m.merchant.id)).toBe(0);
  });
});

describe("fan-out (recordEvent)", () => {
  it("queues one delivery per subscribed live endpoint, parking it for a disabled one", async () => {
    const m = await seedMerchant(t);
    const created = await createOk(m.auth, { enabled_events: ["payment.created"] });
    const confirmed = await createOk(m.auth, { enabled_events: ["payment.confirmed", "payment.expired"] });
    const all = await createOk(m.auth, { enabled_events: ["*"] });
    const off = await createOk(m.auth, { enabled_events: ["*"], disabled: true });
    const deleted = await createOk(m.auth, { enabled_events: ["*"] });
    await call(t, m.auth, "DELETE", `/v1/webhook_endpoints/${deleted.id}`);
    const bystander = await seedMerchant(t);
    await createOk(bystander.auth, { enabled_events: ["*"] });

    const deliveriesOf = async (type: "payment.created" | "payment.confirmed") => {
      const event = await transaction(t.db.pool, (tx) => recordEvent(tx, { merchantId: m.merchant.id, type, object: {}, now: clock.now() }));
      const { rows } = await t.db.pool.query(
        "select endpoint_id, merchant_id, status from webhook_deliveries where event_id = $1 order by endpoint_id",
        [event.id],
      );
      return rows;
    };
    const row = (endpointId: string, status = "pending") => ({ endpoint_id: endpointId, merchant_id: m.merchant.id, status });
    const byId = (a: { endpoint_id: string }, b: { endpoint_id: string }) => (a.endpoint_id < b.endpoint_id ? -1 : 1);
    expect(await deliveriesOf("payment.created")).toEqual([row(created.id), row(all.id), row(off.id, "endpoint_disabled")].sort(byId));
    expect(await deliveriesOf("payment.confirmed")).toEqual([row(confirmed.id), row(all.id), row(off.id, "endpoint_disabled")].sort(byId));
  });
});

describe("GET /v1/webhooks/signing_key", () => {
  it("is null without WEBHOOK_SIGNING_SEED", async () => {
    const m = await seedMerchant(t);
    const res = await call(t, m.auth, "GET", "/v1/webhooks/signing_key");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ signing_key: null, algorithm: "ed25519" });
  });
});

describe("with LUMENPAY_ENCRYPTION_KEY, WEBHOOK_ALLOW_HTTP and a signing seed", () => {
  let c: TestApp;
  const seed = Keypair.random();
  beforeAll(async () => {
    c = await buildTestApp({
      clock,
      env: {
        LUMENPAY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64"),
        WEBHOOK_ALLOW_HTTP: "true",
        WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
        WEBHOOK_SECRET_ROTATION_GRACE_HOURS: "6",
        WEBHOOK_SIGNING_SEED: seed.secret(),
      },
    });
  });
  afterAll(() => c.close());

  it("stores secrets encrypted and still shows them in the clear", async () => {
    const m = await seedMerchant(c);
    const endpoint = await createOk(m.auth, {}, c);
    expect(endpoint.secret).toMatch(SECRET);
    const raw = await rawEndpoint(c, endpoint.id);
    expect(raw.secret).toMatch(/^enc:v1:/);
    expect(raw.secret).not.toContain(endpoint.secret.slice("whsec_".length));
    expect((await call(c, m.auth, "GET", `/v1/webhook_endpoints/${endpoint.id}/secret`)).json().secret).toBe(endpoint.secret);

    const rotated = (await call(c, m.auth, "POST", `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`)).json();
    expect(rotated.previous_secret).toBe(endpoint.secret);
    const after = await rawEndpoint(c, endpoint.id);
    expect(after.secret).toMatch(/^enc:v1:/);
    expect(after.previous_secret).toMatch(/^enc:v1:/);
    expect(after.secret).not.toContain(rotated.secret.slice("whsec_".length));
  });

  it("uses the configured rotation grace period by default", async () => {
    clock.set(new Date("2026-02-09T00:00:00.000Z"));
    const m = await seedMerchant(c);
    const endpoint = await createOk(m.auth, {}, c);
    const rotated = await call(c, m.auth, "POST", `/v1/webhook_endpoints/${endpoint.id}/rotate_secret`, {});
    expect(rotated.json().previous_secret_expires_at).toBe("2026-02-09T06:00:00.000Z");
  });

  it("accepts http URLs and addresses in WEBHOOK_ALLOWED_CIDRS", async () => {
    const m = await seedMerchant(c);
    expect((await createOk(m.auth, { url: "http://127.0.0.1:8080/hooks" }, c)).url).toBe("http://127.0.0.1:8080/hooks");
    const refused = await create(m.auth, { url: "http://10.0.0.1/hooks", enabled_events: ["*"] }, c);
    expect(refused.json().error).toMatchObject({ code: "forbidden_address", param: "url" });
  });

  it("publishes the G… key of WEBHOOK_SIGNING_SEED", async () => {
    const m = await seedMerchant(c);
    const res = await call(c, m.auth, "GET", "/v1/webhooks/signing_key");
    expect(res.json()).toEqual({ signing_key: seed.publicKey(), algorithm: "ed25519" });
  });
});

describe("tenant isolation", () => {
  it("answers 404 on every endpoint route for another merchant's endpoint and changes nothing", async () => {
    const owner = await seedMerchant(t);
    const intruder = await seedMerchant(t);
    const endpoint = await createOk(owner.auth);
    const base = `/v1/webhook_endpoints/${endpoint.id}`;
    const routes: [Method, string, object?][] = [
      ["GET", base],
      ["PATCH", base, { description: "mine now" }],
      ["DELETE", base],
      ["GET", `${base}/secret`],
      ["POST", `${base}/rotate_secret`, {}],
      ["POST", `${base}/test`],
      ["GET", `${base}/deliveries`],
      ["POST", `${base}/recover`, { since: "2026-01-01T00:00:00Z" }],
    ];
    for (const [method, url, payload] of routes) {
      const res = await call(t, intruder.auth, method, url, payload);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().error.code, `${method} ${url}`).toBe("resource_not_found");
    }
    expect((await call(t, intruder.auth, "GET", "/v1/webhook_endpoints")).json().data).toEqual([]);

    const { secret, ...unchanged } = endpoint;
    expect((await call(t, owner.auth, "GET", base)).json()).toEqual(unchanged);
    expect((await call(t, owner.auth, "GET", `${base}/secret`)).json()).toEqual({
      secret,
      previous_secret: null,
      previous_secret_expires_at: null,
    });
    expect(await countRows("events", "merchant_id", owner.merchant.id)).toBe(0);
    expect(await countRows("webhook_recoveries", "endpoint_id", endpoint.id)).toBe(0);
  });
});
