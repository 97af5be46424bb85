import { copyFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { migrate, MIGRATIONS_DIR, readMigrations } from "../src/db/migrate.js";
import { DNS_DEADLINE_MS } from "../src/merchants/dns.js";
import { createMerchant } from "../src/merchants/service.js";
import { setHomeDomain } from "../src/merchants/store.js";
import { TOML_MAX_AGE_MS } from "../src/sep1/routes.js";
import { buildTestApp, randomAccount, seedMerchant, TestClock, type TestApp } from "./support/app.js";
import { createTestDatabase } from "./support/db.js";
import { startTestDns, type TestDns } from "./support/dns.js";

const PLATFORM = "pay.lumenpay.test";

let dns: TestDns;
let clock: TestClock;
/** NODE_ENV unset: development. */
let dev: TestApp;
let prod: TestApp;

beforeAll(async () => {
  dns = await startTestDns();
  clock = new TestClock();
  const env = { DNS_SERVERS: dns.address, PUBLIC_BASE_URL: `https://${PLATFORM}` };
  dev = await buildTestApp({ env, clock });
  prod = await buildTestApp({ env: { ...env, NODE_ENV: "production" } });
});
afterAll(async () => {
  await dev?.close();
  await prod?.close();
  await dns?.close();
});
beforeEach(() => dns.setMode("answer"));

type Auth = { authorization: string };

const patch = (t: TestApp, auth: Auth, homeDomain: string | null) =>
  t.app.inject({ method: "PATCH", url: "/v1/merchant", headers: auth, payload: { home_domain: homeDomain } });
const verify = (t: TestApp, auth: Auth) => t.app.inject({ method: "POST", url: "/v1/merchant/home_domain/verify", headers: auth });
const stellarToml = (t: TestApp, host: string) => t.app.inject({ method: "GET", url: "/.well-known/stellar.toml", headers: { host } });
/** `dev` has no LISTEN connection: a change is served once the files it cached reach their maximum age. */
const servedFilesExpire = () => clock.advance(TOML_MAX_AGE_MS);

/** A merchant of `t` that has asked for `homeDomain` through the API; returns its auth and the TXT value that proves it. */
async function claiming(t: TestApp, homeDomain: string) {
  const { merchant, auth } = await seedMerchant(t);
  const res = await patch(t, auth, homeDomain);
  expect(res.statusCode, res.body).toBe(200);
  return { merchant, auth, proof: res.json().home_domain_verification.record.value as string };
}

describe("proving a home domain", () => {
  it("serves a home domain only once its TXT record is there and verified", async () => {
    const { merchant, auth } = await seedMerchant(dev);
    const claimed = await patch(dev, auth, "Shop.Example");
    expect(claimed.statusCode).toBe(200);
    const { home_domain_verification: pending } = claimed.json();
    expect(claimed.json().home_domain).toBe("shop.example");
    expect(pending).toEqual({
      status: "pending",
      token: expect.stringMatching(/^[0-9a-f]{32}$/),
      record: { type: "TXT", name: "shop.example", value: `lumenpay-verification=${pending.token}` },
      verified_at: null,
    });
    expect((await stellarToml(dev, "shop.example")).statusCode).toBe(404);

    const missing = await verify(dev, auth);
    expect(missing.statusCode).toBe(422);
    expect(missing.json().error).toMatchObject({ code: "home_domain_record_missing", param: "home_domain" });
    expect(missing.json().error.message).toContain(`TXT record named shop.example (or _lumenpay.shop.example) with the value ${pending.record.value}`);
    expect((await stellarToml(dev, "shop.example")).statusCode).toBe(404);

    dns.setTxt("shop.example", ["v=spf1 -all", pending.record.value]);
    clock.advance(60_000);
    const verified = await verify(dev, auth);
    expect(verified.statusCode, verified.body).toBe(200);
    expect(verified.json().home_domain_verification).toEqual({ ...pending, status: "verified", verified_at: clock.now().toISOString() });

    const served = await stellarToml(dev, "shop.example");
    expect(served.statusCode).toBe(200);
    expect(served.body).toContain(merchant.accounts[0]);

    // Verified stays verified: no second lookup, and other fields change without touching the proof.
    const asked = dns.queries.length;
    expect((await verify(dev, auth)).json().home_domain_verification.status).toBe("verified");
    expect(dns.queries).toHaveLength(asked);
    const renamed = await dev.app.inject({ method: "PATCH", url: "/v1/merchant", headers: auth, payload: { name: "Renamed", home_domain: "shop.example" } });
    expect(renamed.json().home_domain_verification.status).toBe("verified");
  });

  it("accepts the record on _lumenpay.<domain>, and proves a domain with a port on the name without it", async () => {
    const { auth, proof } = await claiming(dev, "cname.example:8443");
    dns.setTxt("_lumenpay.cname.example", [proof]);
    expect((await verify(dev, auth)).statusCode).toBe(200);
    expect(dns.queries).toEqual(expect.arrayContaining(["cname.example", "_lumenpay.cname.example"]));
    expect((await stellarToml(dev, "cname.example:8443")).statusCode).toBe(200);
    expect((await stellarToml(dev, "cname.example")).statusCode).toBe(404);
  });

  it("refuses a record holding another merchant's token; two pending claims coexist until one is proven", async () => {
    const a = await claiming(dev, "contested.example");
    const b = await claiming(dev, "contested.example");
    expect(b.proof).not.toBe(a.proof);

    dns.setTxt("contested.example", [a.proof]);
    const wrong = await verify(dev, b.auth);
    expect(wrong.statusCode).toBe(422);
    expect(wrong.json().error.code).toBe("home_domain_record_missing");
    expect(wrong.json().error.message).toContain("holds another token");
    expect((await stellarToml(dev, "contested.example")).statusCode).toBe(404);

    expect((await verify(dev, a.auth)).statusCode).toBe(200);
    servedFilesExpire();
    expect((await stellarToml(dev, "contested.example")).body).toContain(a.merchant.accounts[0]);

    // Even with its own record published, b can neither verify nor claim the domain again.
    dns.setTxt("contested.example", [a.proof, b.proof]);
    const taken = await verify(dev, b.auth);
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error).toMatchObject({ code: "home_domain_taken", param: "home_domain" });
    expect((await patch(dev, b.auth, "elsewhere.example")).statusCode).toBe(200);
    expect((await patch(dev, b.auth, "contested.example")).json().error.code).toBe("home_domain_taken");
    const c = await seedMerchant(dev);
    expect((await patch(dev, c.auth, "contested.example")).statusCode).toBe(409);
    // Nor can the operator give it to another merchant.
    const input = { name: "C", email: "c@x.test", accounts: [randomAccount()], home_domain: "contested.example" };
    await expect(createMerchant(dev.db.pool, input, clock.now(), dev.config)).rejects.toMatchObject({ status: 409, code: "home_domain_taken" });
    expect((await stellarToml(dev, "contested.example")).body).toContain(a.merchant.accounts[0]);
  });

  it("lets exactly one of two merchants verifying the same domain at once win", async () => {
    const a = await claiming(dev, "race.example");
    const b = await claiming(dev, "race.example");
    dns.setTxt("race.example", [a.proof, b.proof]);
    const results = await Promise.all([verify(dev, a.auth), verify(dev, b.auth)]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.statusCode === 409)?.json().error.code).toBe("home_domain_taken");
  });

  it("answers 400 home_domain_not_set without a home domain", async () => {
    const { auth } = await seedMerchant(dev);
    const res = await verify(dev, auth);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe("home_domain_not_set");
  });
});

