import { Keypair, Networks } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";
import { runCli } from "./support/process.js";

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("loadConfig", () => {
  it("has documented defaults", () => {
    const config = loadConfig({}, "/srv/lumenpay");
    expect(config.port).toBe(4000);
    expect(config.host).toBe("127.0.0.1");
    expect(config.publicBaseUrl).toBe("http://localhost:4000");
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe("/srv/lumenpay/.lumenpay");
    expect(config.db).toEqual({ pooler: "none", poolMax: 20, poolMin: 2, idleTimeoutMs: 30_000, connectionTimeoutMs: 5_000, statementTimeoutMs: 30_000 });
    expect(config.databaseDirectUrl).toBeUndefined();
    expect(config.stellar).toEqual({ network: "testnet", networkPassphrase: Networks.TESTNET, horizonUrl: "https://horizon-testnet.stellar.org", rpcUrl: undefined, detectionSource: "horizon", ingestMode: "streams" });
    expect(config.poolMonitoring).toEqual({ enabled: false, intervalMs: 60_000 });
    expect(config.shutdownTimeoutMs).toBe(10_000);
    expect(config.api.keyRotationGraceHours).toBe(24);
  });

  const seed = Keypair.random().secret();
  it.each<[string, Record<string, string>, (c: ReturnType<typeof loadConfig>) => unknown, unknown]>([
    ["PORT=0 (any free port)", { PORT: "0" }, (c) => c.port, 0],
    ["public network", { STELLAR_NETWORK: "public" }, (c) => [c.stellar.networkPassphrase, c.stellar.horizonUrl], [Networks.PUBLIC, "https://horizon.stellar.org"]],
    [
      "custom network with passphrase and Horizon",
      { STELLAR_NETWORK: "custom", STELLAR_NETWORK_PASSPHRASE: "Standalone Network ; February 2017", HORIZON_URL: "http://localhost:8000/" },
      (c) => c.stellar,
      { network: "custom", networkPassphrase: "Standalone Network ; February 2017", horizonUrl: "http://localhost:8000", rpcUrl: undefined, detectionSource: "horizon", ingestMode: "streams" },
    ],
    [
      "a passphrase and Horizon alone, as a custom network",
      { STELLAR_NETWORK_PASSPHRASE: "Private ; 2026", HORIZON_URL: "http://127.0.0.1:9000" },
      (c) => c.stellar,
      { network: "custom", networkPassphrase: "Private ; 2026", horizonUrl: "http://127.0.0.1:9000", rpcUrl: undefined, detectionSource: "horizon", ingestMode: "streams" },
    ],
    [
      "the local network run as its own process",
      { STELLAR_NETWORK: "local", HORIZON_URL: "http://127.0.0.1:8000" },
      (c) => [c.stellar, c.localHorizon.inProcess],
      [{ network: "local", networkPassphrase: Networks.STANDALONE, horizonUrl: "http://127.0.0.1:8000", rpcUrl: undefined, detectionSource: "horizon", ingestMode: "streams" }, false],
    ],
    ["a 0 s monitoring window", { PAYMENT_MONITORING_WINDOW_S: "0" }, (c) => c.payments.monitoringWindowS, 0],
    ["account proof by default on the public network only", { STELLAR_NETWORK: "public" }, (c) => [c.merchants.requireAccountProof, loadConfig({}).merchants.requireAccountProof], [true, false]],
    ["account proof on testnet when asked", { REQUIRE_ACCOUNT_PROOF: "true" }, (c) => c.merchants.requireAccountProof, true],
    ["pool min equal to max", { DB_POOL_MAX: "5", DB_POOL_MIN: "5" }, (c) => [c.db.poolMax, c.db.poolMin], [5, 5]],
    ["postgresql:// URL", { DATABASE_URL: "postgresql://u:p@db:5432/lumenpay" }, (c) => c.databaseUrl, "postgresql://u:p@db:5432/lumenpay"],
    ["relative data dir", { LUMENPAY_DATA_DIR: "var/pg" }, (c) => c.dataDir, "/srv/lumenpay/var/pg"],
    ["yes/no booleans", { POOL_MONITORING_ENABLED: "yes" }, (c) => c.poolMonitoring.enabled, true],
    ["a real signing seed", { WEBHOOK_SIGNING_SEED: seed }, (c) => c.webhookSigningSeed, seed],
    ["blank values count as unset", { PORT: "  ", LOG_LEVEL: "" }, (c) => [c.port, c.logLevel], [4000, "info"]],
  ])("accepts %s", (_name, env, pick, expected) => {
    expect(pick(loadConfig(env, "/srv/lumenpay"))).toEqual(expected);
  });

  it.each<[string, Record<string, string>, string[]]>([
    ["a non-numeric PORT", { PORT: "http" }, ["PORT"]],
    ["a PORT out of range", { PORT: "70000" }, ["PORT"]],
    ["an unknown network", { STELLAR_NETWORK: "mainnet" }, ["STELLAR_NETWORK"]],
    ["custom network without passphrase and Horizon", { STELLAR_NETWORK: "custom" }, ["STELLAR_NETWORK_PASSPHRASE", "HORIZON_URL"]],
    ["custom network without Horizon", { STELLAR_NETWORK: "custom", STELLAR_NETWORK_PASSPHRASE: "x" }, ["HORIZON_URL"]],
    ["a passphrase on testnet", { STELLAR_NETWORK: "testnet", STELLAR_NETWORK_PASSPHRASE: "Test SDF Network ; September 2015" }, ["STELLAR_NETWORK_PASSPHRASE"]],
    ["a passphrase without its Horizon", { STELLAR_NETWORK_PASSPHRASE: "Test SDF Network ; September 2015" }, ["HORIZON_URL"]],
    ["a monitoring window over 30 days", { PAYMENT_MONITORING_WINDOW_S: "2592001" }, ["PAYMENT_MONITORING_WINDOW_S"]],
    ["DB_POOL_MIN above DB_POOL_MAX", { DB_POOL_MIN: "30" }, ["DB_POOL_MIN"]],
    ["a zero pool", { DB_POOL_MAX: "0" }, ["DB_POOL_MAX"]],
    ["a non-PostgreSQL DATABASE_URL", { DATABASE_URL: "mysql://db/lumenpay" }, ["DATABASE_URL"]],
    ["an unknown log level", { LOG_LEVEL: "verbose" }, ["LOG_LEVEL"]],
    ["an unknown log format", { LOG_FORMAT: "yaml" }, ["LOG_FORMAT"]],
    ["a non-boolean flag", { POOL_MONITORING_ENABLED: "maybe" }, ["POOL_MONITORING_ENABLED"]],
    ["a pool monitor interval under 1 s", { POOL_MONITORING_INTERVAL_MS: "10" }, ["POOL_MONITORING_INTERVAL_MS"]],
  ])("rejects %s", (_name, env, variables) => {
    const problems = problemsOf(env);
    expect(problems).toHaveLength(variables.length);
    variables.forEach((variable, i) => expect(problems[i]).toContain(variable));
  });

  it("names every offending variable in one error", () => {
    const env = { PORT: "abc", DB_POOL_MAX: "0", LOG_LEVEL: "loud", STELLAR_NETWORK: "custom", DATABASE_URL: "http://db" };
    let error: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { message, problems } = error as ConfigError;
    expect(problems).toHaveLength(6);
    for (const variable of ["PORT", "DB_POOL_MAX", "LOG_LEVEL", "STELLAR_NETWORK_PASSPHRASE", "HORIZON_URL", "DATABASE_URL"]) {
      expect(message).toContain(variable);
    }
  });

  it("does not echo a bad WEBHOOK_SIGNING_SEED", () => {
    const secret = "SDONOTPRINTTHIS7QWERTY";
    const problems = problemsOf({ WEBHOOK_SIGNING_SEED: secret });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("WEBHOOK_SIGNING_SEED");
    expect(problems.join("\n")).not.toContain(secret);
    // A seed from the wrong key type (a G… public key) is a classic mistake.
    expect(problemsOf({ WEBHOOK_SIGNING_SEED: Keypair.random().publicKey() })).toHaveLength(1);
  });
});

