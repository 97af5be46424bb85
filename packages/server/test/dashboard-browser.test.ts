import { Horizon, Memo, type Keypair } from "@stellar/stellar-sdk";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transaction } from "../src/db/pool.js";
import { createLogger } from "../src/logger.js";
import { createMetrics } from "../src/metrics/registry.js";
import { applyPaymentRecord } from "../src/payments/settlement.js";
import type { HorizonPaymentRecord } from "../src/stellar/incoming.js";
import { startLocalHorizon, type LocalHorizon } from "../src/stellar/local-horizon/index.js";
import { createWebhookMetrics } from "../src/webhooks/metrics.js";
import { startWebhookRuntime } from "../src/webhooks/runtime.js";
import { buildTestApp, seedMerchant, type TestApp } from "./support/app.js";
import { accessibilityProblems, decodeQr, launchBrowser, screenshot, VIEWPORTS } from "./support/browser.js";
import { dashboardUser, PASSWORD } from "./support/dashboard.js";
import { startReceiver } from "./support/receiver.js";

/**
 * The dashboard in a real Chromium, against a real app listening on 127.0.0.1 with real PostgreSQL, a local
 * Stellar network, the webhook delivery workers and a local webhook receiver.
 */

const MEMO = "order-4242";

let t: TestApp;
let horizon: LocalHorizon;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let browser: Browser;
let base: string;
let stopRuntime: () => Promise<void>;
let shop: { merchantId: string; account: string; auth: Record<string, string>; endpointId: string; owner: string; viewer: string; confirmedId: string };

/** Pays `to` on the local network and applies the record as ingestion would. */
async function payAndApply(payer: Keypair, to: string, amount: string, memo: string) {
  const { hash } = await horizon.pay({ from: payer, to, amount, memo: Memo.text(memo) });
  const server = new Horizon.Server(horizon.url, { allowHttp: true });
  const page = await server.payments().forAccount(to).join("transactions").order("desc").limit(50).call();
  const record = page.records.find((r) => r.transaction_hash === hash) as unknown as HorizonPaymentRecord;
  const links = { publicBaseUrl: t.config.publicBaseUrl, networkPassphrase: horizon.networkPassphrase };
  return transaction(t.db.pool, (tx) => applyPaymentRecord(tx, record, { now: new Date(), networkPassphrase: horizon.networkPassphrase, links, account: to }));
}

beforeAll(async () => {
  [horizon, receiver, browser] = await Promise.all([startLocalHorizon(), startReceiver(), launchBrowser()]);
  t = await buildTestApp({
    env: {
      STELLAR_NETWORK: "custom",
      STELLAR_NETWORK_PASSPHRASE: horizon.networkPassphrase,
      HORIZON_URL: horizon.url,
      WEBHOOK_ALLOW_HTTP: "true",
      WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
    },
  });
  base = await t.app.listen({ host: "127.0.0.1", port: 0 });

  const controller = new AbortController();
  const runtime = startWebhookRuntime({
    config: t.config,
    pool: t.db.pool,
    connectionString: t.db.url,
    clock: t.clock,
    log: createLogger("silent"),
    metrics: createWebhookMetrics(createMetrics(t.db.pool).registry, t.db.pool),
    signal: controller.signal,
    pollIntervalMs: 200,
    maintenanceIntervalMs: 200,
  });
  stopRuntime = async () => {
    controller.abort();
    await runtime.done;
  };

  const [account, payer] = await Promise.all([horizon.newAccount("1"), horizon.newAccount("1000")]);
  const m = await seedMerchant(t, { name: "Teapot & Co", accounts: [account.publicKey()] });
  const endpoint = await t.app.inject({ method: "POST", url: "/v1/webhook_endpoints", headers: m.auth, payload: { url: receiver.url, enabled_events: ["*"] } });
  const payment = await t.app.inject({
    method: "POST",
    url: "/v1/payments",
    headers: m.auth,
    payload: { amount: "25", asset: "XLM", memo_type: "text", memo: MEMO, description: "Blue teapot", metadata: { order: "4242" } },
  });
  for (let i = 0; i < 3; i++) {
    await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: `${10 + i}.5`, asset: "XLM", description: `Order ${i + 1}` } });
  }
  expect(await payAndApply(payer, account.publicKey(), "25", MEMO)).toMatchObject({ status: "confirmed" });
  expect(await payAndApply(payer, account.publicKey(), "3", "no-such-order")).toMatchObject({ kind: "unmatched" });
  const [owner, viewer] = [await dashboardUser(t.db.pool, m.merchant.id, "owner"), await dashboardUser(t.db.pool, m.merchant.id, "viewer")];
  const confirmed = await t.db.pool.query<{ id: string }>("select id from events where payment_id = $1 and type = 'payment.confirmed'", [payment.json().id]);
  shop = {
    merchantId: m.merchant.id,
    account: account.publicKey(),
    auth: m.auth,
    endpointId: endpoint.json().id,
    owner: owner.email,
    viewer: viewer.email,
    confirmedId: confirmed.rows[0]!.id,
  };
  // payment.created ×4, payment.confirmed, payment.unmatched_received: each reaches the receiver once.
  await receiver.waitFor(6);
});

