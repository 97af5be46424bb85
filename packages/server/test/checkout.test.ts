import { Memo } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { chooseLanguage, parseAcceptLanguage } from "../src/checkout/i18n.js";
import { expireDuePayments } from "../src/payments/expiry.js";
import { useChainApp, type ChainMerchant } from "./support/chain.js";

/**
 * The public checkout through `inject`, on a local network whose ledgers close at the test clock's
 * time: payments are paid by real signed transactions and settled by the real settlement code.
 */

const chain = useChainApp("2026-09-01T10:00:00.000Z", { paymentDefaults: { asset: "XLM" } });
const { clock, merchant, createPayment, apply } = chain;

type PaymentJson = { id: string; memo: string; payment_url: string; sep7_uri: string; expires_at: string; destination: string };

const get = (url: string, headers: Record<string, string> = {}) => chain.t.app.inject({ method: "GET", url, headers });
const pathOf = (p: PaymentJson) => new URL(p.payment_url).pathname;
const pay = (m: ChainMerchant, p: PaymentJson, amount: string) => chain.pay(m, amount, Memo.id(p.memo));
/** What an attribute value looks like once escaped into the page. */
const escaped = (text: string) => text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const stateOf = (body: string) => /<main[^>]* data-state="([a-z_]+)"/.exec(body)?.[1];
const status = async (p: PaymentJson, query = "") => (await get(`${pathOf(p)}/status${query}`)).json();