describe("the detection source", () => {
  const stellar = (env: Record<string, string>) => loadConfig(env).stellar;

  it("is Horizon while a Horizon is named or implied, and RPC when an RPC URL is all that is given", () => {
    expect(stellar({})).toMatchObject({ detectionSource: "horizon", rpcUrl: undefined });
    expect(stellar({ STELLAR_RPC_URL: "https://rpc.example.test/key123" })).toMatchObject({ detectionSource: "rpc", rpcUrl: "https://rpc.example.test/key123" });
    expect(stellar({ STELLAR_RPC_URL: "https://rpc.example.test", HORIZON_URL: "https://horizon.example.test" }).detectionSource).toBe("horizon");
    expect(stellar({ STELLAR_RPC_URL: "https://rpc.example.test", HORIZON_URL: "https://horizon.example.test", DETECTION_SOURCE: "rpc" }).detectionSource).toBe("rpc");
    // The local network serves both; Horizon stays the default there.
    expect(stellar({ STELLAR_NETWORK: "local" })).toMatchObject({ detectionSource: "horizon", rpcUrl: "http://127.0.0.1:8001" });
    expect(stellar({ STELLAR_NETWORK: "local", LOCAL_HORIZON_PORT: "9000", DETECTION_SOURCE: "rpc" })).toMatchObject({ detectionSource: "rpc", rpcUrl: "http://127.0.0.1:9001" });
  });

  it("follows Horizon with a stream per account unless told to use the ledger follower, which RPC always uses", () => {
    expect(stellar({}).ingestMode).toBe("streams");
    expect(stellar({ INGEST_MODE: "follower" })).toMatchObject({ detectionSource: "horizon", ingestMode: "follower" });
    expect(stellar({ STELLAR_RPC_URL: "https://rpc.example.test" }).ingestMode).toBe("follower");
    expect(problemsOf({ STELLAR_RPC_URL: "https://rpc.example.test", INGEST_MODE: "streams" })).toEqual([expect.stringContaining("INGEST_MODE=streams")]);
  });

  it("refuses RPC without an RPC URL, and an unknown source, without echoing the URL", () => {
    expect(problemsOf({ DETECTION_SOURCE: "rpc" })).toEqual([expect.stringContaining("STELLAR_RPC_URL")]);
    expect(problemsOf({ DETECTION_SOURCE: "carrier-pigeon" })).toEqual([expect.stringContaining("DETECTION_SOURCE")]);
    const problems = problemsOf({ STELLAR_RPC_URL: "ftp://rpc.example.test/secret-key" });
    expect(problems).toEqual([expect.stringContaining("STELLAR_RPC_URL")]);
    expect(problems.join("\n")).not.toContain("secret-key");
  });
});

