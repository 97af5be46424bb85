import { type Keypair, Memo } from "@stellar/stellar-sdk";
import type { Browser, BrowserContextOptions, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expireDuePayments } from "../src/payments/expiry.js";
import { applyPaymentRecord } from "../src/payments/settlement.js";
import { startLocalHorizon, type LocalHorizon } from "../src/stellar/local-horizon/index.js";
import { buildTestApp, seedMerchant, type TestApp } from "./support/app.js";
import { accessibilityProblemsUnderCsp, decodeQr, launchBrowser, screenshot, VIEWPORTS } from "./support/browser.js";
import { startIngestion } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";
import { runCli } from "./support/process.js";

/**
 * The checkout in Chromium against a real app on 127.0.0.1: real PostgreSQL, a local Stellar network,
 * real ingestion. Payments change state only because they are actually paid on that network.
 */

let horizon: LocalHorizon;
let t: TestApp;
let ingestion: ReturnType<typeof startIngestion>;
let browser: Browser;
let base: string;
let payer: Keypair;
/** A merchant whose account exists on the local network, with its SEP-1 name set. */
let m: Awaited<ReturnType<typeof seedMerchant>>;

beforeAll(async () => {
  horizon = await startLocalHorizon();
  t = await buildTestApp({ env: { STELLAR_NETWORK: "custom", STELLAR_NETWORK_PASSPHRASE: horizon.networkPassphrase, HORIZON_URL: horizon.url } });
  base = await t.app.listen({ port: 0, host: "127.0.0.1" });
  ingestion = startIngestion(t.db, { config: t.config, apply: applyPaymentRecord, horizonUrl: horizon.url, networkPassphrase: horizon.networkPassphrase, watchdogMs: 10_000 });
  const account = (await horizon.newAccount("1")).publicKey();
  [browser, payer, m] = await Promise.all([
    launchBrowser(),
    horizon.newAccount("1000"),
    seedMerchant(t, { name: "Luna LLC", accounts: [account], org: { name: "Café Luna" } }),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await ingestion?.stop();
  await t?.close();
  await horizon?.close();
});

type PaymentJson = { id: string; memo: string; destination: string; sep7_uri: string; expires_at: string; payment_url: string };
type Pages = Array<[keyof typeof VIEWPORTS, Page]>;

async function createPayment(body: Record<string, unknown>): Promise<PaymentJson> {
  const res = await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { asset: "XLM", ...body } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

/** The payment's page open in a context of its own at each width; the paths of the pages' requests go to `requests`. */
async function openAtBothWidths(p: PaymentJson, options: BrowserContextOptions = {}, { init, requests = [] }: { init?: () => void; requests?: string[] } = {}): Promise<Pages> {
  return Promise.all(
    (Object.keys(VIEWPORTS) as Array<keyof typeof VIEWPORTS>).map(async (name) => {
      const context = await browser.newContext({ ...options, viewport: VIEWPORTS[name] });
      if (init) await context.addInitScript(init);
      context.on("request", (request) => requests.push(new URL(request.url()).pathname));
      const page = await context.newPage();
      await page.goto(`${base}${new URL(p.payment_url).pathname}`);
      return [name, page] as [keyof typeof VIEWPORTS, Page];
    }),
  );
}

const closeAll = (pages: Pages) => Promise.all(pages.map(([, page]) => page.context().close()));
const stateOf = (page: Page) => page.getAttribute("main", "data-state");
const payOnChain = (p: PaymentJson, amount: string) => horizon.pay({ from: payer, to: p.destination, amount, memo: Memo.id(p.memo) });

/**
 * A screenshot of each page saved as `<name>-<width>`, and no serious accessibility problem at either
 * width (axe runs as a script: not on a page with JavaScript disabled).
 */
async function record(pages: Pages, name: string, { axe = true } = {}): Promise<Map<string, Buffer>> {
  const shots = await Promise.all(
    pages.map(async ([width, page]) => {
      const png = await screenshot(page, `${name}-${width}`);
      if (axe) expect(await accessibilityProblemsUnderCsp(page), `${name} at ${width}`).toEqual([]);
      return [width, png] as const;
    }),
  );
  return new Map(shots);
}

// A real CLI process and two browser widths per state: several seconds each on a loaded machine.
describe("the checkout in a browser", { timeout: 90_000 }, () => {
  it("goes from pending to partly paid to paid as the customer pays, without reloading, with a QR code for what is left", async () => {
    const p = await createPayment({ amount: "10", description: "Two coffees and a croissant" });
    const requests: string[] = [];
    const pages = await openAtBothWidths(p, {}, { requests });
    for (const [, page] of pages) {
      await page.evaluate(() => ((globalThis as Record<string, unknown>).sameDocument = true));
      expect(await page.textContent(".amount")).toBe("10 XLM");
      expect(await page.textContent("#details")).toContain(p.memo);
      expect(await page.getAttribute("svg[role=img]", "aria-label")).toBe("QR code to pay 10 XLM with a Stellar wallet");
      expect(await page.textContent("#countdown")).toMatch(/^(59:\d\d|1:00:00)$/);
      // With the script running, the page updates itself: no Refresh link.
      expect(await page.isVisible("#refresh")).toBe(false);
    }
    for (const [width, png] of await record(pages, "checkout-pending")) expect(decodeQr(png), width).toBe(p.sep7_uri);

    // A customer's wallet pays part of it: the CLI signs and submits a real transaction.
    const paid = await runCli(
      ["simulate", "pay", "--destination", p.destination, "--amount", "4", "--memo-type", "id", "--memo", p.memo, "--horizon-url", horizon.url],
      {},
    );
    expect(paid.code, paid.stderr).toBe(0);
    const remainderUri = p.sep7_uri.replace("amount=10&", "amount=6&");
    for (const [, page] of pages) {
      await page.waitForSelector('main[data-state="partially_paid"]');
      expect(await page.evaluate(() => (globalThis as Record<string, unknown>).sameDocument)).toBe(true);
      expect(await page.textContent("#status")).toBe("Partly paid: please send the remaining 6 XLM");
      expect(await page.getAttribute("a.button", "href")).toBe(remainderUri);
    }
    for (const [width, png] of await record(pages, "checkout-partially-paid")) expect(decodeQr(png), width).toBe(remainderUri);

    const { hash } = await payOnChain(p, "6");
    for (const [, page] of pages) {
      await page.waitForSelector('main[data-state="paid"]');
      expect(await page.evaluate(() => (globalThis as Record<string, unknown>).sameDocument)).toBe(true);
      expect(await page.textContent("#status")).toBe("Paid. Thank you!");
      expect(await page.textContent("#details")).toContain(hash);
    }
    await record(pages, "checkout-paid");
    // Live through the event stream: the polling fallback never ran.
    expect(requests.filter((path) => path.endsWith("/events")).length).toBeGreaterThan(0);
    expect(requests.filter((path) => path.endsWith("/status"))).toEqual([]);

    for (const [, page] of pages) {
      await Promise.all([page.waitForURL(/\/receipt\?lang=en$/), page.click("text=View receipt")]);
      expect(await page.textContent("main")).toContain(hash);
      expect(await page.textContent("main")).toContain("Two coffees and a croissant");
    }
    await record(pages, "checkout-receipt");
    await closeAll(pages);
  });

  it("shows Expired as soon as the payment expires", async () => {
    const p = await createPayment({ amount: "5", expires_in: 60 });
    const pages = await openAtBothWidths(p);
    // The expiry job, run at the time it would run: a minute later.
    await expireDuePayments(t.db.pool, new Date(Date.parse(p.expires_at) + 1000), { publicBaseUrl: t.config.publicBaseUrl, networkPassphrase: horizon.networkPassphrase });
    for (const [, page] of pages) {
      await page.waitForSelector('main[data-state="expired"]');
      expect(await page.textContent("#status")).toBe("This payment request has expired");
      expect(await page.$("svg")).toBeNull();
    }
    await record(pages, "checkout-expired");
    await closeAll(pages);
  });

  it("speaks Spanish to a Spanish browser", async () => {
    const p = await createPayment({ amount: "2.5" });
    const pages = await openAtBothWidths(p, { locale: "es-ES" });
    for (const [, page] of pages) {
      expect(await page.getAttribute("html", "lang")).toBe("es");
      expect(await page.textContent("#status")).toBe("Esperando tu pago");
      expect(await page.textContent(".warning")).toContain("Memo obligatorio.");
    }
    // The same markup as in English, checked above: a screenshot is enough.
    await record(pages, "checkout-spanish", { axe: false });
    await closeAll(pages);
  });

  it("without JavaScript shows the state and a Refresh link that brings the news", async () => {
    const p = await createPayment({ amount: "3" });
    const pages = await openAtBothWidths(p, { javaScriptEnabled: false });
    for (const [, page] of pages) {
      expect(await stateOf(page)).toBe("pending");
      expect(await page.isVisible("svg[role=img]")).toBe(true);
      expect(await page.isVisible("text=Refresh")).toBe(true);
    }
    await record(pages, "checkout-no-javascript", { axe: false });
    await payOnChain(p, "1");
    await waitFor(async () => (await t.app.inject({ method: "GET", url: `/pay/${p.id}/status` })).json().state === "partially_paid", "the partial payment");
    for (const [, page] of pages) {
      await Promise.all([page.waitForNavigation(), page.click("text=Refresh")]);
      expect(await stateOf(page)).toBe("partially_paid");
      expect(await page.textContent("#status")).toBe("Partly paid: please send the remaining 2 XLM");
    }
    await closeAll(pages);
  });

  it("polls for the status when the browser has no EventSource", async () => {
    const p = await createPayment({ amount: "1" });
    const requests: string[] = [];
    const pages = await openAtBothWidths(p, {}, { requests, init: () => delete (globalThis as Record<string, unknown>).EventSource });
    const { hash } = await payOnChain(p, "1");
    for (const [, page] of pages) {
      await page.waitForSelector('main[data-state="paid"]');
      expect(await page.textContent("#details")).toContain(hash);
    }
    expect(requests.filter((path) => path.endsWith("/status")).length).toBeGreaterThan(0);
    expect(requests.filter((path) => path.endsWith("/events"))).toEqual([]);
    await closeAll(pages);
  });
});
