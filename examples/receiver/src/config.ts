import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { DEFAULT_BODY_LIMIT, Webhook } from "@lumenpay/webhooks";
import { parseCidr, parseTrustProxy, type Cidr } from "./security/ip-allowlist.js";

/**
 * The receiver's whole configuration, read from the environment once (by `main.ts`) and validated
 * here. Every variable is documented in README.md.
 */
export interface Config {
  /** PORT: where to listen; 0 picks a free port. */
  port: number;
  /** HOST: the address to bind; unset binds every interface ("::" or "0.0.0.0", as Node chooses). */
  host: string | undefined;
  /** WEBHOOK_PATH: the route Lumenpay posts to. */
  webhookPath: string;
  /** WEBHOOK_SECRET / WEBHOOK_SECRETS: the endpoint's `whsec_` secrets (old and new while rotating). */
  secrets: string[];
  /** LUMENPAY_SIGNING_KEY: the platform's `G…` key, to accept its Ed25519 (`v1a`) signature. */
  signingKey: string | undefined;
  /** MAX_WEBHOOK_BODY_SIZE: bytes; a larger body is refused with 413 before it is read. */
  maxBodyBytes: number;
  replay: {
    /** ENABLE_REPLAY_PROTECTION: remember handled event ids and never run a handler twice for one. */
    enabled: boolean;
    /** REPLAY_TOLERANCE_SECONDS: how far the signed timestamp may be from this clock. */
    toleranceSeconds: number;
    /** REPLAY_DUPLICATE_MODE: answer a redelivered event with 200 ("acknowledge") or 409 ("reject"). */
    duplicateMode: "acknowledge" | "reject";
    /** REDIS_URL: share the replay store between instances; memory (this process only) otherwise. */
    redisUrl: string | undefined;
  };
  /** ENABLE_HELMET: security headers on every response. */
  helmet: boolean;
  rateLimit: {
    /** ENABLE_RATE_LIMITING */
    enabled: boolean;
    /** RATE_LIMIT_PER_MINUTE: requests per client IP per minute; allow-listed IPs are exempt. */
    perMinute: number;
  };
  /** ALLOWED_IPS: only these senders reach the webhook route (403 otherwise); empty allows all. */
  allowedIps: Cidr[];
  /** TRUST_PROXY: Express's "trust proxy"; false ignores X-Forwarded-For. */
  trustProxy: boolean | number | string;
  monitoring: {
    /** ENABLE_SECURITY_MONITORING: count rejections per IP and reason, alert on a threshold. */
    enabled: boolean;
    /** ALERT_THRESHOLD: rejections of one reason from one IP that raise an alert… */
    threshold: number;
    /** ALERT_WINDOW_SECONDS: …within this many seconds. */
    windowSeconds: number;
    /** SLACK_WEBHOOK_URL: where alerts are posted (Slack incoming webhook). */
    slackWebhookUrl: string | undefined;
    /** ALERT_EMAIL: named in every alert, for whoever reads the log or Slack channel. */
    alertEmail: string | undefined;
  };
  /** SSL_CERT_PATH + SSL_KEY_PATH, read at startup: serve HTTPS (TLS 1.2+) instead of HTTP. */
  tls: { cert: Buffer; key: Buffer } | undefined;
  /** WEBHOOK_TIMEOUT_MS: a handler running longer gets 503 and Lumenpay retries later. */
  handlerTimeoutMs: number;
  /** LOG_LEVEL */
  logLevel: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}\nSee examples/receiver/README.md.`);
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Reads variables and collects every problem, so one run names all of them. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value ? value : undefined;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max} (got "${value}")`);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    this.problems.push(`${name} must be true or false (got "${value}")`);
    return fallback;
  }

  oneOf<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if ((choices as readonly string[]).includes(value)) return value as T;
    this.problems.push(`${name} must be one of ${choices.join(", ")} (got "${value}")`);
    return fallback;
  }

  list(name: string): string[] {
    return (this.raw(name) ?? "")
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item.length > 0);
  }

  /** Never echoes the value: URLs of Slack webhooks and Redis carry credentials. */
  url(name: string, protocols: string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (URL.canParse(value) && protocols.includes(new URL(value).protocol)) return value;
    this.problems.push(`${name} must be a ${protocols.map((p) => p.slice(0, -1)).join(" or ")} URL`);
    return undefined;
  }

  file(name: string): Buffer | undefined {
    const path = this.raw(name);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      this.problems.push(`${name}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      return undefined;
    }
  }
}

function readSecrets(r: Reader): string[] {
  const one = r.raw("WEBHOOK_SECRET");
  const many = r.list("WEBHOOK_SECRETS");
  if (one !== undefined && many.length > 0) {
    r.problems.push("WEBHOOK_SECRET and WEBHOOK_SECRETS are both set; give one secret in WEBHOOK_SECRET or several in WEBHOOK_SECRETS");
    return [];
  }
  const secrets = one === undefined ? many : [one];
  const name = one === undefined ? "WEBHOOK_SECRETS" : "WEBHOOK_SECRET";
  for (const secret of secrets) {
    try {
      new Webhook({ secrets: [secret] });
    } catch (error) {
      // The package's message describes the shape expected, never the value.
      r.problems.push(`${name}: ${(error as Error).message}`);
      return [];
    }
  }
  return secrets;
}

function readSigningKey(r: Reader): string | undefined {
  const key = r.raw("LUMENPAY_SIGNING_KEY");
  if (key === undefined) return undefined;
  try {
    new Webhook({ publicKeys: [key] });
    return key;
  } catch (error) {
    r.problems.push(`LUMENPAY_SIGNING_KEY must be a Stellar public key (G…): ${(error as Error).message}`);
    return undefined;
  }
}

function readTls(r: Reader): Config["tls"] {
  const certSet = r.raw("SSL_CERT_PATH") !== undefined;
  const keySet = r.raw("SSL_KEY_PATH") !== undefined;
  if (certSet !== keySet) {
    r.problems.push("SSL_CERT_PATH and SSL_KEY_PATH go together: set both to serve HTTPS, or neither for HTTP");
    return undefined;
  }
  const cert = r.file("SSL_CERT_PATH");
  const key = r.file("SSL_KEY_PATH");
  if (!cert || !key) return undefined;
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    r.problems.push(`SSL_CERT_PATH / SSL_KEY_PATH: not a usable PEM certificate and matching key (${(error as Error).message})`);
    return undefined;
  }
  return { cert, key };
}

function readAllowedIps(r: Reader): Cidr[] {
  const cidrs: Cidr[] = [];
  for (const entry of r.list("ALLOWED_IPS")) {
    const cidr = parseCidr(entry);
    if (cidr) cidrs.push(cidr);
    else r.problems.push(`ALLOWED_IPS: "${entry}" is not an IPv4 or IPv6 address or CIDR (e.g. 203.0.113.0/24, 2001:db8::/32)`);
  }
  return cidrs;
}

function readTrustProxy(r: Reader): Config["trustProxy"] {
  const value = r.raw("TRUST_PROXY");
  if (value === undefined) return false;
  const parsed = parseTrustProxy(value);
  if (parsed === undefined) {
    r.problems.push(
      `TRUST_PROXY must be true, false, a number of proxy hops, or a comma-separated list of proxy addresses/CIDRs (or loopback, linklocal, uniquelocal) (got "${value}")`,
    );
    return false;
  }
  return parsed;
}

export function parseConfig(env: Env): Config {
  const r = new Reader(env);
  if (!["WEBHOOK_SECRET", "WEBHOOK_SECRETS", "LUMENPAY_SIGNING_KEY"].some((name) => r.raw(name) !== undefined)) {
    r.problems.push("WEBHOOK_SECRET (or WEBHOOK_SECRETS, or LUMENPAY_SIGNING_KEY) is required: the endpoint's whsec_… secret from Lumenpay");
  }
  const secrets = readSecrets(r);
  const signingKey = readSigningKey(r);
  const webhookPath = r.raw("WEBHOOK_PATH") ?? "/webhooks/lumenpay";
  if (!webhookPath.startsWith("/")) r.problems.push(`WEBHOOK_PATH must start with "/" (got "${webhookPath}")`);
  const slackWebhookUrl = r.url("SLACK_WEBHOOK_URL", ["https:", "http:"]);
  const alertEmail = r.raw("ALERT_EMAIL");
  if (alertEmail !== undefined && !/^[^\s@]+@[^\s@]+$/.test(alertEmail)) {
    r.problems.push(`ALERT_EMAIL must be an email address (got "${alertEmail}")`);
  }

  const config: Config = {
    port: r.int("PORT", 3000, 0, 65535),
    host: r.raw("HOST"),
    webhookPath,
    secrets,
    signingKey,
    maxBodyBytes: r.int("MAX_WEBHOOK_BODY_SIZE", DEFAULT_BODY_LIMIT, 1024, 64 * 1024 * 1024),
    replay: {
      enabled: r.bool("ENABLE_REPLAY_PROTECTION", true),
      toleranceSeconds: r.int("REPLAY_TOLERANCE_SECONDS", 300, 1, 3600),
      duplicateMode: r.oneOf("REPLAY_DUPLICATE_MODE", ["acknowledge", "reject"] as const, "acknowledge"),
      redisUrl: r.url("REDIS_URL", ["redis:", "rediss:"]),
    },
    helmet: r.bool("ENABLE_HELMET", true),
    rateLimit: {
      enabled: r.bool("ENABLE_RATE_LIMITING", true),
      perMinute: r.int("RATE_LIMIT_PER_MINUTE", 100, 1, 1_000_000),
    },
    allowedIps: readAllowedIps(r),
    trustProxy: readTrustProxy(r),
    monitoring: {
      enabled: r.bool("ENABLE_SECURITY_MONITORING", true),
      threshold: r.int("ALERT_THRESHOLD", 10, 1, 100_000),
      windowSeconds: r.int("ALERT_WINDOW_SECONDS", 300, 1, 86_400),
      slackWebhookUrl,
      alertEmail,
    },
    tls: readTls(r),
    // Lumenpay gives up on an answer after 15 s; a handler past that is retried anyway.
    handlerTimeoutMs: r.int("WEBHOOK_TIMEOUT_MS", 10_000, 100, 60_000),
    logLevel: r.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}
