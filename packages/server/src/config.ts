import { isIP } from "node:net";
import path from "node:path";
import { Keypair, Networks } from "@stellar/stellar-sdk";
import { parseCidrList, type CidrList } from "./webhooks/ssrf.js";
import { DEFAULT_RETRY_SCHEDULE_MS, parseRetrySchedule } from "./webhooks/retry.js";

/** What a `lumenpay start` process runs (docs/operations.md#process-roles), in this order. */
export const ROLES = ["api", "deliver", "ingest", "maintenance"] as const;
export type Role = (typeof ROLES)[number];

/**
 * The whole configuration of a Lumenpay process, parsed once from the environment.
 * Every key is documented in `.env.example` and docs/operations.md.
 */
export interface Config {
  /** NODE_ENV=production: what is open for convenience in development (metrics, localhost home domains) is closed. */
  production: boolean;
  /**
   * What this process runs, in `ROLES` order, never empty: `api` the HTTP API (without it only
   * /health, /ready and /metrics answer), `deliver` the webhook delivery worker, `ingest` Stellar
   * ingestion, `maintenance` the periodic jobs (expiry, recoveries, purges).
   */
  roles: Role[];
  /** TCP port of the HTTP API. */
  port: number;
  /** Interface the HTTP API binds to. */
  host: string;
  /** Base URL customers and merchants reach this server at (payment links are built from it). */
  publicBaseUrl: string;
  /** External PostgreSQL; when absent an embedded PostgreSQL is started in `dataDir`. */
  databaseUrl: string | undefined;
  /**
   * A direct connection to the same database, for LISTEN and the ingestion locks, when `databaseUrl`
   * goes through a transaction pooler; defaults to `databaseUrl` when that is not a pooler.
   */
  databaseDirectUrl: string | undefined;
  /** Where the embedded PostgreSQL keeps its data (and where the CLI finds a running one). */
  dataDir: string;
  stellar: {
    /**
     * `local` is the standalone network: without HORIZON_URL a local Horizon runs in-process (see
     * `localHorizon`) and `start` sets horizonUrl to where it listens; with it, that one (`lumenpay network start`) is used.
     */
    network: "testnet" | "public" | "custom" | "local";
    networkPassphrase: string;
    horizonUrl: string;
    /** Stellar RPC, when set (`STELLAR_RPC_URL`; with `local`, the local network's). */
    rpcUrl: string | undefined;
    /** Where payments are detected: Horizon, or Stellar RPC's CAP-67 events. */
    detectionSource: "horizon" | "rpc";
    /** `streams`: a Horizon stream per account; `follower`: one ledger follower for every account (the only way with RPC). */
    ingestMode: "streams" | "follower";
  };
  /** The local network run in-process with STELLAR_NETWORK=local and no HORIZON_URL (`lumenpay start --network local`). */
  localHorizon: {
    /** False when HORIZON_URL names a local network running as its own process. */
    inProcess: boolean;
    /** Port of its Horizon on 127.0.0.1; 0 picks a free one. */
    port: number;
    /** How often it closes a ledger. */
    ledgerCloseMs: number;
  };
  /** The local network's Stellar RPC, served next to its Horizon (in-process or by `lumenpay network start`). */
  localRpc: {
    /** Port on 127.0.0.1: by default the one after the local Horizon's; 0 picks a free one. */
    port: number;
  };
  payments: {
    /**
     * Default of a payment's `monitor_for`: how long after `expires_at` operations are still matched
     * to it (recorded as late); later ones are unmatched.
     */
    monitoringWindowS: number;
  };
  merchants: {
    /** Attaching an account through the API needs a signed challenge (proof of control). */
    requireAccountProof: boolean;
  };
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** `json` (one object per line), `pretty` (for people), or `auto`: pretty when stdout is a terminal. */
  logFormat: "json" | "pretty" | "auto";
  db: {
    /** `transaction`: DATABASE_URL is a transaction-mode pooler (PgBouncer, Supabase, Neon): no session state. */
    pooler: "none" | "transaction";
    poolMax: number;
    poolMin: number;
    idleTimeoutMs: number;
    connectionTimeoutMs: number;
    statementTimeoutMs: number;
  };
  poolMonitoring: { enabled: boolean; intervalMs: number };
  /** Bearer token required on /metrics when set. */
  metricsToken: string | undefined;
  /** /metrics without a token even in production (it never carries merchant data). */
  metricsPublic: boolean;
  /** DNS servers (`host` or `host:port`) that domain checks ask; empty: the system's resolver. */
  dnsServers: string[];
  /** How long in-flight requests may take to finish after SIGTERM. */
  shutdownTimeoutMs: number;
  /** Platform ed25519 key (a Stellar S… seed) that signs webhooks; its G… key is published. */
  webhookSigningSeed: string | undefined;
  webhooks: {
    /** Allow http:// endpoint URLs (development only). */
    allowHttp: boolean;
    /** Whole-request timeout for one delivery attempt. */
    timeoutMs: number;
    /**
     * How long a claimed delivery stays locked to its worker: a dead worker's deliveries go back to
     * the queue after it. At least twice `timeoutMs`, so a live worker never loses one mid-attempt.
     */
    leaseMs: number;
    /** Delays after the first attempt; its length + 1 is the number of attempts. */
    retryScheduleMs: number[];
    /** An endpoint failing continuously this long is disabled. */
    disableAfterHours: number;
    /** How long the previous secret keeps signing after a rotation, by default. */
    secretRotationGraceHours: number;
    /** Attempt logs older than this are purged. */
    logRetentionDays: number;
    /** Events, finished deliveries and finished recoveries older than this are purged. */
    eventRetentionDays: number;
    /** Concurrent requests to one endpoint, so one slow merchant cannot hold up the others. */
    maxConcurrentPerEndpoint: number;
    /** Concurrent deliveries per process. */
    workerConcurrency: number;
    /**
     * How often an idle delivery worker looks for due deliveries without being woken: the delay of a
     * first attempt when a wake-up was lost, and of every retry as it falls due.
     */
    pollIntervalMs: number;
    /** Addresses deliveries may reach despite the SSRF policy (e.g. 127.0.0.0/8 in development). */
    allowedCidrs: CidrList;
    /** 32-byte key (base64 or hex) that encrypts endpoint secrets at rest. */
    encryptionKey: Buffer | undefined;
  };
  api: {
    /** Requests per minute allowed for one API key before 429, across every instance. */
    rateLimitPerMinute: number;
    /** Requests without a valid API key allowed per client address per minute (per instance) before 429. */
    invalidKeyLimitPerMinute: number;
    /** Grace period during which a rotated API key keeps working. */
    keyRotationGraceHours: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

const HORIZON_URLS = {
  testnet: "https://horizon-testnet.stellar.org",
  public: "https://horizon.stellar.org",
} as const;

/** The longest monitoring window, for PAYMENT_MONITORING_WINDOW_S and a payment's `monitor_for`: 30 days. */
export const MAX_MONITORING_WINDOW_S = 30 * 86_400;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Collects every problem before failing, so an operator fixes the environment in one pass. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  }

