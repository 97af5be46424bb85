import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { Keypair, Networks, StellarToml } from "@stellar/stellar-sdk";
import type { FastifyInstance } from "fastify";
import { parse } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { loadConfig, type Config } from "../src/config.js";
import { newId } from "../src/ids.js";
import { createLogger } from "../src/logger.js";
import { createMerchant, type MerchantFields, type MerchantIn } from "../src/merchants/service.js";
import { getMerchant, insertMerchant, setHomeDomain, setMerchantAccounts, updateMerchant, type Merchant, type Org } from "../src/merchants/store.js";
import { TOML_MAX_AGE_MS } from "../src/sep1/routes.js";
import { buildTestApp, randomAccount, seedMerchant, TestClock } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

const signer = Keypair.random();
const usdcIssuer = randomAccount();
const logs: { level: number; msg: string; merchantId?: string; bytes?: number }[] = [];

let db: TestDatabase;
let config: Config;
let app: FastifyInstance;
let port: number;
/** The app has no LISTEN connection: a merchant written here is served once the cached file's age reaches TOML_MAX_AGE_MS. */
const clock = new TestClock(new Date());
/** The merchant whose home_domain is `localhost:<port>`, verified at once in development. */
let hosted: Merchant;

beforeAll(async () => {
  db = await createTestDatabase();
  config = loadConfig({ LOG_LEVEL: "error", WEBHOOK_SIGNING_SEED: signer.secret() });
  const logger = createLogger(config.logLevel, { write: (line: string) => void logs.push(JSON.parse(line)) });
  app = await buildApp({ config, pool: db.pool, clock, logger });
  // "localhost" makes Fastify bind every address the name resolves to, so the SDK's lookup reaches us.
  await app.listen({ host: "localhost", port: 0 });
  port = (app.server.address() as AddressInfo).port;
  hosted = await newMerchant({
    name: "Acme Coffee",
    accounts: [randomAccount(), randomAccount()],
    home_domain: `localhost:${port}`,
    org: { url: "https://acme.test", support_email: "help@acme.test", twitter: "acmecoffee" },
    accepted_assets: ["XLM", { code: "USDC", issuer: usdcIssuer }],
  });
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

async function newMerchant(input: Partial<MerchantIn>): Promise<Merchant> {
  const { merchant } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()], ...input }, new Date(), config);
  return merchant;
}

const get = (query = "", headers: Record<string, string> = {}) =>
  app.inject({ method: "GET", url: `/.well-known/stellar.toml${query}`, headers: { host: `localhost:${port}`, ...headers } });

/** What a merchant's file must contain, spelled from its stored fields. */
function expectedToml(m: Merchant) {
  return {
    VERSION: "2.7.0",
    NETWORK_PASSPHRASE: Networks.TESTNET,
    HORIZON_URL: "https://horizon-testnet.stellar.org",
    ACCOUNTS: m.accounts,
    SIGNING_KEY: signer.publicKey(),
    DOCUMENTATION: {
      ORG_NAME: m.name,
      ...Object.fromEntries(Object.entries(m.org).map(([field, value]) => [`ORG_${field.toUpperCase()}`, value])),
    },
    CURRENCIES: m.acceptedAssets.map((a) => (a.issuer === null ? { code: "native" } : { code: a.code, issuer: a.issuer })),
  };
}

/**
 * Writes a merchant as the store does, past the service's validation (which would refuse these values),
 * its home domain verified outright: these tests are about what is served, not about the proof.
 */
async function insertUnchecked({ accounts, homeDomain, ...profile }: MerchantFields): Promise<Merchant> {
  const id = newId("mer");
  await insertMerchant(db.pool, id, profile, new Date());
  await setMerchantAccounts(db.pool, id, accounts, new Date());
  if (homeDomain !== null) await setHomeDomain(db.pool, id, { name: homeDomain, token: "unchecked", verifiedAt: new Date() });
  return (await getMerchant(db.pool, id))!;
}