describe("GET /pay/:id", () => {
  it("shows what to pay from any wallet: amount, destination, memo with its warning, the QR code, the wallet link and the time left", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "12.50", expires_in: 3600 });
    const res = await get(pathOf(p));
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.headers["x-frame-options"]).toBe("DENY");
    const csp = String(res.headers["content-security-policy"]);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    // The one style sheet and the one script run under this response's nonce; nothing inline elsewhere.
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1]!;
    expect(res.body.match(/<script[^>]*>/g)).toEqual([`<script nonce="${nonce}">`]);
    expect(res.body.match(/<style[^>]*>/g)).toEqual([`<style nonce="${nonce}">`]);
    expect(res.body).not.toMatch(/\s(on[a-z]+|style)=/);

    const body = res.body;
    expect(body).toContain('<html lang="en">');
    expect(stateOf(body)).toBe("pending");
    expect(body).toContain('<p class="amount">12.5 <span>XLM</span></p>');
    expect(body).toContain(`<code>${p.destination}</code>`);
    expect(body).toContain(`<code>${p.memo}</code>`);
    expect(body).toContain("Memo required.");
    expect(body).toMatch(/<svg [^>]*role="img" aria-label="QR code to pay 12.5 XLM with a Stellar wallet"/);
    expect(body).toContain(`<a class="button" href="${escaped(p.sep7_uri)}">Open in wallet</a>`);
    expect(body).toContain('data-seconds-left="3600">1:00:00</strong>');
    expect(body).toContain('role="status" aria-live="polite">Waiting for your payment</p>');
    // Copy buttons appear only once the script runs, since only it can copy.
    expect(body).toContain(`<button type="button" data-copy="${p.memo}" data-copied="Copied" aria-label="Copy memo" hidden>Copy</button>`);
  });

  it("escapes every value from the merchant and the payment, and shows no remote logo", async () => {
    const m = await merchant({ name: "Ignored", org: { name: 'Café <i>"Luna"</i>', logo: "https://cdn.example/logo.png" } });
    const p: PaymentJson = await createPayment(m, {
      amount: "1",
      memo_type: "text",
      memo: '"><img src=x>',
      description: "<script>alert(1)</script>",
    });
    const body = (await get(pathOf(p))).body;
    expect(body).toContain("Café &lt;i&gt;&quot;Luna&quot;&lt;/i&gt;");
    expect(body).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(body).toContain("&quot;&gt;&lt;img src=x&gt;");
    expect(body).not.toContain("<i>");
    expect(body).not.toContain("<img");
    expect(body).not.toContain("Ignored");
    // The CSP admits images from this origin only; a merchant's logo URL would be a tracker on their page.
    expect(body).not.toContain("cdn.example");
  });

  it("shows a muxed payment's M address alone: no memo, no memo warning", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "3", muxed: true });
    expect(p.destination).toMatch(/^M/);
    const body = (await get(pathOf(p))).body;
    expect(body).toContain(`<code>${p.destination}</code>`);
    expect(body).toContain("no memo is needed");
    expect(body).not.toContain("Memo required");
    expect(body).not.toContain("Memo (");
  });

  it("once partly paid, shows what arrived and asks for the rest with a QR code and link for the remainder", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "10" });
    await apply(await pay(m, p, "3.2500001"));
    const body = (await get(pathOf(p))).body;
    expect(stateOf(body)).toBe("partially_paid");
    expect(body).toContain("Partly paid: please send the remaining 6.7499999 XLM");
    expect(body).toContain("Received 3.2500001 XLM of 10 XLM.");
    const remainderUri = p.sep7_uri.replace("amount=10&", "amount=6.7499999&");
    expect(body).toContain(`href="${escaped(remainderUri)}"`);
    expect(body).toContain('aria-label="QR code to pay 6.7499999 XLM with a Stellar wallet"');
    expect(await status(p)).toMatchObject({ state: "partially_paid", amount_received: "3.2500001", amount_remaining: "6.7499999" });
  });

  it("once paid, shows the transaction, the receipt link and the merchant's success_url", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "2", success_url: "https://shop.example/orders/7?paid=1&x=<y>" });
    const record = await pay(m, p, "2");
    await apply(record);
    const body = (await get(pathOf(p))).body;
    expect(stateOf(body)).toBe("paid");
    expect(body).toContain("Paid. Thank you!");
    expect(body).toContain(`<code>${record.transaction_hash}</code>`);
    expect(body).toContain(`href="/pay/${p.id}/receipt?lang=en">View receipt</a>`);
    expect(body).toContain('<a href="https://shop.example/orders/7?paid=1&amp;x=%3Cy%3E">Continue</a>');
    expect(body).not.toContain("<svg");
  });

  it("shows a payment confirmed after the expiry job ran as paid: the ledger's close time decides", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "5", expires_in: 60 });
    const record = await pay(m, p, "5");
    clock.advance(120_000);
    await expireDuePayments(chain.t.db.pool, clock.now(), chain.links());
    expect(stateOf((await get(pathOf(p))).body)).toBe("expired");
    await apply(record);
    expect(stateOf((await get(pathOf(p))).body)).toBe("paid");
  });

  it("shows an open payment past expires_at as expired before the expiry job gets to it, and a canceled one as canceled", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "5", expires_in: 60 });
    await apply(await pay(m, p, "1"));
    clock.advance(60_000);
    const body = (await get(pathOf(p))).body;
    expect(stateOf(body)).toBe("expired");
    expect(body).toContain("This payment request has expired");
    expect(body).toContain("1 XLM arrived for this request: contact the merchant about a refund.");
    expect(body).not.toContain("<svg");

    const q: PaymentJson = await createPayment(m, { amount: "5" });
    await chain.t.app.inject({ method: "POST", url: `/v1/payments/${q.id}/cancel`, headers: m.auth });
    expect((await get(pathOf(q))).body).toContain("This payment request was canceled");
  });

  it("keeps the page, its script and its style sheet under 100 KB with the largest QR code a payment can have", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "922337203685.4775807", memo_type: "text", memo: "é".repeat(14), description: "ü".repeat(1000) });
    const res = await get(pathOf(p));
    expect(res.statusCode).toBe(200);
    expect(Buffer.byteLength(res.body)).toBeLessThan(100 * 1024);
  });

  it("answers unknown and malformed ids alike, with the friendly page or the same JSON error", async () => {
    const unknown = ["/pay/pay_0000000000000000000000", "/pay/nonsense", `/pay/pay_${"x".repeat(80)}`, "/pay/pay_%00", "/pay/%F0%9F%92%B8"];
    const withoutNonce = (body: string) => body.replace(/nonce="[^"]+"/g, "");
    const pages = await Promise.all(unknown.map((url) => get(url)));
    for (const res of pages) {
      expect(res.statusCode).toBe(404);
      expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(res.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(withoutNonce(res.body)).toBe(withoutNonce(pages[0]!.body));
    }
    expect(pages[0]!.body).toContain("<h1>Payment not found</h1>");
    for (const suffix of ["/receipt", "/status", "/events"]) {
      const answers = await Promise.all(unknown.map((url) => get(url + suffix)));
      for (const res of answers) {
        expect(res.statusCode).toBe(404);
        expect(withoutNonce(res.body)).toBe(withoutNonce(answers[0]!.body));
      }
    }
    expect((await get("/pay/nonsense/status")).json()).toEqual({ error: { code: "resource_not_found", message: "No such payment." } });
  });
});

