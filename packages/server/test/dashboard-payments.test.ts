import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, randomAccount, seedMerchant, TestClock, type TestApp } from "./support/app.js";
import { DashboardSession, dashboardUser, hiddenField, type Fields } from "./support/dashboard.js";

const clock = new TestClock(new Date("2026-07-15T12:00:00Z"));
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

/** A merchant, its API key headers and a signed-in owner. */
async function shop() {
  const m = await seedMerchant(t);
  const user = await dashboardUser(t.db.pool, m.merchant.id, "owner");
  return { ...m, session: await DashboardSession.signIn(t.app, user.email) };
}

/** Creates a payment through the API, a moment after the previous one (lists are ordered by creation). */
async function apiPayment(auth: Record<string, string>, body: Record<string, unknown>) {
  clock.advance(10);
  const res = await t.app.inject({ method: "POST", url: "/v1/payments", headers: auth, payload: { amount: "10", asset: "XLM", ...body } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: string; memo: string; payment_url: string; sep7_uri: string };
}

/** The payment ids a list page links to, in order. */
const listed = (body: string) => [...body.matchAll(/<a href="\/dashboard\/payments\/(pay_\w+)">/g)].map((m) => m[1]);

const paymentsCreatedMetric = async () => {
  const text = (await t.app.inject({ method: "GET", url: "/metrics" })).body;
  return Number(/^payments_created_total\{asset="XLM"\} (\d+)$/m.exec(text)?.[1] ?? 0);
};

describe("the payments list", () => {
  it("finds a payment by id, by memo or by a metadata value, exactly, and filters by status", async () => {
    const { auth, session } = await shop();
    const a = await apiPayment(auth, { memo_type: "text", memo: "order-77", metadata: { order: "A-1" } });
    const b = await apiPayment(auth, { metadata: { order: "B-2" } });
    await t.app.inject({ method: "POST", url: `/v1/payments/${b.id}/cancel`, headers: auth });
    clock.advance(1000);

    expect(listed((await session.get("/dashboard/payments")).body)).toEqual([b.id, a.id]);
    expect(listed((await session.get("/dashboard/payments?q=order-77")).body)).toEqual([a.id]);
    expect(listed((await session.get("/dashboard/payments?q=A-1")).body)).toEqual([a.id]);
    expect(listed((await session.get(`/dashboard/payments?q=${b.id}`)).body)).toEqual([b.id]);
    expect(listed((await session.get("/dashboard/payments?q=order")).body)).toEqual([]);
    expect(listed((await session.get("/dashboard/payments?status=canceled")).body)).toEqual([b.id]);
    expect(listed((await session.get("/dashboard/payments?status=pending&q=B-2")).body)).toEqual([]);
    expect((await session.get("/dashboard/payments?status=paid")).statusCode).toBe(400);
  });

  it("pages newest first, keeping the filters", async () => {
    const { auth, session } = await shop();
    const ids: string[] = [];
    for (let i = 0; i < 27; i++) ids.push((await apiPayment(auth, { metadata: { batch: "p" } })).id);
    const first = await session.get("/dashboard/payments?q=p");
    expect(listed(first.body)).toEqual(ids.slice(2).reverse());
    const older = /href="(\/dashboard\/payments\?q=p&amp;cursor=[^"]+)">Older payments/.exec(first.body)?.[1]?.replaceAll("&amp;", "&");
    expect(older).toBeDefined();
    const second = await session.get(older!);
    expect(listed(second.body)).toEqual(ids.slice(0, 2).reverse());
    expect(second.body).not.toContain("Older payments");
    expect((await session.get("/dashboard/payments?cursor=forged")).statusCode).toBe(400);
  });

  it("escapes what merchants and customers wrote", async () => {
    const { auth, session } = await shop();
    const p = await apiPayment(auth, { description: '<script>alert("x")</script>', metadata: { note: "<img src=x onerror=alert(1)>" } });
    for (const url of ["/dashboard/payments", `/dashboard/payments/${p.id}`]) {
      const body = (await session.get(url)).body;
      expect(body).not.toContain("<script>alert");
      expect(body).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
      expect(body).not.toContain("<img src=x");
    }
  });
});

