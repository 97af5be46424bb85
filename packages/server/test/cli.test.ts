import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { systemClock } from "../src/clock.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { runCli } from "./support/process.js";

const HOUR_MS = 3_600_000;
// Wide enough for a slow CI machine between the command and the assertion; far narrower than any grace period tested.
const CLOCK_SLACK_MS = 60_000;

let db: TestDatabase;
let app: FastifyInstance;
let lumenpay: (args: string[], env?: Record<string, string>) => ReturnType<typeof runCli>;
beforeAll(async () => {
  db = await createTestDatabase();
  const config = loadConfig({ LOG_LEVEL: "silent" });
  app = await buildApp({ config, pool: db.pool, clock: systemClock, logger: createLogger("silent") });
  await app.ready();
  lumenpay = (args, env = {}) => runCli(args, { DATABASE_URL: db.url, ...env });
});
afterAll(async () => {
  await app.close();
  await db.drop();
});

/** Status of GET /v1/merchant with `key`, through the real app over the same database. */
async function statusWith(key: string): Promise<number> {
  const res = await app.inject({ method: "GET", url: "/v1/merchant", headers: { authorization: `Bearer ${key}` } });
  return res.statusCode;
}

function parseJson<T>(result: { code: number | null; stdout: string; stderr: string }): T {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

interface MerchantJson {
  id: string;
  name: string;
  email: string;
  accounts: string[];
  home_domain: string | null;
  home_domain_verification: { status: string; record: { type: string; name: string; value: string } } | null;
  accepted_assets: unknown[];
}
interface KeyJson {
  id: string;
  merchant_id: string;
  prefix: string;
  expires_at: string | null;
  revoked_at: string | null;
}

async function createMerchant(name = "Acme"): Promise<{ merchant: MerchantJson; api_key: string }> {
  return parseJson(await lumenpay(["merchants", "create", "--name", name, "--email", "ops@acme.test", "--account", randomAccount(), "--json"]));
}

describe("lumenpay merchants", () => {
  it("create --json prints the merchant and a working API key, once", async () => {
    const account = randomAccount();
    const issuer = randomAccount();
    const result = await lumenpay([
      "merchants", "create", "--name", "Acme", "--email", "ops@acme.test", "--account", account,
      "--home-domain", "pay.acme.test", "--asset", "XLM", "--asset", `USDC:${issuer}`, "--json",
    ]);
    const out = parseJson<{ merchant: MerchantJson; api_key: string }>(result);
    expect(Object.keys(out).sort()).toEqual(["api_key", "merchant"]);
    expect(out.api_key).toMatch(/^sk_\w{30,}$/);
    expect(out.merchant).toMatchObject({
      id: expect.stringMatching(/^mer_/),
      object: "merchant",
      name: "Acme",
      email: "ops@acme.test",
      accounts: [account],
      home_domain: "pay.acme.test",
      // The operator vouches for the domain: it is served at once.
      home_domain_verification: { status: "verified", record: { type: "TXT", name: "pay.acme.test" } },
      accepted_assets: ["XLM", { code: "USDC", issuer }],
    });
    expect(result.stdout.split(out.api_key)).toHaveLength(2);

    const me = await app.inject({ method: "GET", url: "/v1/merchant", headers: { authorization: `Bearer ${out.api_key}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json().id).toBe(out.merchant.id);
  });

  it("create without --json prints the key with a warning that it is shown only once", async () => {
    const result = await lumenpay(["merchants", "create", "--name", "Plain", "--email", "a@b.test", "--account", randomAccount()]);
    expect(result.code, result.stderr).toBe(0);
    const key = /\b(sk_\w+)/.exec(result.stdout)?.[1];
    expect(key).toBeDefined();
    expect(result.stdout).toMatch(/shown only once/);
    expect(await statusWith(key!)).toBe(200);
  });

  it("list shows merchants with their keys", async () => {
    const { merchant, api_key } = await createMerchant("Listed");
    const out = parseJson<{ merchants: (MerchantJson & { api_keys: KeyJson[] })[] }>(await lumenpay(["merchants", "list", "--json"]));
    const listed = out.merchants.find((m) => m.id === merchant.id);
    expect(listed).toMatchObject({ name: "Listed", email: "ops@acme.test" });
    expect(listed?.api_keys).toHaveLength(1);
    expect(listed?.api_keys[0]).toMatchObject({ merchant_id: merchant.id, prefix: api_key.slice(0, 10), revoked_at: null });
    // Listings never contain secrets.
    expect(JSON.stringify(out)).not.toContain(api_key);

    const human = await lumenpay(["merchants", "list"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(merchant.id);
    expect(human.stdout).toContain(listed!.api_keys[0]!.id);
  });

  it("rejects an invalid --account with one readable line and exit 1, creating nothing", async () => {
    const before = await db.pool.query("select count(*)::int as n from merchants");
    const result = await lumenpay(["merchants", "create", "--name", "Bad", "--email", "bad@acme.test", "--account", randomAccount(), "--account", "GNOTANACCOUNT"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("--account");
    expect(result.stderr).toContain("valid Stellar account");
    expect(result.stderr).not.toMatch(/^\s+at /m);
    const after = await db.pool.query("select count(*)::int as n from merchants");
    expect(after.rows).toEqual(before.rows);
  });

  it("create --home-domain refuses this server's own host, and leaves localhost pending in production with the record to create", async () => {
    // PUBLIC_BASE_URL defaults to http://localhost:4000.
    for (const host of ["localhost:4000", "localhost"]) {
      const reserved = await lumenpay(["merchants", "create", "--name", "X", "--email", "x@acme.test", "--account", randomAccount(), "--home-domain", host]);
      expect(reserved.code, host).toBe(1);
      expect(reserved.stderr).toContain("--home-domain");
      expect(reserved.stderr).toContain("home_domain_reserved");
    }

    const pending = await lumenpay(
      ["merchants", "create", "--name", "Prod", "--email", "p@acme.test", "--account", randomAccount(), "--home-domain", "localhost:5000"],
      { NODE_ENV: "production" },
    );
    expect(pending.code, pending.stderr).toBe(0);
    expect(pending.stdout).toContain("home domain  localhost:5000 (pending)");
    expect(pending.stdout).toMatch(/create the TXT record localhost "lumenpay-verification=[0-9a-f]{32}"/);
    expect(pending.stdout).toContain("POST /v1/merchant/home_domain/verify");
  });

  it("rejects a malformed --asset and a missing --email", async () => {
    const asset = await lumenpay(["merchants", "create", "--name", "X", "--email", "x@acme.test", "--account", randomAccount(), "--asset", "USDC"]);
    expect(asset.code).toBe(1);
    expect(asset.stderr).toContain("--asset");
    const missing = await lumenpay(["merchants", "create", "--name", "X", "--account", randomAccount()]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--email is required");
  });
});

describe("lumenpay keys", () => {
  it("create issues another working key, with an expiry when asked", async () => {
    const { merchant } = await createMerchant();
    const out = parseJson<{ key: KeyJson; api_key: string }>(
      await lumenpay(["keys", "create", "--merchant", merchant.id, "--expires-in-days", "30", "--json"]),
    );
    expect(out.key).toMatchObject({ id: expect.stringMatching(/^key_/), merchant_id: merchant.id, revoked_at: null });
    expect(Math.abs(Date.parse(out.key.expires_at!) - (Date.now() + 30 * 24 * HOUR_MS))).toBeLessThan(CLOCK_SLACK_MS);
    expect(await statusWith(out.api_key)).toBe(200);

    const unknown = await lumenpay(["keys", "create", "--merchant", "mer_doesnotexist"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("No merchant mer_doesnotexist");
  });

  it("rotate keeps the old key working for the grace period and issues a new one", async () => {
    const { api_key: oldSecret, merchant } = await createMerchant();
    const list = parseJson<{ merchants: (MerchantJson & { api_keys: KeyJson[] })[] }>(await lumenpay(["merchants", "list", "--json"]));
    const oldKey = list.merchants.find((m) => m.id === merchant.id)!.api_keys[0]!;

    const out = parseJson<{ key: KeyJson; api_key: string; previous_key: KeyJson }>(
      await lumenpay(["keys", "rotate", oldKey.id, "--grace-hours", "2", "--json"]),
    );
    expect(out.previous_key.id).toBe(oldKey.id);
    expect(out.key.id).not.toBe(oldKey.id);
    expect(out.key.expires_at).toBeNull();
    expect(Math.abs(Date.parse(out.previous_key.expires_at!) - (Date.now() + 2 * HOUR_MS))).toBeLessThan(CLOCK_SLACK_MS);
    expect(await statusWith(oldSecret)).toBe(200);
    expect(await statusWith(out.api_key)).toBe(200);
  });

  it("rotate defaults the grace period to API_KEY_ROTATION_GRACE_HOURS", async () => {
    const { merchant } = await createMerchant();
    const created = parseJson<{ key: KeyJson }>(await lumenpay(["keys", "create", "--merchant", merchant.id, "--json"]));
    const out = parseJson<{ previous_key: KeyJson }>(
      await lumenpay(["keys", "rotate", created.key.id, "--json"], { API_KEY_ROTATION_GRACE_HOURS: "5" }),
    );
    expect(Math.abs(Date.parse(out.previous_key.expires_at!) - (Date.now() + 5 * HOUR_MS))).toBeLessThan(CLOCK_SLACK_MS);
  });

  it("revoke makes the key stop working at once", async () => {
    const { merchant } = await createMerchant();
    const created = parseJson<{ key: KeyJson; api_key: string }>(await lumenpay(["keys", "create", "--merchant", merchant.id, "--json"]));
    expect(await statusWith(created.api_key)).toBe(200);

    const out = parseJson<{ key: KeyJson }>(await lumenpay(["keys", "revoke", created.key.id, "--json"]));
    expect(out.key.id).toBe(created.key.id);
    expect(out.key.revoked_at).not.toBeNull();
    expect(await statusWith(created.api_key)).toBe(401);

    const human = await lumenpay(["keys", "revoke", "key_doesnotexist"]);
    expect(human.code).toBe(1);
    expect(human.stderr).toContain("No API key key_doesnotexist");
  });
});

describe("lumenpay usage", () => {
  it("prints usage and exits 2 for an unknown command, 0 for --help", async () => {
    const unknown = await lumenpay(["payments", "refund"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "payments"');
    expect(unknown.stderr).toContain("Usage: lumenpay <command>");

    const help = await lumenpay(["keys", "rotate", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--grace-hours");

    const badNumber = await lumenpay(["keys", "rotate", "key_x", "--grace-hours", "soon"]);
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain("--grace-hours must be a whole number");
  });

  it("lists every command, summaries in one column, and a group's commands for the group alone", async () => {
    const help = await lumenpay(["--help"]);
    expect(help.code).toBe(0);
    // Command names are lower case, so a row's first capital letter starts its summary.
    const rows = help.stdout.split("\n").filter((line) => /^ {2}[a-z]/.test(line));
    const columns = rows.map((line) => line.search(/[A-Z]/));
    expect(rows.map((line, i) => line.slice(2, columns[i]).trim())).toEqual(expect.arrayContaining(["network start", "merchants check-account", "simulate pay"]));
    expect(new Set(columns).size).toBe(1);

    const network = await lumenpay(["network"]);
    expect(network.code).toBe(2);
    expect(network.stderr).toContain("network start");
    expect(network.stderr).not.toContain("merchants create");
  });

  it("reports an unreachable database in one line and exits 1", async () => {
    const result = await lumenpay(["merchants", "list"], { DATABASE_URL: "postgres://postgres@127.0.0.1:1/lumenpay" });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^lumenpay merchants list: .*ECONNREFUSED/);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("exits 2 naming the variable when the configuration is bad", async () => {
    const result = await lumenpay(["merchants", "list"], { DB_POOL_MAX: "lots" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("DB_POOL_MAX");
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