afterAll(async () => {
  await browser?.close();
  await stopRuntime?.();
  await receiver?.close();
  await t?.close();
  await horizon?.close();
});

const sentToReceiver = (eventId: string) => receiver.received.filter((r) => r.headers["webhook-id"] === eventId).length;

async function signIn(context: BrowserContext, email: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/dashboard`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/dashboard`);
  return page;
}

/** Every POST form on the page: its action and the values it would send. */
async function postForms(page: Page): Promise<Array<{ action: string; fields: Record<string, string> }>> {
  const forms = page.locator('form[method="post"]');
  const found = [];
  for (let i = 0; i < (await forms.count()); i++) {
    const form = forms.nth(i);
    const fields: Record<string, string> = {};
    const controls = form.locator("input[name], textarea[name], select[name]");
    for (let j = 0; j < (await controls.count()); j++) {
      const control = controls.nth(j);
      if ((await control.getAttribute("type")) === "checkbox" && !(await control.isChecked())) continue;
      fields[(await control.getAttribute("name"))!] = await control.inputValue();
    }
    found.push({ action: (await form.getAttribute("action"))!, fields });
  }
  return found;
}

describe("the dashboard in a browser", { timeout: 60_000 }, () => {
  let owner: BrowserContext;
  let page: Page;
  /** What the browser reported blocking by the pages' Content-Security-Policy: nothing, as our own style and script carry the nonce. */
  const blocked: string[] = [];
  /** Pages the owner visited, for the screenshots and the viewer's turn. */
  const visited: Array<{ name: string; url: string }> = [];
  const visit = async (name: string) => visited.push({ name, url: page.url() });

  beforeAll(async () => {
    owner = await browser.newContext({ viewport: VIEWPORTS.desktop });
    page = await signIn(owner, shop.owner);
    page.on("console", (message) => {
      if (message.type() === "error" && message.text().includes("Content Security Policy")) blocked.push(message.text());
    });
    await visit("overview");
  });
  afterAll(() => owner?.close());

  it("finds the confirmed payment by memo, and its Resend brings a new attempt to the receiver", async () => {
    await page.getByRole("link", { name: "Payments", exact: true }).click();
    await visit("payments");
    await page.getByLabel("Search").fill(MEMO);
    await page.getByRole("button", { name: "Filter" }).click();
    const rows = page.locator("#t-payments ~ tbody tr, table:has(#t-payments) tbody tr");
    await expect.poll(() => rows.count()).toBe(1);
    await rows.first().getByRole("link").click();
    await page.waitForURL(/\/dashboard\/payments\/pay_/);
    await visit("payment");

    const delivery = page.locator("article", { has: page.getByRole("heading", { name: /payment\.confirmed/ }) });
    await expect.poll(() => delivery.locator("tbody tr").count()).toBe(1);
    expect(await delivery.locator("tbody tr").first().innerText()).toContain("200");
    expect(sentToReceiver(shop.confirmedId)).toBe(1);

    await delivery.getByRole("button", { name: "Resend" }).click();
    await page.waitForURL(/notice=resent/);
    expect(await page.getByRole("status").innerText()).toContain("The delivery is queued again");
    await expect.poll(() => sentToReceiver(shop.confirmedId), { timeout: 15_000 }).toBe(2);
    await expect
      .poll(
        async () => {
          await page.reload();
          return delivery.locator("tbody tr").count();
        },
        { timeout: 15_000 },
      )
      .toBe(2);
  });

  it("creates a payment link from the form and shows its link and a QR code that reads as the link", async () => {
    await page.goto(`${base}/dashboard/payments/new`);
    await visit("new-payment");
    await page.getByLabel("Amount").fill("7.5");
    await page.getByLabel("Asset").selectOption("XLM");
    await page.getByLabel("Description (optional)").fill("Teapot lid");
    await page.getByLabel("Expires in (minutes)").fill("30");
    await page.getByRole("button", { name: "Create payment link" }).click();
    await page.waitForURL(/\/dashboard\/payments\/pay_\w+\?notice=created/);
    await visit("payment-link");
    const link = await page.getByLabel("Send this link to your customer").inputValue();
    const id = /\/pay\/(pay_\w{22})$/.exec(link)?.[1];
    expect(page.url()).toContain(id!);
    expect(decodeQr(await page.locator(".qr svg").screenshot())).toBe(link);
    // The copy button appears only when the page's script ran: the nonce let it.
    await expect.poll(() => page.getByRole("button", { name: "Copy" }).isVisible()).toBe(true);
    const api = await t.app.inject({ method: "GET", url: `/v1/payments/${id}`, headers: shop.auth });
    expect(api.json()).toMatchObject({ amount: "7.5", asset: "XLM", description: "Teapot lid", status: "pending", payment_url: link });
  });

  it("rotates an endpoint's secret, keeping the old one signing for the grace period", async () => {
    await page.getByRole("link", { name: "Webhooks" }).click();
    await visit("webhooks");
    await page.getByRole("link", { name: receiver.url }).click();
    await visit("endpoint");
    await page.getByRole("button", { name: "Reveal secret" }).click();
    const secretField = (name: string) => page.getByRole("textbox", { name, exact: true });
    const old = await secretField("Signing secret").inputValue();
    expect(old).toMatch(/^whsec_/);

    await page.goto(`${base}/dashboard/webhooks/${shop.endpointId}`);
    await page.getByLabel("Grace period (hours)").fill("2");
    await page.getByRole("button", { name: "Rotate secret" }).click();
    await page.waitForURL(/notice=rotated/);
    await page.getByRole("button", { name: "Reveal secret" }).click();
    const current = await secretField("Signing secret").inputValue();
    expect(current).toMatch(/^whsec_/);
    expect(current).not.toBe(old);
    expect(await secretField("Previous secret, still signing too").inputValue()).toBe(old);
    const api = await t.app.inject({ method: "GET", url: `/v1/webhook_endpoints/${shop.endpointId}/secret`, headers: shop.auth });
    expect(api.json()).toMatchObject({ secret: current, previous_secret: old });
  });

  it("has no serious or critical accessibility problem on the payments list (nor on the other pages)", async () => {
    // axe-core is injected as an inline script, which the pages' policy rightly refuses: this context alone ignores it.
    const audit = await browser.newContext({ viewport: VIEWPORTS.desktop, bypassCSP: true, storageState: await owner.storageState() });
    try {
      const auditPage = await audit.newPage();
      await auditPage.goto(`${base}/dashboard/payments`);
      expect(await accessibilityProblems(auditPage)).toEqual([]);
      for (const { name, url } of visited.filter((v) => v.name !== "payments")) {
        await auditPage.goto(url);
        expect(await accessibilityProblems(auditPage), name).toEqual([]);
      }
    } finally {
      await audit.close();
    }
  });

  it("shows every page at desktop width and at 360 px without the page scrolling sideways", async () => {
    for (const more of ["unmatched", "keys", "settings"]) visited.push({ name: more, url: `${base}/dashboard/${more}` });
    for (const [width, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      for (const { name, url } of visited) {
        await page.goto(url.replace(/notice=\w+/, ""));
        // What sticks out, to explain a failure: tables scroll inside their own region, nothing else should.
        const wide = await page.evaluate(`[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > ${viewport.width} && !e.closest(".scroll")).map((e) => e.tagName + "." + e.className).slice(0, 5)`);
        expect(await page.evaluate("document.documentElement.scrollWidth"), `${name} at ${width}: ${JSON.stringify(wide)}`).toBeLessThanOrEqual(viewport.width);
        await screenshot(page, `dashboard-${name}-${width}`);
      }
    }
    const login = await browser.newPage({ viewport: VIEWPORTS.phone });
    await login.goto(`${base}/dashboard/login`);
    await screenshot(login, "dashboard-login-phone");
    await login.close();
    expect(blocked).toEqual([]);
  });

  it("lets a viewer see every page and refuses every one of the owner's forms", async () => {
    const viewer = await browser.newContext({ viewport: VIEWPORTS.desktop });
    try {
      const viewerPage = await signIn(viewer, shop.viewer);
      const csrf = await viewerPage.locator('form[action="/dashboard/logout"] input[name="_csrf"]').inputValue();
      const actions = new Map<string, Record<string, string>>();
      await page.setViewportSize(VIEWPORTS.desktop);
      for (const { name, url } of visited) {
        await page.goto(url);
        for (const form of await postForms(page)) if (form.action !== "/dashboard/logout") actions.set(form.action, form.fields);
        await viewerPage.goto(url);
        expect(await viewerPage.getByText("You have view-only access").count(), name).toBe(1);
        expect((await postForms(viewerPage)).map((f) => f.action), name).toEqual(["/dashboard/logout"]);
      }
      expect([...actions.keys()]).toEqual(expect.arrayContaining(["/dashboard/payments", `/dashboard/webhooks/${shop.endpointId}/rotate`, "/dashboard/keys", "/dashboard/settings/profile"]));
      for (const [action, fields] of actions) {
        const res = await viewerPage.request.post(`${base}${action}`, { form: { ...fields, _csrf: csrf }, maxRedirects: 0 });
        expect(res.status(), action).toBe(403);
        expect(await res.text(), action).toContain("You have view-only access");
      }
    } finally {
      await viewer.close();
    }
  });
});