  int(name: string, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      this.problems.push(`${name} must be an integer between ${min} and ${max} (got "${value}")`);
      return fallback;
    }
    return Number(value);
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (["true", "1", "yes"].includes(value)) return true;
    if (["false", "0", "no"].includes(value)) return false;
    this.problems.push(`${name} must be true or false (got "${value}")`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      this.problems.push(`${name} must be one of ${allowed.join(", ")} (got "${value}")`);
      return fallback;
    }
    return value as T;
  }

  retrySchedule(name: string, fallback: number[]): number[] {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = parseRetrySchedule(value);
    if (!parsed.ok) {
      this.problems.push(`${name}: ${parsed.error}`);
      return fallback;
    }
    return parsed.value;
  }

  cidrs(name: string): CidrList {
    const value = this.raw(name);
    if (value === undefined) return [];
    const parsed = parseCidrList(value);
    if (!parsed.ok) {
      this.problems.push(`${name}: ${parsed.error}`);
      return [];
    }
    return parsed.value;
  }

  /** A 32-byte key given as base64 or hex; never echoed, it is a secret. */
  key32(name: string): Buffer | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const key = /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, "hex") : Buffer.from(value, "base64");
    if (key.length !== 32) {
      this.problems.push(`${name} must be 32 bytes, base64- or hex-encoded (e.g. openssl rand -base64 32)`);
      return undefined;
    }
    return key;
  }

  /** LUMENPAY_ROLES: a comma-separated list of `ROLES`; set but naming none is a mistake, not "all". */
  roles(name: string): Role[] {
    const value = this.env[name];
    if (value === undefined) return [...ROLES];
    const named = value.split(",").map((s) => s.trim()).filter(Boolean);
    const unknown = named.filter((role) => !(ROLES as readonly string[]).includes(role));
    for (const role of unknown) this.problems.push(`${name}: unknown role "${role}" (roles are ${ROLES.join(", ")})`);
    if (named.length === 0) this.problems.push(`${name} names no role; list some of ${ROLES.join(", ")}, or unset it for all of them`);
    return unknown.length > 0 || named.length === 0 ? [...ROLES] : ROLES.filter((role) => named.includes(role));
  }

  url(name: string, fallback: string | undefined, protocols: string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    try {
      const parsed = new URL(value);
      if (!protocols.includes(parsed.protocol)) throw new Error("protocol");
      return value.replace(/\/+$/, "");
    } catch {
      this.problems.push(`${name} must be a ${protocols.join(" or ")} URL`);
      return fallback;
    }
  }
}