describe("LUMENPAY_ROLES", () => {
  it.each<[string, Record<string, string>, string[]]>([
    ["every role when unset", {}, ["api", "deliver", "ingest", "maintenance"]],
    ["a subset", { LUMENPAY_ROLES: "deliver,ingest" }, ["deliver", "ingest"]],
    ["spaces, repeats and any order, kept in the documented order", { LUMENPAY_ROLES: " maintenance , api,api" }, ["api", "maintenance"]],
    ["WEBHOOK_WORKERS_ENABLED=false as leaving deliver out", { WEBHOOK_WORKERS_ENABLED: "false" }, ["api", "ingest", "maintenance"]],
    ["WEBHOOK_WORKERS_ENABLED=false with roles that leave deliver out", { WEBHOOK_WORKERS_ENABLED: "false", LUMENPAY_ROLES: "api" }, ["api"]],
  ])("accepts %s", (_name, env, roles) => {
    expect(loadConfig(env).roles).toEqual(roles);
  });

  it.each<[string, string, string[]]>([
    ["an unknown role, by name", "api,delivery", ['unknown role "delivery"']],
    ["each unknown role", "API,workers", ['unknown role "API"', 'unknown role "workers"']],
    ["an empty list", "", ["names no role"]],
    ["a list of commas", " , ,", ["names no role"]],
  ])("rejects %s", (_name, value, expected) => {
    const problems = problemsOf({ LUMENPAY_ROLES: value });
    expect(problems).toHaveLength(expected.length);
    expected.forEach((text, i) => {
      expect(problems[i]).toContain("LUMENPAY_ROLES");
      expect(problems[i]).toContain(text);
    });
  });

  it("rejects the deliver role together with WEBHOOK_WORKERS_ENABLED=false", () => {
    const problems = problemsOf({ LUMENPAY_ROLES: "api,deliver", WEBHOOK_WORKERS_ENABLED: "false" });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/WEBHOOK_WORKERS_ENABLED=false contradicts the deliver role/);
  });
});

describe("lumenpay start with a bad environment", () => {
  it("prints every problem without a stack trace and exits 2", async () => {
    const secret = "SNOTASEEDBUTSECRET";
    const result = await runCli(["start"], { PORT: "abc", LOG_LEVEL: "loud", WEBHOOK_SIGNING_SEED: secret });
    expect(result.code).toBe(2);
    for (const variable of ["PORT", "LOG_LEVEL", "WEBHOOK_SIGNING_SEED"]) expect(result.stderr).toContain(variable);
    expect(result.stderr).not.toContain(secret);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.stdout).toBe("");
  });

  it("refuses an unknown role given with --roles, naming it, and exits 2", async () => {
    const result = await runCli(["start", "--roles", "deliver,ingester"], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('LUMENPAY_ROLES: unknown role "ingester"');
    expect(result.stdout).toBe("");
  });
});
