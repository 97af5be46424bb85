import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, seedMerchant, type TestApp } from "./support/app.js";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

describe("GET /pay/:id", () => {
  it("shows the customer what to pay, with merchant text escaped", async () => {
    const m = await seedMerchant(t, { name: "Acme <b>Shop</b>" });
    const created = await t.app.inject({
      method: "POST",
      url: "/v1/payments",
      headers: m.auth,
      payload: { amount: "12.50", asset: "XLM", description: '<script>alert("x")</script>' },
    });
    const payment = created.json();
    const page = await t.app.inject({ method: "GET", url: new URL(payment.payment_url).pathname });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["content-security-policy"]).toContain("default-src 'none'");
    // Never framed by another site.
    expect(page.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    expect(page.body).toContain("12.5 XLM");
    expect(page.body).toContain(payment.memo);
    expect(page.body).toContain(payment.destination);
    expect(page.body).toContain('data-status="pending"');
    expect(page.body).toContain("Acme &lt;b&gt;Shop&lt;/b&gt;");
    expect(page.body).not.toContain("<script>");
    expect(page.body).toContain(payment.sep7_uri.replace(/&/g, "&amp;"));
  });

  it("answers 404 for unknown and malformed ids, without an API key", async () => {
    expect((await t.app.inject({ method: "GET", url: "/pay/pay_0000000000000000000000" })).statusCode).toBe(404);
    expect((await t.app.inject({ method: "GET", url: "/pay/nonsense" })).statusCode).toBe(404);
  });
});
