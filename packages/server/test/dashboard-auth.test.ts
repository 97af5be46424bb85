import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE, LOGIN_FAILURES_PER_EMAIL_PER_MINUTE } from "../src/dashboard/login-pages.js";
import { hashPassword, verifyPassword } from "../src/dashboard/passwords.js";
import { SESSION_TTL_MS } from "../src/dashboard/auth.js";
import { buildTestApp, seedMerchant, TestClock, type TestApp } from "./support/app.js";
import { DashboardSession, dashboardUser, formBody, hiddenField, PASSWORD, postLogin, setCookie } from "./support/dashboard.js";

const clock = new TestClock(new Date("2026-06-01T09:00:00Z"));
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

/** A page without what differs on every response (nonce, tokens), to compare two answers. */
const stable = (body: string) => body.replace(/nonce="[^"]+"/g, "").replace(/value="[0-9A-Za-z]{32}"/g, "");

const paymentCount = async () => Number((await t.db.pool.query("select count(*) from payments")).rows[0].count);

describe("passwords", () => {
  it("are hashed with scrypt, a random salt each time and the parameters stored, and verified only for the same password", async () => {
    const [a, b] = [await hashPassword(PASSWORD), await hashPassword(PASSWORD)];
    expect(a).toMatch(/^scrypt\$32768\$8\$3\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(PASSWORD);
    expect(await verifyPassword(PASSWORD, a)).toBe(true);
    expect(await verifyPassword(PASSWORD, b)).toBe(true);
    expect(await verifyPassword(`${PASSWORD} `, a)).toBe(false);
    expect(await verifyPassword("", a)).toBe(false);
    const flipped = a.slice(0, -3) + (a.at(-3) === "A" ? "B" : "A") + a.slice(-2);
    expect(await verifyPassword(PASSWORD, flipped)).toBe(false);
  });

  it("compare accented letters however they were composed (NFC)", async () => {
    const stored = await hashPassword("mot de passe d\u00e9j\u00e0 vu");
    expect(await verifyPassword("mot de passe de\u0301ja\u0300 vu", stored)).toBe(true);
  });
});

describe("signing in", () => {
  it("sends a visitor without a session to the sign-in page, remembering where they were going", async () => {
    const res = await t.app.inject({ method: "GET", url: "/dashboard/payments?status=confirmed" });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/dashboard/login?next=${encodeURIComponent("/dashboard/payments?status=confirmed")}`);
    const login = await t.app.inject({ method: "GET", url: res.headers.location as string });
    expect(login.statusCode).toBe(200);
    expect(hiddenField(login.body, "next")).toBe("/dashboard/payments?status=confirmed");
  });

  it("starts a session in an httpOnly, SameSite=Strict cookie stored only as its hash, with an expiry, and goes where it was asked", async () => {
    const { merchant } = await seedMerchant(t);
    const user = await dashboardUser(t.db.pool, merchant.id, "owner");
    const res = await postLogin(t.app, user.email.toUpperCase(), PASSWORD, { next: "/dashboard/keys" });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/dashboard/keys");
    const cookie = setCookie(res, "lumenpay_session")!;
    expect(cookie).toMatch(/^lumenpay_session=[0-9A-Za-z]{43}; Path=\/dashboard; Max-Age=43200; HttpOnly; SameSite=Strict$/);
    expect(setCookie(res, "lumenpay_login")).toMatch(/^lumenpay_login=; Path=\/dashboard\/login; Max-Age=0;/);

    const token = cookie.split(";")[0]!.split("=")[1]!;
    const { rows } = await t.db.pool.query("select token_hash, user_id, created_at, expires_at from dashboard_sessions where user_id = $1", [user.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0].token_hash).toEqual(createHash("sha256").update(token).digest());
    expect(rows[0].expires_at.getTime() - rows[0].created_at.getTime()).toBe(SESSION_TTL_MS);
    const dump = JSON.stringify((await t.db.pool.query("select * from dashboard_sessions")).rows);
    expect(dump).not.toContain(token);
  });

  it("never sends a session somewhere else than the dashboard after signing in", async () => {
    const { merchant } = await seedMerchant(t);
    const user = await dashboardUser(t.db.pool, merchant.id, "viewer");
    for (const next of ["https://evil.test/", "//evil.test/dashboard", "/dashboard/../v1/merchant", "/dashboardx"]) {
      const res = await postLogin(t.app, user.email, PASSWORD, { next });
      expect(res.headers.location, next).toBe("/dashboard");
    }
  });

  it("marks the cookie Secure when the dashboard is served over https", async () => {
    const https = await buildTestApp({ env: { PUBLIC_BASE_URL: "https://pay.example.test" } });
    try {
      const { merchant } = await seedMerchant(https);
      const user = await dashboardUser(https.db.pool, merchant.id, "owner");
      const res = await postLogin(https.app, user.email, PASSWORD);
      expect(setCookie(res, "lumenpay_session")).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
    } finally {
      await https.close();
    }
  });

  it("answers a wrong password and an unknown email with the same generic error, keeping the email typed", async () => {
    const { merchant } = await seedMerchant(t);
    const user = await dashboardUser(t.db.pool, merchant.id, "owner");
    const wrong = await postLogin(t.app, user.email, "not the password at all");
    const unknown = await postLogin(t.app, "nobody@shop.test", "not the password at all");
    for (const res of [wrong, unknown]) {
      expect(res.statusCode).toBe(401);
      expect(res.body).toContain("The email or the password is not right.");
      expect(setCookie(res, "lumenpay_session")).toBeUndefined();
      expect(res.body).not.toContain("not the password at all");
    }
    expect(stable(wrong.body).replace(user.email, "EMAIL")).toBe(stable(unknown.body).replace("nobody@shop.test", "EMAIL"));
  });

  it("refuses a sign-in form that did not come from the sign-in page (login CSRF)", async () => {
    const { merchant } = await seedMerchant(t);
    const user = await dashboardUser(t.db.pool, merchant.id, "owner");
    const headers = { "content-type": "application/x-www-form-urlencoded" };
    const noCookie = await t.app.inject({ method: "POST", url: "/dashboard/login", headers, payload: formBody({ _csrf: "x".repeat(32), email: user.email, password: PASSWORD }) });
    const mismatch = await t.app.inject({
      method: "POST",
      url: "/dashboard/login",
      headers: { ...headers, cookie: `lumenpay_login=${"a".repeat(32)}` },
      payload: formBody({ _csrf: "b".repeat(32), email: user.email, password: PASSWORD }),
    });
    for (const res of [noCookie, mismatch]) {
      expect(res.statusCode).toBe(403);
      expect(setCookie(res, "lumenpay_session")).toBeUndefined();
    }
  });
});

describe("sign-in rate limits", () => {
  it(`refuse an email after ${LOGIN_FAILURES_PER_EMAIL_PER_MINUTE} failures in a minute, even with the right password, and only that email`, async () => {
    clock.set(new Date("2026-06-01T10:00:00Z"));
    const { merchant } = await seedMerchant(t);
    const [target, other] = [await dashboardUser(t.db.pool, merchant.id, "owner"), await dashboardUser(t.db.pool, merchant.id, "owner")];
    for (let i = 0; i < LOGIN_FAILURES_PER_EMAIL_PER_MINUTE; i++) expect((await postLogin(t.app, target.email, `wrong ${i}`)).statusCode).toBe(401);
    const blocked = await postLogin(t.app, target.email, PASSWORD);
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
    expect(blocked.body).toContain("Too many sign-in attempts");
    expect(setCookie(blocked, "lumenpay_session")).toBeUndefined();
    expect((await postLogin(t.app, other.email, PASSWORD)).statusCode).toBe(303);

    clock.advance(60_000);
    expect((await postLogin(t.app, target.email, PASSWORD)).statusCode).toBe(303);
  });

  // Twenty-two sign-ins, each a deliberate scrypt run (N = 2^15, p = 3): CPU-bound, so a machine whose
  // cores are all busy needs longer than the default 30 s; nothing here waits on time.
  it(`refuse a client address after ${LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE} failures in a minute, whatever the email`, { timeout: 120_000 }, async () => {
    clock.set(new Date("2026-06-01T11:00:00Z"));
    const { merchant } = await seedMerchant(t);
    const user = await dashboardUser(t.db.pool, merchant.id, "owner");
    for (let i = 0; i < LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE; i++) {
      expect((await postLogin(t.app, `guess-${i}@shop.test`, "wrong password")).statusCode).toBe(401);
    }
    expect((await postLogin(t.app, user.email, PASSWORD)).statusCode).toBe(429);
    clock.advance(60_000);
    expect((await postLogin(t.app, user.email, PASSWORD)).statusCode).toBe(303);
  });
});

describe("sessions", () => {
  it("end after their lifetime, by the injected clock", async () => {
    clock.set(new Date("2026-06-01T12:00:00Z"));
    const { merchant } = await seedMerchant(t);
    const user = await dashboardUser(t.db.pool, merchant.id, "viewer");
    const session = await DashboardSession.signIn(t.app, user.email);
    clock.advance(SESSION_TTL_MS - 1000);
    expect((await session.get("/dashboard/payments")).statusCode).toBe(200);
    clock.advance(1000);
    const expired = await session.get("/dashboard/payments");
    expect(expired.statusCode).toBe(303);
    expect(expired.headers.location).toMatch(/^\/dashboard\/login/);
  });

  it("are deleted by signing out: the old cookie and its CSRF token are worthless", async () => {
    const { merchant } = await seedMerchant(t);
    const user = await dashboardUser(t.db.pool, merchant.id, "owner");
    const session = await DashboardSession.signIn(t.app, user.email);
    const out = await session.post("/dashboard/logout");
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe("/dashboard/login?signed_out=1");
    expect(setCookie(out, "lumenpay_session")).toMatch(/^lumenpay_session=; Path=\/dashboard; Max-Age=0;/);
    expect((await t.db.pool.query("select 1 from dashboard_sessions where user_id = $1", [user.id])).rowCount).toBe(0);

    expect((await session.get("/dashboard")).headers.location).toBe("/dashboard/login");
    const before = await paymentCount();
    const replayed = await session.post("/dashboard/payments", { form_id: "a".repeat(22), amount: "1", asset: "XLM" });
    expect(replayed.statusCode).toBe(303);
    expect(replayed.headers.location).toBe("/dashboard/login");
    expect(await paymentCount()).toBe(before);
  });
});

describe("CSRF", () => {
  it("refuses a form without the session's token, or with another session's, and changes nothing", async () => {
    const { merchant } = await seedMerchant(t);
    const [alice, bob] = [await dashboardUser(t.db.pool, merchant.id, "owner"), await dashboardUser(t.db.pool, merchant.id, "owner")];
    const [a, b] = [await DashboardSession.signIn(t.app, alice.email), await DashboardSession.signIn(t.app, bob.email)];
    expect(a.csrf).not.toBe(b.csrf);
    const fields = { form_id: "b".repeat(22), amount: "5", asset: "XLM" };
    const before = await paymentCount();

    const missing = await t.app.inject({
      method: "POST",
      url: "/dashboard/payments",
      headers: { cookie: a.cookie, "content-type": "application/x-www-form-urlencoded" },
      payload: formBody(fields),
    });
    const stolen = await a.post("/dashboard/payments", { ...fields, _csrf: b.csrf });
    const empty = await a.post("/dashboard/payments", { ...fields, _csrf: "" });
    for (const res of [missing, stolen, empty]) {
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain("This form has expired or was not sent from this dashboard");
    }
    expect(await paymentCount()).toBe(before);

    expect((await a.post("/dashboard/payments", fields)).statusCode).toBe(303);
    expect(await paymentCount()).toBe(before + 1);
  });

  it("refuses JSON posted to the dashboard: forms only", async () => {
    const { merchant } = await seedMerchant(t);
    const user = await dashboardUser(t.db.pool, merchant.id, "owner");
    const session = await DashboardSession.signIn(t.app, user.email);
    const res = await t.app.inject({ method: "POST", url: "/dashboard/payments", headers: { cookie: session.cookie }, payload: { _csrf: session.csrf, amount: "1", asset: "XLM" } });
    expect(res.statusCode).toBe(415);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
  });
});