describe("a new payment link", () => {
  it("is created from the form, once however often the form is sent, and shows its link and QR code", async () => {
    const { merchant, session } = await shop();
    const page = await session.get("/dashboard/payments/new");
    expect(page.body).toContain('<option value="XLM"');
    const fields = { form_id: hiddenField(page.body, "form_id")!, amount: "12.50", asset: "XLM", description: "Invoice 9", expires_in_minutes: "90" };
    const metricBefore = await paymentsCreatedMetric();

    const res = await session.post("/dashboard/payments", fields);
    expect(res.statusCode, res.body).toBe(303);
    const id = /^\/dashboard\/payments\/(pay_\w{22})\?notice=created$/.exec(res.headers.location as string)?.[1];
    expect(id).toBeDefined();
    const again = await session.post("/dashboard/payments", fields);
    expect(again.headers.location).toBe(res.headers.location);
    const { rows } = await t.db.pool.query("select id, amount_stroops, description, expires_at, created_at from payments where merchant_id = $1", [merchant.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id, amount_stroops: "125000000", description: "Invoice 9" });
    expect(rows[0].expires_at.getTime() - rows[0].created_at.getTime()).toBe(90 * 60_000);
    expect(await paymentsCreatedMetric()).toBe(metricBefore + 1);

    const detail = await session.get(res.headers.location as string);
    expect(detail.statusCode).toBe(200);
    expect(detail.body).toContain("Created.");
    expect(detail.body).toContain(`value="${t.config.publicBaseUrl}/pay/${id}"`);
    expect(detail.body).toMatch(/<svg [^>]*role="img" aria-label="QR code of the payment link"/);
    expect(detail.body).toMatch(/href="web\+stellar:pay\?/);
  });

  it("shows a service's error next to the field, keeps what was typed, and writes nothing", async () => {
    const { merchant, session } = await shop();
    const cases: Array<{ fields: Fields; field: string; message: string }> = [
      { fields: { amount: "12,50" }, field: "amount", message: "Amount must be a decimal string" },
      { fields: { amount: "0.00000001" }, field: "amount", message: "at most 7 decimals" },
      { fields: { asset: `USDC:${randomAccount()}` }, field: "asset", message: "is not among your accepted_assets" },
      { fields: { expires_in_minutes: "0" }, field: "expires_in_minutes", message: "Enter a whole number from 1 to 10080" },
    ];
    for (const c of cases) {
      const res = await session.submit("/dashboard/payments/new", "/dashboard/payments", { amount: "3", asset: "XLM", description: "kept <b>", ...c.fields });
      expect(res.statusCode, c.field).toBe(400);
      expect(res.body).toContain(c.message);
      expect(res.body).toMatch(new RegExp(`id="f-${c.field}-error">[^<]*${c.message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      expect(res.body).toMatch(new RegExp(`id="f-${c.field}"[^>]*aria-invalid="true"`));
      expect(res.body).toContain("kept &lt;b&gt;</textarea>");
    }
    expect(await session.get("/dashboard/payments/new").then((r) => r.statusCode)).toBe(200);
    const typed = await session.submit("/dashboard/payments/new", "/dashboard/payments", { amount: "12,50", asset: "XLM" });
    expect(typed.body).toMatch(/id="f-amount" name="amount" type="text" value="12,50"/);
    expect((await t.db.pool.query("select 1 from payments where merchant_id = $1", [merchant.id])).rowCount).toBe(0);
  });
});

describe("a payment's page", () => {
  async function withDelivery() {
    const s = await shop();
    const endpoint = await t.app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: s.auth, payload: { url: "https://example.com/hooks", enabled_events: ["*"] } });
    const p = await apiPayment(s.auth, { memo_type: "text", memo: "order-5" });
    const { rows } = await t.db.pool.query<{ id: string }>("select id from webhook_deliveries where merchant_id = $1", [s.merchant.id]);
    const deliveryId = rows[0]!.id;
    // One failed attempt, as a worker records it.
    await t.db.pool.query("update webhook_deliveries set status = 'failed', attempts = 1, last_status = 500, completed_at = $2 where id = $1", [deliveryId, clock.now()]);
    await t.db.pool.query(
      "insert into webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error_class, response_body) values ($1, 1, $2, 42, 500, 'http_status', $3)",
      [deliveryId, clock.now(), "boom <b>bold</b>"],
    );
    return { ...s, payment: p, deliveryId, endpointId: endpoint.json().id as string };
  }

  it("shows the timeline, the settlements and every delivery with its attempts", async () => {
    const { session, payment, deliveryId } = await withDelivery();
    const body = (await session.get(`/dashboard/payments/${payment.id}`)).body;
    expect(body).toMatch(/<caption id="t-events">Events, in order<\/caption>[\s\S]*<code>payment\.created<\/code>/);
    expect(body).toContain("No operation has paid this payment yet.");
    expect(body).toContain(`<code>${deliveryId}</code>`);
    expect(body).toMatch(/<code>payment\.created<\/code> to <code>https:\/\/example\.com\/hooks<\/code>/);
    expect(body).toMatch(/<td class="num">1<\/td><td><time[^>]*>[^<]*<\/time><\/td><td><span class="badge bad">500<\/span><\/td><td class="num">42 ms<\/td><td><code>boom &lt;b&gt;bold&lt;\/b&gt;<\/code><\/td>/);
    expect(body).toContain(`action="/dashboard/payments/${payment.id}/deliveries/${deliveryId}/retry"`);
  });

  it("resends a delivery as POST /v1/deliveries/:id/retry does, and shows why when it cannot", async () => {
    const { session, payment, deliveryId, endpointId, auth } = await withDelivery();
    const res = await session.post(`/dashboard/payments/${payment.id}/deliveries/${deliveryId}/retry`);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/dashboard/payments/${payment.id}?notice=resent#h-${deliveryId}`);
    const { rows } = await t.db.pool.query("select status, attempts, next_attempt_at, completed_at from webhook_deliveries where id = $1", [deliveryId]);
    expect(rows[0]).toMatchObject({ status: "pending", attempts: 1, next_attempt_at: clock.now(), completed_at: null });

    await t.app.inject({ method: "PATCH", url: `/v1/webhook_endpoints/${endpointId}`, headers: auth, payload: { disabled: true } });
    const refused = await session.post(`/dashboard/payments/${payment.id}/deliveries/${deliveryId}/retry`);
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toMatch(/<div class="form-error" role="alert"><p><strong>Not saved:<\/strong> This endpoint is disabled[^<]*<\/p><\/div><div class="actions"><form class="inline" method="post" action="\/dashboard\/payments\/[^"]+\/deliveries\/del_/);
  });

  it("cancels a pending payment, and says why it cannot cancel another", async () => {
    const { session, auth } = await shop();
    const p = await apiPayment(auth, {});
    const res = await session.post(`/dashboard/payments/${p.id}/cancel`);
    expect(res.headers.location).toBe(`/dashboard/payments/${p.id}?notice=canceled`);
    const api = await t.app.inject({ method: "GET", url: `/v1/payments/${p.id}`, headers: auth });
    expect(api.json()).toMatchObject({ status: "canceled", canceled_at: clock.now().toISOString() });
    const again = await session.post(`/dashboard/payments/${p.id}/cancel`);
    expect(again.statusCode).toBe(409);
    expect(again.body).toContain("Only pending payments can be canceled; this one is canceled.");
  });

  it("answers 404 for another merchant's payment, and for an id of another shape", async () => {
    const { session } = await shop();
    const other = await shop();
    const theirs = await apiPayment(other.auth, {});
    expect((await session.get(`/dashboard/payments/${theirs.id}`)).statusCode).toBe(404);
    expect((await session.post(`/dashboard/payments/${theirs.id}/cancel`)).statusCode).toBe(404);
    expect((await session.get("/dashboard/payments/pay_x")).statusCode).toBe(404);
    expect((await session.get("/dashboard/nothing-here")).statusCode).toBe(404);
  });
});

describe("the overview", () => {
  it("counts payments by status today and over 30 days, sums what arrived on time per asset, and shows webhook health", async () => {
    const { auth, session } = await shop();
    const [paid, open] = [await apiPayment(auth, { amount: "12.5" }), await apiPayment(auth, {})];
    await apiPayment(auth, {}).then((p) => t.app.inject({ method: "POST", url: `/v1/payments/${p.id}/cancel`, headers: auth }));
    await t.db.pool.query("update payments set status = 'confirmed', amount_received_stroops = 125000000 where id = $1", [paid.id]);
    await t.db.pool.query(
      `insert into payment_settlements (operation_id, payment_id, transaction_hash, ledger, closed_at, amount_stroops, from_account, late, created_at)
       values ($1, $2, 'ab', 7, $3, 125000000, $4, false, $3), ($5, $6, 'cd', 8, $3, 10000000, $4, true, $3)`,
      [String(Date.now()), paid.id, clock.now(), randomAccount(), String(Date.now() + 1), open.id],
    );
    // An older payment, 10 days ago: in the 30 days, not today.
    await t.db.pool.query("update payments set created_at = created_at - interval '10 days' where id = $1", [open.id]);

    const body = (await session.get("/dashboard")).body;
    const row = (status: string) => new RegExp(`status=${status}"><span class="badge ${status}">[^<]*</span></a></th><td class="num">(\\d+)</td><td class="num">(\\d+)</td>`).exec(body)?.slice(1, 3);
    expect(row("confirmed")).toEqual(["1", "1"]);
    expect(row("pending")).toEqual(["0", "1"]);
    expect(row("canceled")).toEqual(["1", "1"]);
    expect(body).toMatch(/<th scope="row">XLM<\/th><td class="num">12\.5<\/td><td class="num">12\.5<\/td>/);
    expect(body).toMatch(/<svg [^>]*role="img" aria-label="Payments created per day/);
    expect(body).toMatch(/Webhooks, last 24 h<\/h2><p class="big">—<\/p>/);
  });
});

describe("unmatched payments", () => {
  it("lists what is known of each, with the payment it named", async () => {
    const { auth, session, merchant } = await shop();
    const p = await apiPayment(auth, {});
    const from = randomAccount();
    await t.db.pool.query(
      `insert into unmatched_payments (id, merchant_id, operation_id, transaction_hash, ledger, closed_at, account, memo_type, memo, asset_code,
         asset_issuer, amount_stroops, from_account, reason, payment_id, created_at)
       values ('unm_0123456789012345678901', $1, 99, 'feed', 12, $2, $3, 'id', $4, 'XLM', null, 50000000, $5, 'wrong_asset', $6, $2)`,
      [merchant.id, clock.now(), merchant.accounts[0], p.memo, from, p.id],
    );
    const body = (await session.get("/dashboard/unmatched")).body;
    expect(body).toContain("The asset is not the payment&#39;s");
    expect(body).toContain(`<td class="num">5 XLM</td><td><code>${from}</code></td><td><code>${p.memo}</code> <span class="muted">(id)</span></td>`);
    expect(body).toContain(`<a href="/dashboard/payments/${p.id}">`);
    expect(await session.get("/dashboard/unmatched?reason=no_memo").then((r) => r.body)).toContain("Nothing unmatched");
  });
});

describe("every page", () => {
  it("is sent with a strict nonce policy that its own style and script carry, and no inline handlers", async () => {
    const { session, auth } = await shop();
    const p = await apiPayment(auth, {});
    for (const url of ["/dashboard", "/dashboard/payments", "/dashboard/payments/new", `/dashboard/payments/${p.id}`, "/dashboard/unmatched", "/dashboard/webhooks", "/dashboard/keys", "/dashboard/settings", "/dashboard/login"]) {
      const res = await (url === "/dashboard/login" ? t.app.inject({ method: "GET", url }) : session.get(url));
      const policy = res.headers["content-security-policy"] as string;
      expect(policy, url).not.toContain("unsafe-inline");
      const nonce = /script-src 'nonce-([^']+)'/.exec(policy)?.[1];
      expect(res.body.match(/<(style|script)[^>]*>/g), url).toEqual([`<style nonce="${nonce}">`, `<script nonce="${nonce}">`]);
      expect(res.body, url).not.toMatch(/\son[a-z]+=|style="/);
      expect(res.headers["cache-control"]).toBe("no-store");
    }
  });
});