describe("changing the home domain", () => {
  it("resets the proof, and the old domain stops serving", async () => {
    const { auth, proof } = await claiming(dev, "old.example");
    dns.setTxt("old.example", [proof]);
    expect((await verify(dev, auth)).statusCode).toBe(200);
    expect((await stellarToml(dev, "old.example")).statusCode).toBe(200);

    const moved = await patch(dev, auth, "new.example");
    expect(moved.json().home_domain_verification).toMatchObject({ status: "pending", verified_at: null });
    expect(moved.json().home_domain_verification.record.value).not.toBe(proof);
    servedFilesExpire();
    expect((await stellarToml(dev, "old.example")).statusCode).toBe(404);
    expect((await stellarToml(dev, "new.example")).statusCode).toBe(404);

    // Coming back is a new claim: the record of the old token no longer proves it.
    const back = await patch(dev, auth, "old.example");
    expect(back.json().home_domain_verification.status).toBe("pending");
    expect(back.json().home_domain_verification.record.value).not.toBe(proof);
    expect((await verify(dev, auth)).statusCode).toBe(422);
    expect((await stellarToml(dev, "old.example")).statusCode).toBe(404);

    const cleared = await patch(dev, auth, null);
    expect(cleared.json()).toMatchObject({ home_domain: null, home_domain_verification: null });
  });
});

describe("hosts nobody can claim", () => {
  it("refuses the platform's own host, with and without port, through the API and the operator's CLI", async () => {
    const { auth } = await seedMerchant(dev);
    for (const host of [PLATFORM, `${PLATFORM}:443`, PLATFORM.toUpperCase()]) {
      const res = await patch(dev, auth, host);
      expect(res.statusCode, host).toBe(400);
      expect(res.json().error).toMatchObject({ code: "home_domain_reserved", param: "home_domain" });
    }
    const input = { name: "Op", email: "op@x.test", accounts: [randomAccount()], home_domain: PLATFORM };
    await expect(createMerchant(dev.db.pool, input, clock.now(), dev.config)).rejects.toMatchObject({ status: 400, code: "home_domain_reserved" });
    expect((await dev.app.inject({ method: "GET", url: "/v1/merchant", headers: auth })).json().home_domain).toBeNull();
  });

  it("never serves a merchant's file for the platform's host, even from a row written before the rule", async () => {
    const { merchant } = await seedMerchant(dev);
    await setHomeDomain(dev.db.pool, merchant.id, { name: PLATFORM, token: "legacy", verifiedAt: clock.now() });
    expect((await stellarToml(dev, PLATFORM)).statusCode).toBe(404);
  });
});