describe("GET /pay/:id/receipt", () => {
  it("lists the settlements of a paid payment with hash, ledger and on-chain time, ready to print", async () => {
    const m = await merchant({ org: { name: "Café Luna" } });
    const p: PaymentJson = await createPayment(m, { amount: "4", description: "Two coffees" });
    const early = (await get(`${pathOf(p)}/receipt`));
    expect(early.statusCode).toBe(404);
    expect(early.body).toContain("No receipt yet");
    expect(early.body).toContain(`href="/pay/${p.id}?lang=en"`);

    const first = await pay(m, p, "1.5");
    await apply(first);
    const second = await pay(m, p, "2.5");
    await apply(second);
    const res = await get(`${pathOf(p)}/receipt?lang=es`);
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.body;
    expect(body).toContain('<html lang="es">');
    expect(body).toContain("<h1>Café Luna</h1>");
    expect(body).toContain('<p class="amount">4 <span>XLM</span></p>');
    expect(body).toContain("Two coffees");
    for (const [record, amount] of [[first, "1.5"], [second, "2.5"]] as const) {
      expect(body).toContain(`<code>${record.transaction_hash}</code>`);
      expect(body).toContain(`<dd>${BigInt(record.id) >> 32n}</dd>`);
      expect(body).toContain(`<time datetime="${new Date(record.created_at).toISOString()}">`);
      expect(body).toContain(`<dd>${amount} XLM</dd>`);
    }
    expect(body).toMatch(/@media print\{[^}]*\{/);
  });
});

describe("GET /pay/:id/status", () => {
  it("is the page's live section as JSON, never cached", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "7" });
    const res = await get(`${pathOf(p)}/status?lang=es`);
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.json();
    expect(body).toEqual({
      state: "pending",
      version: expect.any(String),
      message: "Esperando tu pago",
      amount_received: "0",
      amount_remaining: "7",
      html: expect.stringContaining(escaped(p.sep7_uri)),
    });
    const page = (await get(`${pathOf(p)}?lang=es`)).body;
    expect(page).toContain(`<div id="details">${body.html}</div>`);
    expect(page).toContain(`data-version="${body.version}"`);
  });
});

describe("languages", () => {
  it("takes ?lang= first, then Accept-Language by q-value, else English, and sets <html lang>", async () => {
    const m = await merchant();
    const p: PaymentJson = await createPayment(m, { amount: "1" });
    const langOf = async (query: string, acceptLanguage?: string) =>
      /<html lang="([a-z]+)">/.exec((await get(`${pathOf(p)}${query}`, acceptLanguage ? { "accept-language": acceptLanguage } : {})).body)?.[1];
    expect(await langOf("")).toBe("en");
    expect(await langOf("", "es-MX,es;q=0.9,en;q=0.8")).toBe("es");
    expect(await langOf("", "en;q=0.5, es;q=0.9")).toBe("es");
    expect(await langOf("?lang=en", "es")).toBe("en");
    expect(await langOf("?lang=es-419")).toBe("es");
    expect(await langOf("?lang=fr", "es")).toBe("es");
    const spanish = (await get(`${pathOf(p)}?lang=es`)).body;
    expect(spanish).toContain("Esperando tu pago");
    expect(spanish).toContain("Memo obligatorio.");
    expect(spanish).toContain('<a href="?lang=en" lang="en" hreflang="en">English</a>');
  });

  it("parses Accept-Language as RFC 9110 says: weights, refusals, wildcards, malformed entries skipped", () => {
    expect(parseAcceptLanguage("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5")).toEqual([
      { range: "fr-ch", q: 1 },
      { range: "fr", q: 0.9 },
      { range: "en", q: 0.8 },
      { range: "de", q: 0.7 },
      { range: "*", q: 0.5 },
    ]);
    expect(parseAcceptLanguage("es;q=1.5, en;q=0.1234, de;q=abc, ;;, es-AR ; q=0.3")).toEqual([{ range: "es-ar", q: 0.3 }]);
    const cases: Array<[string | undefined, string | undefined, string]> = [
      [undefined, undefined, "en"],
      [undefined, "de, es;q=0.1", "es"],
      [undefined, "es;q=0, *", "en"],
      [undefined, "en;q=0, *;q=0.5", "es"],
      [undefined, "de, fr", "en"],
      [undefined, "es;q=0.5, en;q=0.5", "es"],
      [undefined, "en-GB;q=0, es;q=0.1", "es"],
      [undefined, "garbage;;;", "en"],
      ["ES", "en", "es"],
      ["xx", "es", "es"],
    ];
    for (const [query, header, expected] of cases) expect(chooseLanguage(query, header), `${query} ${header}`).toBe(expected);
  });
});
