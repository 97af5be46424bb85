import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import selfsigned from "selfsigned";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config.js";
import { OTHER_SECRET, paymentEvent, SECRET, signed } from "./support/fixtures.js";
import { spawnNode } from "./support/process.js";
import { send } from "./support/receiver.js";

const RECEIVER_DIR = fileURLToPath(new URL("..", import.meta.url));

function problems(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("parseConfig", () => {
  it("has the documented defaults", () => {
    const config = parseConfig({ WEBHOOK_SECRET: SECRET });
    expect(config).toMatchObject({
      port: 3000,
      host: undefined,
      webhookPath: "/webhooks/lumenpay",
      secrets: [SECRET],
      signingKey: undefined,
      maxBodyBytes: 1024 * 1024,
      replay: { enabled: true, toleranceSeconds: 300, duplicateMode: "acknowledge", redisUrl: undefined },
      helmet: true,
      rateLimit: { enabled: true, perMinute: 100 },
      allowedIps: [],
      trustProxy: false,
      monitoring: { enabled: true, threshold: 10, windowSeconds: 300, slackWebhookUrl: undefined, alertEmail: undefined },
      tls: undefined,
      handlerTimeoutMs: 10_000,
      logLevel: "info",
    });
  });

  it("takes several secrets for rotation, CIDR lists and proxy settings", () => {
    const config = parseConfig({
      WEBHOOK_SECRETS: `${SECRET}, ${OTHER_SECRET}`,
      ALLOWED_IPS: "203.0.113.0/24, 2001:db8::/32, 198.51.100.7",
      TRUST_PROXY: "loopback, 10.0.0.0/8",
    });
    expect(config.secrets).toEqual([SECRET, OTHER_SECRET]);
    expect(config.allowedIps).toEqual([
      { address: "203.0.113.0", prefix: 24, family: "ipv4" },
      { address: "2001:db8::", prefix: 32, family: "ipv6" },
      { address: "198.51.100.7", prefix: 32, family: "ipv4" },
    ]);
    expect(config.trustProxy).toBe("loopback,10.0.0.0/8");
    expect(parseConfig({ WEBHOOK_SECRET: SECRET, TRUST_PROXY: "2" }).trustProxy).toBe(2);
    expect(parseConfig({ WEBHOOK_SECRET: SECRET, TRUST_PROXY: "true" }).trustProxy).toBe(true);
  });

  it("names every bad variable at once, and never echoes a secret", () => {
    const secret = "whsec_!!not-base64!!";
    const found = problems({
      WEBHOOK_SECRET: secret,
      PORT: "http",
      ALLOWED_IPS: "10.0.0.0/8, 10.0.0.0/33",
      ENABLE_HELMET: "maybe",
      REPLAY_DUPLICATE_MODE: "ignore",
      REDIS_URL: "http://user:hunter2@cache:6379",
      SSL_KEY_PATH: "/tmp/key.pem",
    });
    expect(found.map((p) => p.split(/[ :]/)[0]).sort()).toEqual(
      ["ALLOWED_IPS", "ENABLE_HELMET", "PORT", "REDIS_URL", "REPLAY_DUPLICATE_MODE", "SSL_CERT_PATH", "WEBHOOK_SECRET"].sort(),
    );
    expect(found.join("\n")).not.toContain("not-base64");
    expect(found.join("\n")).not.toContain("hunter2");
  });

  it("needs a secret or signing key, and refuses both WEBHOOK_SECRET and WEBHOOK_SECRETS", () => {
    expect(problems({})).toEqual([expect.stringMatching(/^WEBHOOK_SECRET \(or WEBHOOK_SECRETS, or LUMENPAY_SIGNING_KEY\) is required/)]);
    expect(problems({ WEBHOOK_SECRET: SECRET, WEBHOOK_SECRETS: OTHER_SECRET })).toEqual([
      expect.stringContaining("WEBHOOK_SECRET and WEBHOOK_SECRETS are both set"),
    ]);
    expect(problems({ LUMENPAY_SIGNING_KEY: "GNOTAKEY" })).toEqual([expect.stringMatching(/^LUMENPAY_SIGNING_KEY must be a Stellar public key/)]);
  });

  it("reads the certificate and key, and refuses a key that does not match the certificate", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "receiver-config-"));
    try {
      const [a, b] = await Promise.all([selfsigned.generate(undefined, { keySize: 2048 }), selfsigned.generate(undefined, { keySize: 2048 })]);
      await writeFile(path.join(dir, "a.crt"), a.cert);
      await writeFile(path.join(dir, "a.key"), a.private);
      await writeFile(path.join(dir, "b.key"), b.private);
      const env = { WEBHOOK_SECRET: SECRET, SSL_CERT_PATH: path.join(dir, "a.crt") };
      expect(parseConfig({ ...env, SSL_KEY_PATH: path.join(dir, "a.key") }).tls?.cert.toString()).toBe(a.cert);
      expect(problems({ ...env, SSL_KEY_PATH: path.join(dir, "b.key") })).toEqual([expect.stringMatching(/^SSL_CERT_PATH \/ SSL_KEY_PATH: not a usable/)]);
      expect(problems({ ...env, SSL_KEY_PATH: path.join(dir, "missing.key") })).toEqual([
        `SSL_KEY_PATH: cannot read ${path.join(dir, "missing.key")} (ENOENT)`,
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** `npm start`'s command, `node --import tsx src/main.ts`, as a child process with only `env`. */
const startProcess = (env: Record<string, string>) => spawnNode(["--import", "tsx", "src/main.ts"], { env, cwd: RECEIVER_DIR });

describe("the receiver process (npm start)", { timeout: 60_000 }, () => {
  it("exits 2 with one message naming every bad variable", async () => {
    const run = startProcess({ WEBHOOK_SECRET: "nope", PORT: "-1", TRUST_PROXY: "sometimes" });
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toMatch(/^Invalid configuration:\n/);
    for (const name of ["WEBHOOK_SECRET", "PORT", "TRUST_PROXY"]) expect(run.stderr()).toContain(`  - ${name}`);
    expect(run.stderr()).not.toContain("nope");
    expect(run.lines).toEqual([]);
  });

  it("serves from the environment, and on SIGTERM finishes and exits 0", async () => {
    const run = startProcess({ WEBHOOK_SECRET: SECRET, PORT: "0", HOST: "127.0.0.1" });
    try {
      const { url } = (await run.waitForLine((line) => line.kind === "receiver.started")) as { url: string };
      const event = paymentEvent();
      expect((await send(url, signed(event))).json()).toEqual({ status: "processed" });
      run.child.kill("SIGTERM");
      expect(await run.exited).toBe(0);
      expect(run.lines).toContainEqual(expect.objectContaining({ kind: "order.updated", webhook_id: event.id, state: "paid" }));
      // The answer's own log line may land after shutdown began; what matters is a clean stop after the work.
      const stopped = run.lines.findIndex((line) => line.kind === "receiver.stopped");
      const handled = run.lines.findIndex((line) => line.kind === "order.updated");
      expect(stopped).toBeGreaterThan(handled);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  });
});
