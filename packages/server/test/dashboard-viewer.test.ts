import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { randomToken } from "../src/ids.js";
import { buildTestApp, randomAccount, seedMerchant, type TestApp } from "./support/app.js";
import { DashboardSession, dashboardUser, type Fields } from "./support/dashboard.js";
import { startTestDns, type TestDns } from "./support/dns.js";

/**
 * A viewer sees everything and changes nothing: every state-changing route of the dashboard, sent by a
 * viewer with a valid session and CSRF token, is refused with 403 and leaves the database as it was; the
 * same request from an owner is not refused, so the refusal is the role's and not a broken request.
 */

let t: TestApp;
let dns: TestDns;
let owner: DashboardSession;
let viewer: DashboardSession;
let ids: { payment: string; delivery: string; endpoint: string; key: string; account: string };

beforeAll(async () => {
  dns = await startTestDns();
  t = await buildTestApp({ env: { DNS_SERVERS: dns.address } });
  const m = await seedMerchant(t);
  const auth = m.auth;
  const endpoint = await t.app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: auth, payload: { url: "https://example.com/hooks", enabled_events: ["*"] } });
  const payment = await t.app.inject({ method: "POST", url: "/v1/payments", headers: auth, payload: { amount: "10", asset: "XLM" } });
  const delivery = await t.db.pool.query<{ id: string }>("select id from webhook_deliveries where merchant_id = $1", [m.merchant.id]);
  const key = await t.db.pool.query<{ id: string }>("select id from api_keys where merchant_id = $1", [m.merchant.id]);
  ids = { payment: payment.json().id, delivery: delivery.rows[0]!.id, endpoint: endpoint.json().id, key: key.rows[0]!.id, account: m.merchant.accounts[0]! };
  const [o, v] = [await dashboardUser(t.db.pool, m.merchant.id, "owner"), await dashboardUser(t.db.pool, m.merchant.id, "viewer")];
  [owner, viewer] = [await DashboardSession.signIn(t.app, o.email), await DashboardSession.signIn(t.app, v.email)];
});
afterAll(async () => {
  await t?.close();
  await dns?.close();
});

interface Action {
  /** The route, as Fastify lists it. */
  route: string;
  url: () => string;
  fields: () => Fields;
  /** What an owner gets for the same request. */
  ownerStatus: number;
}

const formId = () => randomToken(22);

/** In the order an owner can replay them (disable before enable, set a home domain before verifying it). */
const ACTIONS: Action[] = [
  { route: "/dashboard/payments", url: () => "/dashboard/payments", fields: () => ({ form_id: formId(), amount: "1", asset: "XLM" }), ownerStatus: 303 },
  { route: "/dashboard/payments/:id/cancel", url: () => `/dashboard/payments/${ids.payment}/cancel`, fields: () => ({}), ownerStatus: 303 },
  {
    route: "/dashboard/payments/:id/deliveries/:deliveryId/retry",
    url: () => `/dashboard/payments/${ids.payment}/deliveries/${ids.delivery}/retry`,
    fields: () => ({}),
    ownerStatus: 303,
  },
  { route: "/dashboard/webhooks", url: () => "/dashboard/webhooks", fields: () => ({ form_id: formId(), url: "https://example.org/h", enabled_events: "*" }), ownerStatus: 303 },
  { route: "/dashboard/webhooks/:id", url: () => `/dashboard/webhooks/${ids.endpoint}`, fields: () => ({ url: "https://example.com/hooks", enabled_events: ["payment.confirmed"] }), ownerStatus: 303 },
  { route: "/dashboard/webhooks/:id/secret", url: () => `/dashboard/webhooks/${ids.endpoint}/secret`, fields: () => ({}), ownerStatus: 200 },
  { route: "/dashboard/webhooks/:id/rotate", url: () => `/dashboard/webhooks/${ids.endpoint}/rotate`, fields: () => ({ grace_hours: "1" }), ownerStatus: 303 },
  { route: "/dashboard/webhooks/:id/test", url: () => `/dashboard/webhooks/${ids.endpoint}/test`, fields: () => ({}), ownerStatus: 303 },
  { route: "/dashboard/webhooks/:id/recover", url: () => `/dashboard/webhooks/${ids.endpoint}/recover`, fields: () => ({ since: "2025-01-01T00:00" }), ownerStatus: 303 },
  { route: "/dashboard/webhooks/:id/disable", url: () => `/dashboard/webhooks/${ids.endpoint}/disable`, fields: () => ({}), ownerStatus: 303 },
  { route: "/dashboard/webhooks/:id/enable", url: () => `/dashboard/webhooks/${ids.endpoint}/enable`, fields: () => ({}), ownerStatus: 303 },
  { route: "/dashboard/keys", url: () => "/dashboard/keys", fields: () => ({ form_id: formId() }), ownerStatus: 201 },
  { route: "/dashboard/keys/:id/rotate", url: () => `/dashboard/keys/${ids.key}/rotate`, fields: () => ({ grace_hours: "1" }), ownerStatus: 201 },
  { route: "/dashboard/keys/:id/revoke", url: () => `/dashboard/keys/${ids.key}/revoke`, fields: () => ({}), ownerStatus: 303 },
  { route: "/dashboard/settings/profile", url: () => "/dashboard/settings/profile", fields: () => ({ name: "Renamed", email: "new@shop.test" }), ownerStatus: 303 },
  { route: "/dashboard/settings/home_domain", url: () => "/dashboard/settings/home_domain", fields: () => ({ home_domain: "pay.shop.test" }), ownerStatus: 303 },
  // The owner's check reaches DNS (the test server, which has no record): 422, not a refusal.
  { route: "/dashboard/settings/home_domain/verify", url: () => "/dashboard/settings/home_domain/verify", fields: () => ({}), ownerStatus: 422 },
  { route: "/dashboard/settings/assets", url: () => "/dashboard/settings/assets", fields: () => ({ accepted_assets: "XLM" }), ownerStatus: 303 },
  { route: "/dashboard/settings/accounts", url: () => "/dashboard/settings/accounts", fields: () => ({ accounts: `${ids.account}\n${randomAccount()}` }), ownerStatus: 303 },
  { route: "/dashboard/settings/accounts/challenge", url: () => "/dashboard/settings/accounts/challenge", fields: () => ({ account: randomAccount() }), ownerStatus: 200 },
  // Not a signed challenge: the owner is told so (400), the viewer is not even asked.
  { route: "/dashboard/settings/accounts/prove", url: () => "/dashboard/settings/accounts/prove", fields: () => ({ transaction: "AAAA" }), ownerStatus: 400 },
];

