import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, randomAccount, seedMerchant, type TestApp } from "./support/app.js";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

describe("GET/PATCH /v1/merchant", () => {
  it("requires an API key", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/merchant" });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe("missing_api_key");
  });

  it("returns and updates only the caller's merchant", async () => {
    const a = await seedMerchant(t, { name: "A" });
    const b = await seedMerchant(t, { name: "B" });
    const got = await t.app.inject({ method: "GET", url: "/v1/merchant", headers: a.auth });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({ id: a.merchant.id, name: "A", object: "merchant", accepted_assets: ["XLM"] });

    const patched = await t.app.inject({
      method: "PATCH",
      url: "/v1/merchant",
      headers: b.auth,
      payload: { name: "B2", org: { url: "https://b.example" } },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ id: b.merchant.id, name: "B2", org: { url: "https://b.example" } });
    const again = await t.app.inject({ method: "GET", url: "/v1/merchant", headers: a.auth });
    expect(again.json().name).toBe("A");
  });

  it("rejects invalid fields with a param and writes nothing", async () => {
    const a = await seedMerchant(t);
    const bad = await t.app.inject({
      method: "PATCH",
      url: "/v1/merchant",
      headers: a.auth,
      payload: { name: "New", accounts: [randomAccount(), "GBAD"] },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: "invalid_account", param: "accounts.1" });
    const got = await t.app.inject({ method: "GET", url: "/v1/merchant", headers: a.auth });
    expect(got.json().name).toBe("Acme");
  });

  it("refuses a home_domain that is not a host name with a 400 naming it, and writes nothing", async () => {
    const a = await seedMerchant(t);
    for (const homeDomain of ["https://shop.example", "shop.example/path", "shop..example", "shop.example:0", "shop.example:65536", "ünï.example", "a".repeat(300) + ".example", " "]) {
      const res = await t.app.inject({ method: "PATCH", url: "/v1/merchant", headers: a.auth, payload: { home_domain: homeDomain } });
      expect(res.statusCode, homeDomain).toBe(400);
      expect(res.json().error.param, homeDomain).toBe("home_domain");
    }
    const got = await t.app.inject({ method: "GET", url: "/v1/merchant", headers: a.auth });
    expect(got.json()).toMatchObject({ home_domain: null, home_domain_verification: null });
  });

  it("answers 415 to non-JSON bodies", async () => {
    const a = await seedMerchant(t);
    const res = await t.app.inject({
      method: "PATCH",
      url: "/v1/merchant",
      headers: { ...a.auth, "content-type": "text/plain" },
      payload: "name=x",
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe("unsupported_media_type");
  });
});
