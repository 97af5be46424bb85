import { Keypair, Transaction } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, randomAccount, seedMerchant, TestClock, type TestApp } from "./support/app.js";
import { DashboardSession, dashboardUser, hiddenField } from "./support/dashboard.js";
import { startTestDns, type TestDns } from "./support/dns.js";

const clock = new TestClock(new Date("2026-08-01T08:00:00Z"));
let t: TestApp;
let dns: TestDns;
beforeAll(async () => {
  dns = await startTestDns();
  t = await buildTestApp({ clock, env: { DNS_SERVERS: dns.address } });
});
afterAll(async () => {
  await t?.close();
  await dns?.close();
});

async function shop(app = t) {
  const m = await seedMerchant(app);
  const user = await dashboardUser(app.db.pool, m.merchant.id, "owner");
  return { ...m, session: await DashboardSession.signIn(app.app, user.email) };
}

/** The text of the form error a page shows, if any. */
const formErrorOf = (body: string) => /<div class="form-error" role="alert"><p><strong>Not saved:<\/strong> ([^<]*)<\/p>/.exec(body)?.[1];
/** The value of the read-only field `id` (a secret, a key, a link). */
const readonlyValue = (body: string, id: string) => new RegExp(`id="${id}" readonly value="([^"]*)"`).exec(body)?.[1];