export function loadConfig(env: Env, cwd: string = process.cwd()): Config {
  const r = new Reader(env);
  const port = r.int("PORT", 4000, { min: 0, max: 65535 });

  const customPassphrase = r.raw("STELLAR_NETWORK_PASSPHRASE");
  // A passphrase alone names a network of its own.
  const network = r.oneOf("STELLAR_NETWORK", ["testnet", "public", "custom", "local"] as const, customPassphrase ? "custom" : "testnet");
  const horizonUrl = r.url("HORIZON_URL", undefined, ["http:", "https:"]);
  const localHorizonPort = r.int("LOCAL_HORIZON_PORT", 8000, { max: 65535 });
  // Next to the Horizon (8001), and free too when the Horizon's port is picked (0), so that two networks never collide.
  const localRpcPort = r.int("LOCAL_RPC_PORT", localHorizonPort === 0 ? 0 : localHorizonPort + 1, { max: 65535 });
  if (localRpcPort > 65535) r.problems.push("LOCAL_RPC_PORT must be set when LOCAL_HORIZON_PORT is 65535 (it defaults to the next port)");
  const rpcUrl = r.url("STELLAR_RPC_URL", network === "local" && horizonUrl === undefined ? `http://127.0.0.1:${localRpcPort}` : undefined, ["http:", "https:"]);
  // RPC when it is all that was given; Horizon while a Horizon is named or implied by the network.
  const detectionSource = r.oneOf("DETECTION_SOURCE", ["horizon", "rpc"] as const, rpcUrl !== undefined && horizonUrl === undefined && network !== "local" ? "rpc" : "horizon");
  if (detectionSource === "rpc" && rpcUrl === undefined) r.problems.push("DETECTION_SOURCE=rpc needs STELLAR_RPC_URL");
  const ingestMode = r.oneOf("INGEST_MODE", ["streams", "follower"] as const, detectionSource === "rpc" ? "follower" : "streams");
  if (detectionSource === "rpc" && ingestMode === "streams") r.problems.push("INGEST_MODE=streams is for Horizon only: Stellar RPC is read by the follower");
  let networkPassphrase: string = network === "public" ? Networks.PUBLIC : network === "local" ? Networks.STANDALONE : Networks.TESTNET;
  if (network === "custom") {
    if (!customPassphrase) r.problems.push("STELLAR_NETWORK_PASSPHRASE is required when STELLAR_NETWORK=custom");
    if (!horizonUrl) r.problems.push("HORIZON_URL is required when STELLAR_NETWORK=custom");
    networkPassphrase = customPassphrase ?? "";
  } else if (customPassphrase) {
    r.problems.push("STELLAR_NETWORK_PASSPHRASE is only allowed with STELLAR_NETWORK=custom");
  }

  const poolMax = r.int("DB_POOL_MAX", 20, { min: 1, max: 1000 });
  const poolMin = r.int("DB_POOL_MIN", 2, { min: 0, max: 1000 });
  if (poolMin > poolMax) r.problems.push(`DB_POOL_MIN (${poolMin}) must not exceed DB_POOL_MAX (${poolMax})`);

  const signingSeed = r.raw("WEBHOOK_SIGNING_SEED");
  if (signingSeed !== undefined) {
    try {
      Keypair.fromSecret(signingSeed);
    } catch {
      // Never echo the value: it is a secret.
      r.problems.push("WEBHOOK_SIGNING_SEED must be a Stellar secret seed (S…)");
    }
  }

  const webhookTimeoutMs = r.int("WEBHOOK_TIMEOUT_MS", 15_000, { min: 100, max: 120_000 });
  const webhookLeaseMs = r.int("WEBHOOK_LEASE_MS", webhookTimeoutMs * 2 + 30_000, { min: 1 });
  if (webhookLeaseMs < webhookTimeoutMs * 2) {
    r.problems.push(`WEBHOOK_LEASE_MS (${webhookLeaseMs}) must be at least twice WEBHOOK_TIMEOUT_MS (${webhookTimeoutMs})`);
  }

  const dnsServers = (r.raw("DNS_SERVERS") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const server of dnsServers) {
    if (!isIP(server) && !/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}$/.test(server)) {
      r.problems.push(`DNS_SERVERS must list IP addresses, each with an optional port (1.1.1.1, 127.0.0.1:5353, [::1]:53); got "${server}"`);
    }
  }

  let roles = r.roles("LUMENPAY_ROLES");
  // The variable LUMENPAY_ROLES replaced: false still leaves the delivery worker out.
  if (!r.bool("WEBHOOK_WORKERS_ENABLED", true)) {
    if (r.raw("LUMENPAY_ROLES")?.split(",").some((role) => role.trim() === "deliver")) {
      r.problems.push("WEBHOOK_WORKERS_ENABLED=false contradicts the deliver role in LUMENPAY_ROLES (or --roles); unset WEBHOOK_WORKERS_ENABLED");
    }
    roles = roles.filter((role) => role !== "deliver");
  }

  const config: Config = {
    roles,
    production: r.raw("NODE_ENV") === "production",
    port,
    host: r.raw("HOST") ?? "127.0.0.1",
    publicBaseUrl: r.url("PUBLIC_BASE_URL", `http://localhost:${port}`, ["http:", "https:"])!,
    databaseUrl: r.url("DATABASE_URL", undefined, ["postgres:", "postgresql:"]),
    databaseDirectUrl: r.url("DATABASE_DIRECT_URL", undefined, ["postgres:", "postgresql:"]),
    dataDir: path.resolve(cwd, r.raw("LUMENPAY_DATA_DIR") ?? ".lumenpay"),
    stellar: {
      network,
      networkPassphrase,
      horizonUrl:
        horizonUrl ?? (network === "local" ? `http://127.0.0.1:${localHorizonPort}` : network === "custom" ? "" : HORIZON_URLS[network]),
      rpcUrl,
      detectionSource,
      ingestMode,
    },
    localHorizon: {
      inProcess: network === "local" && horizonUrl === undefined,
      port: localHorizonPort,
      ledgerCloseMs: r.int("LOCAL_HORIZON_LEDGER_CLOSE_MS", 1000, { min: 10, max: 60_000 }),
    },
    localRpc: { port: localRpcPort },
    payments: {
      monitoringWindowS: r.int("PAYMENT_MONITORING_WINDOW_S", 86_400, { max: MAX_MONITORING_WINDOW_S }),
    },
    merchants: {
      requireAccountProof: r.bool("REQUIRE_ACCOUNT_PROOF", network === "public"),
    },
    logLevel: r.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    logFormat: r.oneOf("LOG_FORMAT", ["json", "pretty", "auto"] as const, "auto"),
    db: {
      pooler: r.oneOf("DATABASE_POOLER", ["none", "transaction"] as const, "none"),
      poolMax,
      poolMin,
      idleTimeoutMs: r.int("DB_IDLE_TIMEOUT_MS", 30_000),
      connectionTimeoutMs: r.int("DB_CONNECTION_TIMEOUT_MS", 5_000),
      statementTimeoutMs: r.int("DB_STATEMENT_TIMEOUT_MS", 30_000),
    },
    poolMonitoring: {
      enabled: r.bool("POOL_MONITORING_ENABLED", false),
      intervalMs: r.int("POOL_MONITORING_INTERVAL_MS", 60_000, { min: 1000 }),
    },
    metricsToken: r.raw("METRICS_TOKEN"),
    metricsPublic: r.bool("METRICS_PUBLIC", false),
    dnsServers,
    shutdownTimeoutMs: r.int("SHUTDOWN_TIMEOUT_MS", 10_000, { min: 0 }),
    webhookSigningSeed: signingSeed,
    webhooks: {
      allowHttp: r.bool("WEBHOOK_ALLOW_HTTP", false),
      timeoutMs: webhookTimeoutMs,
      leaseMs: webhookLeaseMs,
      retryScheduleMs: r.retrySchedule("WEBHOOK_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE_MS),
      disableAfterHours: r.int("WEBHOOK_DISABLE_AFTER_HOURS", 120, { min: 1 }),
      secretRotationGraceHours: r.int("WEBHOOK_SECRET_ROTATION_GRACE_HOURS", 24, { min: 0, max: 24 * 30 }),
      logRetentionDays: r.int("WEBHOOK_LOG_RETENTION_DAYS", 30, { min: 1 }),
      eventRetentionDays: r.int("WEBHOOK_EVENT_RETENTION_DAYS", 30, { min: 1 }),
      maxConcurrentPerEndpoint: r.int("WEBHOOK_MAX_CONCURRENT_PER_ENDPOINT", 10, { min: 1, max: 1000 }),
      workerConcurrency: r.int("WEBHOOK_WORKER_CONCURRENCY", 200, { min: 1, max: 10_000 }),
      pollIntervalMs: r.int("WEBHOOK_POLL_INTERVAL_MS", 1000, { min: 10, max: 3_600_000 }),
      allowedCidrs: r.cidrs("WEBHOOK_ALLOWED_CIDRS"),
      encryptionKey: r.key32("LUMENPAY_ENCRYPTION_KEY"),
    },
    api: {
      rateLimitPerMinute: r.int("API_RATE_LIMIT_PER_MINUTE", 600, { min: 1 }),
      invalidKeyLimitPerMinute: r.int("API_INVALID_KEY_LIMIT_PER_MINUTE", 60, { min: 1 }),
      keyRotationGraceHours: r.int("API_KEY_ROTATION_GRACE_HOURS", 24, { min: 0, max: 24 * 365 }),
    },
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}