const TABLES = [
  "merchants", "merchant_accounts", "api_keys", "payments", "events", "webhook_endpoints", "webhook_deliveries",
  "webhook_recoveries", "account_challenges", "idempotency_keys", "dashboard_users",
];

/** Every row of every table a dashboard action can write, as text. */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of TABLES) {
    const { rows } = await t.db.pool.query(`select coalesce(string_agg(x::text, E'\\n' order by x::text), '') as rows from ${table} x`);
    out[table] = rows[0].rows;
  }
  return out;
}

/** POST routes of the dashboard, from Fastify's own route tree (a new one without a case here fails the test). */
function dashboardPostRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  const stack: Array<{ depth: number; path: string }> = [];
  for (const line of app.printRoutes({ method: "POST", commonPrefix: false }).split("\n")) {
    const match = /^([│ ]*)[├└]── (\S+) \(POST\)/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length;
    while (stack.length > 0 && stack.at(-1)!.depth >= depth) stack.pop();
    const path = (stack.at(-1)?.path ?? "") + match[2]!;
    stack.push({ depth, path });
    routes.push(path);
  }
  return routes.filter((r) => r.startsWith("/dashboard/"));
}

describe("a viewer", () => {
  it("has a test case for every state-changing dashboard route (only signing in and out are open to viewers)", () => {
    const covered = [...ACTIONS.map((a) => a.route), "/dashboard/login", "/dashboard/logout"].sort();
    expect(dashboardPostRoutes(t.app).sort()).toEqual(covered);
  });

  it.each(ACTIONS.map((a) => [a.route, a] as const))("is refused %s, and nothing changes", async (_route, action) => {
    const before = await snapshot();
    const res = await viewer.post(action.url(), action.fields());
    expect(res.statusCode, res.body).toBe(403);
    expect(res.body).toContain("You have view-only access");
    expect(await snapshot()).toEqual(before);
  });

  it("never gets a webhook secret or a new API key in a refusal", async () => {
    expect((await viewer.post(`/dashboard/webhooks/${ids.endpoint}/secret`)).body).not.toContain("whsec_");
    expect((await viewer.post("/dashboard/keys", { form_id: formId() })).body).not.toMatch(/sk_[0-9A-Za-z]{10,}/);
  });

  it("still sees every page, without the forms that change things, and may sign out", async () => {
    for (const url of ["/dashboard", "/dashboard/payments", `/dashboard/payments/${ids.payment}`, "/dashboard/unmatched", "/dashboard/webhooks", `/dashboard/webhooks/${ids.endpoint}`, "/dashboard/keys", "/dashboard/settings"]) {
      const res = await viewer.get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).toContain("You have view-only access");
      const posts = [...res.body.matchAll(/<form[^>]*method="post"[^>]*action="([^"]+)"/g)].map((m) => m[1]);
      expect(posts, url).toEqual(["/dashboard/logout"]);
    }
    expect(dns.queries).toEqual([]);
  });
});

describe("an owner", () => {
  it("sending the same requests is not refused", async () => {
    for (const action of ACTIONS) {
      const res = await owner.post(action.url(), action.fields());
      expect(res.statusCode, `${action.route}: ${res.body.slice(res.body.indexOf("<main"), res.body.indexOf("<main") + 600)}`).toBe(action.ownerStatus);
    }
    // The viewer's attempt at verifying asked DNS nothing; the owner's did.
    expect(dns.queries.length).toBeGreaterThan(0);
  });
});