describe("localhost", () => {
  it("is verified at once in development", async () => {
    const { merchant, auth } = await seedMerchant(dev);
    const res = await patch(dev, auth, "localhost:5555");
    expect(res.json().home_domain_verification).toMatchObject({ status: "verified", verified_at: clock.now().toISOString() });
    expect((await stellarToml(dev, "localhost:5555")).body).toContain(merchant.accounts[0]);
  });

  it("needs proof in production, never gets it, and is never served there", async () => {
    const { merchant, auth } = await seedMerchant(prod);
    expect((await patch(prod, auth, "localhost:5555")).json().home_domain_verification.status).toBe("pending");
    expect((await stellarToml(prod, "localhost:5555")).statusCode).toBe(404);
    const res = await verify(prod, auth);
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe("home_domain_record_missing");

    // The operator cannot vouch for it either, and a row verified in development is not served.
    const input = { name: "Op", email: "op@x.test", accounts: [randomAccount()], home_domain: "localhost:6666" };
    const { merchant: byOperator } = await createMerchant(prod.db.pool, input, new Date(), prod.config);
    expect(byOperator.homeDomain).toMatchObject({ name: "localhost:6666", verifiedAt: null });
    await setHomeDomain(prod.db.pool, merchant.id, { name: "localhost:5555", token: "from-development", verifiedAt: new Date() });
    expect((await stellarToml(prod, "localhost:5555")).statusCode).toBe(404);
  });
});

describe("when DNS fails", () => {
  it("answers 502 dns_unavailable within the deadline when the server does not answer, and changes nothing", async () => {
    const { auth } = await claiming(dev, "silent.example");
    dns.setMode("silent");
    const started = Date.now();
    const res = await verify(dev, auth);
    expect(res.statusCode).toBe(502);
    expect(res.json().error).toMatchObject({ code: "dns_unavailable", message: expect.stringContaining("silent.example") });
    // The deadline bounds the wait; the margin is for a loaded machine.
    expect(Date.now() - started).toBeLessThan(DNS_DEADLINE_MS + 5_000);
    const me = await dev.app.inject({ method: "GET", url: "/v1/merchant", headers: auth });
    expect(me.json().home_domain_verification.status).toBe("pending");
  });

  it("answers 502 dns_unavailable when the server fails (SERVFAIL)", async () => {
    const { auth } = await claiming(dev, "broken.example");
    dns.setMode("servfail");
    const res = await verify(dev, auth);
    expect(res.statusCode).toBe(502);
    expect(res.json().error.code).toBe("dns_unavailable");
    expect(res.json().error.message).toContain("ESERVFAIL");
  });
});

describe("006_home_domain_proof", () => {
  it("keeps existing home domains, pending with a token of their own; only a verified domain is unique", async () => {
    const old = await createTestDatabase({ migrated: false });
    const before = await mkdtemp(path.join(os.tmpdir(), "lumenpay-migrations-"));
    try {
      for (const m of (await readMigrations()).filter((m) => m.version < 6)) await copyFile(path.join(MIGRATIONS_DIR, `${m.name}.sql`), path.join(before, `${m.name}.sql`));
      await migrate(old.pool, before);
      await old.pool.query(
        `insert into merchants (id, name, email, home_domain) values ('mer_a', 'A', 'a@x.test', 'a.example'), ('mer_b', 'B', 'b@x.test', 'b.example'), ('mer_c', 'C', 'c@x.test', null)`,
      );
      expect(await migrate(old.pool)).toContain("006_home_domain_proof");
      const { rows } = await old.pool.query("select id, home_domain, home_domain_token, home_domain_verified_at from merchants order by id");
      expect(rows).toEqual([
        { id: "mer_a", home_domain: "a.example", home_domain_token: expect.stringMatching(/^[0-9a-f]{32}$/), home_domain_verified_at: null },
        { id: "mer_b", home_domain: "b.example", home_domain_token: expect.stringMatching(/^[0-9a-f]{32}$/), home_domain_verified_at: null },
        { id: "mer_c", home_domain: null, home_domain_token: null, home_domain_verified_at: null },
      ]);
      expect(rows[0].home_domain_token).not.toBe(rows[1].home_domain_token);

      await setHomeDomain(old.pool, "mer_b", { name: "a.example", token: "b", verifiedAt: null });
      await setHomeDomain(old.pool, "mer_a", { name: "a.example", token: "a", verifiedAt: new Date() });
      await expect(setHomeDomain(old.pool, "mer_b", { name: "a.example", token: "b", verifiedAt: new Date() })).rejects.toMatchObject({ code: "23505" });
    } finally {
      await rm(before, { recursive: true, force: true });
      await old.drop();
    }
  });
});