describe("webhook endpoints", () => {
  it("are created from the form; an invalid URL is explained next to its field with the input kept", async () => {
    const { session, auth, merchant } = await shop();
    const bad = await session.submit("/dashboard/webhooks", "/dashboard/webhooks", { url: "http://example.com/hooks", enabled_events: "*" });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="f-url-error">url: [^<]*https/);
    expect(bad.body).toContain('value="http://example.com/hooks"');
    const none = await session.submit("/dashboard/webhooks", "/dashboard/webhooks", { url: "https://example.com/hooks" });
    expect(formErrorOf(none.body)).toBe("Choose at least one event type, or *.");
    expect((await t.db.pool.query("select 1 from webhook_endpoints where merchant_id = $1", [merchant.id])).rowCount).toBe(0);

    const res = await session.submit("/dashboard/webhooks", "/dashboard/webhooks", { url: "https://example.com/hooks", description: "Shop", enabled_events: ["payment.confirmed", "payment.expired"] });
    expect(res.statusCode).toBe(303);
    const id = /^\/dashboard\/webhooks\/(we_\w{22})\?notice=created$/.exec(res.headers.location as string)?.[1];
    const api = await t.app.inject({ method: "GET", url: `/v1/webhook_endpoints/${id}`, headers: auth });
    expect(api.json()).toMatchObject({ url: "https://example.com/hooks", description: "Shop", enabled_events: ["payment.confirmed", "payment.expired"], disabled: false });
    const list = await session.get("/dashboard/webhooks");
    expect(list.body).toContain(`href="/dashboard/webhooks/${id}"`);
    expect(list.body).not.toContain("whsec_");
  });

  it("reveal their secret to owners by POST, rotate it with a grace period, and keep the previous one signing", async () => {
    const { session, auth } = await shop();
    const created = await t.app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: auth, payload: { url: "https://example.com/h", enabled_events: ["*"] } });
    const { id, secret: first } = created.json();
    expect((await session.get(`/dashboard/webhooks/${id}`)).body).not.toContain(first);

    const revealed = await session.post(`/dashboard/webhooks/${id}/secret`);
    expect(revealed.statusCode).toBe(200);
    expect(readonlyValue(revealed.body, "secret")).toBe(first);

    const rotated = await session.post(`/dashboard/webhooks/${id}/rotate`, { grace_hours: "2" });
    expect(rotated.headers.location).toBe(`/dashboard/webhooks/${id}?notice=rotated`);
    const api = (await t.app.inject({ method: "GET", url: `/v1/webhook_endpoints/${id}/secret`, headers: auth })).json();
    expect(api).toMatchObject({ previous_secret: first, previous_secret_expires_at: new Date(clock.now().getTime() + 2 * 3_600_000).toISOString() });
    expect(api.secret).not.toBe(first);
    const after = await session.post(`/dashboard/webhooks/${id}/secret`);
    expect(readonlyValue(after.body, "secret")).toBe(api.secret);
    expect(readonlyValue(after.body, "previous-secret")).toBe(first);

    const tooLong = await session.post(`/dashboard/webhooks/${id}/rotate`, { grace_hours: "721" });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.body).toMatch(/id="f-grace_hours-error">Enter a whole number from 0 to 720/);
  });

  it("change their events, send a test event, switch off and on, and recover a period", async () => {
    const { session, auth } = await shop();
    const { id } = (await t.app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: auth, payload: { url: "https://example.com/h", enabled_events: ["*"] } })).json();
    const endpoint = async () => (await t.app.inject({ method: "GET", url: `/v1/webhook_endpoints/${id}`, headers: auth })).json();

    expect((await session.post(`/dashboard/webhooks/${id}`, { url: "https://example.com/h", enabled_events: ["payment.confirmed"] })).statusCode).toBe(303);
    expect(await endpoint()).toMatchObject({ enabled_events: ["payment.confirmed"] });
    const mixed = await session.post(`/dashboard/webhooks/${id}`, { url: "https://example.com/h", enabled_events: ["*", "payment.confirmed"] });
    expect(mixed.statusCode).toBe(400);
    expect(mixed.body).toMatch(/id="f-enabled_events-error">&quot;\*&quot; already means every event type/);
    expect(await endpoint()).toMatchObject({ enabled_events: ["payment.confirmed"] });

    expect((await session.post(`/dashboard/webhooks/${id}/test`)).headers.location).toBe(`/dashboard/webhooks/${id}?notice=test_sent`);
    const tests = await t.db.pool.query("select d.status from webhook_deliveries d join events e on e.id = d.event_id where d.endpoint_id = $1 and e.type = 'webhook.test'", [id]);
    expect(tests.rows).toEqual([{ status: "pending" }]);

    expect((await session.post(`/dashboard/webhooks/${id}/disable`)).headers.location).toBe(`/dashboard/webhooks/${id}?notice=disabled`);
    expect(await endpoint()).toMatchObject({ disabled: true, disabled_reason: "Disabled by the merchant." });
    expect((await t.db.pool.query("select status from webhook_deliveries where endpoint_id = $1", [id])).rows).toEqual([{ status: "endpoint_disabled" }]);
    const page = await session.get(`/dashboard/webhooks/${id}?notice=disabled`);
    expect(page.body).toContain("Disabled by the merchant.");
    expect(page.body).not.toContain("Send test event");
    const test = await session.post(`/dashboard/webhooks/${id}/test`);
    expect(test.statusCode).toBe(409);
    expect(formErrorOf(test.body)).toBe("This endpoint is disabled; enable it first.");

    expect((await session.post(`/dashboard/webhooks/${id}/enable`)).statusCode).toBe(303);
    expect(await endpoint()).toMatchObject({ disabled: false, disabled_reason: null });

    const backwards = await session.post(`/dashboard/webhooks/${id}/recover`, { since: "2026-08-01T07:00", until: "2026-08-01T06:00" });
    expect(backwards.statusCode).toBe(400);
    expect(backwards.body).toMatch(/id="f-since-error">since must be before until/);
    expect(backwards.body).toContain('value="2026-08-01T06:00"');
    expect((await session.post(`/dashboard/webhooks/${id}/recover`, { since: "2026-08-01T07:00" })).headers.location).toBe(`/dashboard/webhooks/${id}?notice=recovery`);
    const { rows } = await t.db.pool.query("select since, until from webhook_recoveries where endpoint_id = $1", [id]);
    expect(rows).toEqual([{ since: new Date("2026-08-01T07:00:00Z"), until: clock.now() }]);
  });
});