describe("GET /.well-known/stellar.toml", () => {
  it("is found by the Stellar SDK's resolver through the Host header", async () => {
    const toml = await StellarToml.Resolver.resolve(`localhost:${port}`, { allowHttp: true });
    expect(toml).toEqual({
      VERSION: "2.7.0",
      NETWORK_PASSPHRASE: "Test SDF Network ; September 2015",
      HORIZON_URL: "https://horizon-testnet.stellar.org",
      ACCOUNTS: hosted.accounts,
      SIGNING_KEY: signer.publicKey(),
      DOCUMENTATION: {
        ORG_NAME: "Acme Coffee",
        ORG_URL: "https://acme.test",
        ORG_SUPPORT_EMAIL: "help@acme.test",
        ORG_TWITTER: "acmecoffee",
      },
      CURRENCIES: [{ code: "native" }, { code: "USDC", issuer: usdcIssuer }],
    });
  });

  it("emits a [DOCUMENTATION] table and never a DOCUMENTATION key or an [ORG] table", async () => {
    const text = (await get()).body;
    expect(text).toMatch(/^\[DOCUMENTATION\]$/m);
    expect(text).not.toMatch(/^DOCUMENTATION\s*=/m);
    expect(text).not.toMatch(/^\[ORG\]/m);
  });

  it("compares the Host case-insensitively, and merchant_id selects regardless of Host", async () => {
    const upper = await get("", { host: `LocalHost:${port}` });
    expect(upper.statusCode).toBe(200);
    expect(parse(upper.body)).toMatchObject({ DOCUMENTATION: { ORG_NAME: "Acme Coffee" } });

    const other = await newMerchant({ name: "Other Shop" });
    const byId = await get(`?merchant_id=${other.id}`);
    expect(byId.statusCode).toBe(200);
    expect(parse(byId.body)).toMatchObject({ ACCOUNTS: other.accounts, DOCUMENTATION: { ORG_NAME: "Other Shop" } });

    const unknownHost = await get("", { host: "nobody.example.com" });
    expect(unknownHost.statusCode).toBe(404);
    expect(unknownHost.json().error.code).toBe("resource_not_found");
    expect(unknownHost.headers["access-control-allow-origin"]).toBe("*");
  });

  it("serves a home domain by Host only once it is verified; merchant_id names the merchant either way", async () => {
    const m = await newMerchant({ name: "Pending Shop" });
    await setHomeDomain(db.pool, m.id, { name: "pending.example", token: "t", verifiedAt: null });
    expect((await get("", { host: "pending.example" })).statusCode).toBe(404);
    expect((await get(`?merchant_id=${m.id}`, { host: "pending.example" })).statusCode).toBe(200);
    await setHomeDomain(db.pool, m.id, { name: "pending.example", token: "t", verifiedAt: new Date() });
    clock.advance(TOML_MAX_AGE_MS);
    expect(parse((await get("", { host: "pending.example" })).body)).toMatchObject({ DOCUMENTATION: { ORG_NAME: "Pending Shop" } });
  });

  it("answers 400 to a malformed merchant_id and 404 to an unknown one, as JSON errors", async () => {
    const bad = await get("?merchant_id=acme");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: "invalid_request", param: "merchant_id" });
    expect(bad.headers["access-control-allow-origin"]).toBe("*");

    const unknown = await get(`?merchant_id=${newId("mer")}`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe("resource_not_found");
  });

  it("sends the SEP-1 headers and a strong ETag that If-None-Match turns into 304", async () => {
    const res = await get();
    expect(res.statusCode).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBe("*");
    expect(res.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("public, max-age=3600");
    const etag = res.headers.etag as string;
    expect(etag).toBe(`"${createHash("sha256").update(res.rawPayload).digest("base64url")}"`);

    for (const ifNoneMatch of [etag, `W/${etag}`, `"stale", ${etag}`, "*"]) {
      const cached = await get("", { "if-none-match": ifNoneMatch });
      expect(cached.statusCode, ifNoneMatch).toBe(304);
      expect(cached.body).toBe("");
      expect(cached.headers.etag).toBe(etag);
      expect(cached.headers["access-control-allow-origin"]).toBe("*");
    }
    expect((await get("", { "if-none-match": '"stale"' })).statusCode).toBe(200);
  });

  it("changes the ETag when the merchant changes", async () => {
    const m = await newMerchant({ name: "Before" });
    const before = await get(`?merchant_id=${m.id}`);
    await updateMerchant(db.pool, m.id, { ...m, name: "After" }, new Date());
    clock.advance(TOML_MAX_AGE_MS);
    const after = await get(`?merchant_id=${m.id}`, { "if-none-match": before.headers.etag as string });
    expect(after.statusCode).toBe(200);
    expect(after.headers.etag).not.toBe(before.headers.etag);
    expect(parse(after.body)).toMatchObject({ DOCUMENTATION: { ORG_NAME: "After" } });
  });

  it("takes ORG_NAME from org.name when set, else from the merchant's name", async () => {
    const m = await newMerchant({ name: "Trading Name", org: { name: "Acme Holdings Ltd" } });
    expect(parse((await get(`?merchant_id=${m.id}`)).body)).toMatchObject({ DOCUMENTATION: { ORG_NAME: "Acme Holdings Ltd" } });
  });

  it("omits SIGNING_KEY when the platform has no signing key", async () => {
    const t = await buildTestApp();
    try {
      const { merchant } = await seedMerchant(t);
      const res = await t.app.inject({ method: "GET", url: `/.well-known/stellar.toml?merchant_id=${merchant.id}` });
      expect(res.statusCode).toBe(200);
      const toml = parse(res.body);
      expect(toml).not.toHaveProperty("SIGNING_KEY");
      expect(toml).toHaveProperty("VERSION", "2.7.0");
    } finally {
      await t.close();
    }
  });
});