describe("API keys", () => {
  const status = (key: string) => t.app.inject({ method: "GET", url: "/v1/merchant", headers: { authorization: `Bearer ${key}` } }).then((r) => r.statusCode);

  it("are created with their secret shown once, in the answer to the form, and once however often it is sent", async () => {
    const { session, merchant } = await shop();
    const page = await session.get("/dashboard/keys");
    const fields = { form_id: hiddenField(page.body, "form_id")!, expires_in_days: "30" };
    const res = await session.post("/dashboard/keys", fields);
    expect(res.statusCode).toBe(201);
    const secret = readonlyValue(res.body, "new-key")!;
    expect(secret).toMatch(/^sk_\w{40}$/);
    expect(await status(secret)).toBe(200);
    expect((await session.get("/dashboard/keys")).body).not.toContain(secret);

    const again = await session.post("/dashboard/keys", fields);
    expect(again.statusCode).toBe(200);
    expect(again.body).toContain("This form was sent before");
    expect(again.body).not.toMatch(/sk_\w{40}/);
    const { rows } = await t.db.pool.query("select expires_at from api_keys where merchant_id = $1 and expires_at is not null", [merchant.id]);
    expect(rows).toEqual([{ expires_at: new Date(clock.now().getTime() + 30 * 86_400_000) }]);
    expect(JSON.stringify((await t.db.pool.query("select * from idempotency_keys")).rows)).not.toContain(secret);
  });

  it("are rotated with a grace period and revoked; another merchant's key is not there", async () => {
    const { session, apiKey, merchant } = await shop();
    const other = await shop();
    const [{ id: keyId }] = (await t.db.pool.query("select id from api_keys where merchant_id = $1", [merchant.id])).rows;
    const [{ id: theirs }] = (await t.db.pool.query("select id from api_keys where merchant_id = $1", [other.merchant.id])).rows;

    const rotated = await session.post(`/dashboard/keys/${keyId}/rotate`, { grace_hours: "1" });
    expect(rotated.statusCode).toBe(201);
    const replacement = readonlyValue(rotated.body, "new-key")!;
    expect(await status(replacement)).toBe(200);
    expect(await status(apiKey)).toBe(200);
    clock.advance(3_600_000);
    expect(await status(apiKey)).toBe(401);

    const [{ id: newId }] = (await t.db.pool.query("select id from api_keys where merchant_id = $1 and id <> $2", [merchant.id, keyId])).rows;
    expect((await session.post(`/dashboard/keys/${newId}/revoke`)).headers.location).toBe("/dashboard/keys?notice=revoked");
    expect(await status(replacement)).toBe(401);

    for (const action of ["revoke", "rotate"]) {
      const refused = await session.post(`/dashboard/keys/${theirs}/${action}`);
      expect(refused.statusCode, action).toBe(404);
    }
    expect(await status(other.apiKey)).toBe(200);
    expect((await t.db.pool.query("select count(*)::int as n from api_keys where merchant_id = $1", [other.merchant.id])).rows[0].n).toBe(1);
  });
});

describe("settings", () => {
  it("save the profile and SEP-1 organisation, shown in the stellar.toml preview; a bad field is explained and kept", async () => {
    const { session, merchant } = await shop();
    const saved = await session.post("/dashboard/settings/profile", { name: "Acme Ltd", email: "billing@acme.test", "org.url": "https://acme.test", "org.support_email": "help@acme.test" });
    expect(saved.headers.location).toBe("/dashboard/settings?notice=saved");
    const page = await session.get("/dashboard/settings");
    expect(page.body).toMatch(/<pre>[\s\S]*ORG_NAME = &quot;Acme Ltd&quot;[\s\S]*ORG_URL = &quot;https:\/\/acme.test&quot;[\s\S]*<\/pre>/);
    expect(page.body).toContain(`ACCOUNTS = [ &quot;${merchant.accounts[0]}&quot; ]`);

    const bad = await session.post("/dashboard/settings/profile", { name: "Acme Ltd", email: "billing@acme.test", "org.url": "ftp://acme.test" });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="f-org-url-error">org\.url must be an http\(s\) URL/);
    expect(bad.body).toContain('value="ftp://acme.test"');
    const { rows } = await t.db.pool.query("select org from merchants where id = $1", [merchant.id]);
    expect(rows[0].org).toEqual({ url: "https://acme.test", support_email: "help@acme.test" });
  });

  it("set a home domain pending with its TXT record, and verify it through DNS", async () => {
    const { session, merchant } = await shop();
    expect((await session.post("/dashboard/settings/home_domain", { home_domain: "Pay.Acme-Dash.test" })).statusCode).toBe(303);
    const page = await session.get("/dashboard/settings");
    const token = /<code>lumenpay-verification=([0-9a-f]{32})<\/code>/.exec(page.body)?.[1];
    expect(token).toBeDefined();
    expect(page.body).toContain("<strong>Pending:</strong>");
    const missing = await session.post("/dashboard/settings/home_domain/verify");
    expect(missing.statusCode).toBe(422);
    expect(formErrorOf(missing.body)).toMatch(/^No TXT record &quot;lumenpay-verification=/);

    dns.setTxt("pay.acme-dash.test", [`lumenpay-verification=${token}`]);
    expect((await session.post("/dashboard/settings/home_domain/verify")).headers.location).toBe("/dashboard/settings?notice=verified");
    const { rows } = await t.db.pool.query("select home_domain, home_domain_verified_at from merchants where id = $1", [merchant.id]);
    expect(rows[0]).toEqual({ home_domain: "pay.acme-dash.test", home_domain_verified_at: clock.now() });
  });

  it("replace accepted assets, naming a bad line", async () => {
    const { session, merchant } = await shop();
    const issuer = randomAccount();
    expect((await session.post("/dashboard/settings/assets", { accepted_assets: `XLM\nUSDC:${issuer}\n` })).statusCode).toBe(303);
    const bad = await session.post("/dashboard/settings/assets", { accepted_assets: "XLM\nUSDC" });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="f-accepted_assets-error">Line 2, &quot;USDC&quot;, is not XLM or CODE:ISSUER/);
    const { rows } = await t.db.pool.query("select accepted_assets from merchants where id = $1", [merchant.id]);
    expect(rows[0].accepted_assets).toEqual([{ code: "XLM", issuer: null }, { code: "USDC", issuer }]);
  });

  it("refuse another merchant's account (409) and an account with open payments to remove, as form errors; nothing is half-written", async () => {
    const { session, merchant, auth } = await shop();
    const other = await shop();
    const theirs = other.merchant.accounts[0]!;
    const mine = merchant.accounts[0]!;
    const taken = await session.post("/dashboard/settings/accounts", { accounts: `${mine}\n${randomAccount()}\n${theirs}` });
    expect(taken.statusCode).toBe(409);
    expect(taken.body).toMatch(/id="f-accounts-error">G\w+ is attached to another merchant/);
    expect(taken.body).toContain(theirs);
    const accounts = async () => (await t.db.pool.query("select account from merchant_accounts where merchant_id = $1", [merchant.id])).rows.map((r) => r.account);
    expect(await accounts()).toEqual([mine]);

    await t.app.inject({ method: "POST", url: "/v1/payments", headers: auth, payload: { amount: "1", asset: "XLM" } });
    const busy = await session.post("/dashboard/settings/accounts", { accounts: randomAccount() });
    expect(busy.statusCode).toBe(409);
    expect(formErrorOf(busy.body)).toContain("still has pending or partially paid payments");
    expect(await accounts()).toEqual([mine]);
  });

  it("require proof for a new account when the operator does, and attach it with a signed challenge", async () => {
    const strict = await buildTestApp({ clock, env: { REQUIRE_ACCOUNT_PROOF: "true" } });
    try {
      const { session, merchant } = await shop(strict);
      const account = Keypair.random();
      const refused = await session.post("/dashboard/settings/accounts", { accounts: `${merchant.accounts[0]}\n${account.publicKey()}` });
      expect(refused.statusCode).toBe(403);
      expect(refused.body).toMatch(/id="f-accounts-error">Prove control of G\w+ first/);

      const challenge = await session.post("/dashboard/settings/accounts/challenge", { account: account.publicKey() });
      expect(challenge.statusCode).toBe(200);
      const xdr = readonlyValue(challenge.body, "challenge")!;
      const tx = new Transaction(xdr, strict.config.stellar.networkPassphrase);
      tx.sign(account);
      const attached = await session.post("/dashboard/settings/accounts/prove", { transaction: tx.toEnvelope().toXDR("base64") });
      expect(attached.headers.location).toBe("/dashboard/settings?notice=attached");
      const { rows } = await strict.db.pool.query("select account, verified_at from merchant_accounts where merchant_id = $1 order by position", [merchant.id]);
      expect(rows.map((r) => r.account)).toEqual([merchant.accounts[0], account.publicKey()]);
      expect(rows[1].verified_at).toEqual(clock.now());
    } finally {
      await strict.close();
    }
  });
});