/** Text that would add keys or tables if it were pasted into TOML instead of encoded. */
const HOSTILE = [
  'a"\nORG_NAME = "pwned',
  ']\n[ORG]\nname = "x"',
  '"""\nX = 1\n"""',
  "'''\nX = 1\n'''",
  '\\" ] } # not a comment',
  '[[CURRENCIES]]\ncode = "EVIL"',
  'DOCUMENTATION = "https://evil.test"\r\nY = 2',
  "ünïcödé 😀 \u202e\u2028\u2029\ufeff 中文",
  "\t\\u0041\\n",
];

describe("merchant text in stellar.toml", () => {
  it("round-trips hostile text accepted by the API in every field and adds no keys", async () => {
    const org: Org = {
      dba: HOSTILE[1]!,
      url: 'https://evil.test/"]\'[ORG]"""?q=\\',
      logo: 'https://evil.test/😀"""',
      description: HOSTILE[2]!,
      physical_address: HOSTILE[3]!,
      phone_number: HOSTILE[4]!,
      official_email: "\"]'\"\"\"@evil.test",
      support_email: "[ORG]=#@evil.test",
      twitter: HOSTILE[5]!,
      github: HOSTILE[6]!,
      keybase: HOSTILE[7]!,
    };
    const m = await newMerchant({ name: HOSTILE[0]!, org });
    expect(m.org).toEqual(org);
    const res = await get(`?merchant_id=${m.id}`);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(JSON.stringify(parse(res.body)))).toEqual(expectedToml(m));
  });

  it("round-trips control characters and hostile accounts and assets written straight to the database", async () => {
    const hostile = [...HOSTILE, "\u0001\b\u000b\f\u001f\u007f"];
    const fields: MerchantFields = {
      name: hostile.join("|"),
      email: "ops@acme.test",
      accounts: hostile,
      // An address literal: the API would refuse it, and the SDK sends it as the Host.
      homeDomain: `127.0.0.1:${port}`,
      org: { description: hostile.join(""), twitter: hostile[8]!, keybase: hostile[9]! },
      acceptedAssets: [{ code: "XLM", issuer: null }, ...hostile.map((text) => ({ code: text, issuer: text }))],
    };
    const m = await insertUnchecked(fields);
    // The SDK parses with the older `toml` package: our encoding must be read the same way there.
    const toml = await StellarToml.Resolver.resolve(`127.0.0.1:${port}`, { allowHttp: true });
    expect(toml).toEqual(expectedToml(m));
  });
});

describe("the 100 KB limit", () => {
  it("refuses a file over 100 KB with a logged 500", async () => {
    const long = "x".repeat(9_000);
    const org = Object.fromEntries(
      ["dba", "description", "physical_address", "phone_number", "twitter", "github", "keybase", "logo", "url", "official_email", "support_email", "name"].map((f) => [f, long]),
    );
    // 12 fields × 9,000 bytes: more than the API's validation would ever let through.
    const m = await insertUnchecked({
      name: "Big",
      email: "big@acme.test",
      accounts: [randomAccount()],
      homeDomain: null,
      org,
      acceptedAssets: [],
    });
    const res = await get(`?merchant_id=${m.id}`);
    expect(res.statusCode).toBe(500);
    expect(res.json().error.code).toBe("stellar_toml_too_large");
    const logged = logs.find((l) => l.merchantId === m.id);
    expect(logged).toMatchObject({ level: 50 });
    expect(logged?.bytes).toBeGreaterThan(100 * 1024);
  });
});
