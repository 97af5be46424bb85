import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { publicKeyFromSeed } from "@lumenpay/webhooks";
import { runNode, spawnNode, type JsonProcess } from "./support/process.js";
import { rejections, startTestReceiver, type TestReceiver } from "./support/receiver.js";

/**
 * A real Lumenpay server (`lumenpay start --network local`: its own local Horizon, Horizon
 * ingestion, the webhook worker) confirms a real payment, and the reference receiver, registered as
 * its endpoint, verifies and handles the events it is sent.
 */

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const LUMENPAY = path.join(ROOT, "packages/server/bin/lumenpay.js");
const DATABASE = `lumenpay_e2e_${randomBytes(6).toString("hex")}`;

let adminUrl: string;
let dataDir: string;
let env: Record<string, string>;
let lumenpay: JsonProcess | undefined;
let apiUrl: string;
let receiver: TestReceiver | undefined;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Polls `check` until it returns something. Failing after `timeoutMs`, it shows Lumenpay's own
 * log (requests left out), which says whether ingestion and the webhook worker ran.
 */
async function eventually<T>(what: string, check: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const log = lumenpay?.lines.filter((line) => !("req" in line) && !("res" in line)).map((line) => JSON.stringify(line));
      throw new Error(`timed out waiting for ${what}; Lumenpay logged:\n${log?.slice(-30).join("\n")}\n${lumenpay?.stderr()}`);
    }
    await sleep(50);
  }
}

beforeAll(async () => {
  adminUrl = inject("testDatabaseUrl");
  await admin(`create database ${DATABASE}`);
  const databaseUrl = new URL(adminUrl);
  databaseUrl.pathname = `/${DATABASE}`;
  dataDir = await mkdtemp(path.join(os.tmpdir(), "receiver-e2e-"));
  env = { DATABASE_URL: databaseUrl.toString(), LUMENPAY_DATA_DIR: dataDir };
  lumenpay = spawnNode([LUMENPAY, "start", "--network", "local"], {
    cwd: ROOT,
    env: {
      ...env,
      PORT: "0",
      LOG_LEVEL: "info",
      LOCAL_HORIZON_PORT: "0",
      LOCAL_HORIZON_LEDGER_CLOSE_MS: "100",
      // The receiver is plain HTTP on loopback, which Lumenpay refuses unless told otherwise.
      WEBHOOK_ALLOW_HTTP: "true",
      WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
    },
  });
  apiUrl = (await lumenpay.waitForLine((line) => typeof line.url === "string" && typeof line.port === "number")).url as string;
}, 120_000);

afterAll(async () => {
  await receiver?.close();
  if (lumenpay && lumenpay.child.exitCode === null) {
    lumenpay.child.kill("SIGTERM");
    await lumenpay.exited;
  }
  await admin(`drop database if exists ${DATABASE} with (force)`);
  await rm(dataDir, { recursive: true, force: true });
});

describe("Lumenpay → reference receiver", { timeout: 120_000 }, () => {
  it("delivers payment.created and, once the payment is paid on-chain, payment.confirmed; the receiver verifies and handles both", async () => {
    const cli = (args: string[]) => runNode([LUMENPAY, ...args], { cwd: ROOT, env });
    const account = publicKeyFromSeed(randomBytes(32));
    const created = await cli(["merchants", "create", "--name", "E2E Shop", "--email", "shop@e2e.test", "--account", account, "--json"]);
    expect(created.code, created.stderr).toBe(0);
    const { api_key: apiKey } = JSON.parse(created.stdout) as { api_key: string };

    const api = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(`${apiUrl}${route}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    // The receiver needs the endpoint's secret and Lumenpay the receiver's URL: register first with a
    // placeholder URL (no event is sent before the payment exists), then point it at the receiver.
    const endpoint = await api("POST", "/v1/webhook_endpoints", { url: "http://127.0.0.1:9/placeholder", enabled_events: ["*"] });
    expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
    receiver = await startTestReceiver({ WEBHOOK_SECRET: endpoint.body.secret as string });
    const moved = await api("PATCH", `/v1/webhook_endpoints/${endpoint.body.id as string}`, { url: receiver.url });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);

    const payment = await api("POST", "/v1/payments", { amount: "12.5", asset: "XLM", metadata: { order_id: "order-e2e" } });
    expect(payment.status, JSON.stringify(payment.body)).toBe(201);
    const paymentId = payment.body.id as string;
    const r = receiver;
    await eventually("payment.created at the receiver", () => r.orders.get(paymentId));
    expect(r.orders.get(paymentId)).toMatchObject({ state: "awaiting_payment", orderId: "order-e2e", amountReceived: "0" });

    const paid = await cli(["simulate", "pay", paymentId, "--json"]);
    expect(paid.code, paid.stderr).toBe(0);
    // Lumenpay picks up a new merchant account within 10 s, then confirms on the next ledger.
    await eventually("payment.confirmed at the receiver", () => (r.orders.get(paymentId)?.state === "paid" ? true : undefined), 60_000);

    expect(r.orders.history.filter((update) => update.paymentId === paymentId)).toEqual([
      expect.objectContaining({ state: "awaiting_payment", sequence: 1 }),
      expect.objectContaining({ state: "paid", orderId: "order-e2e", amountReceived: "12.5", sequence: 2 }),
    ]);
    const answered = r.logs.filter((line) => line.kind === "webhook.answered");
    expect(answered.map((line) => [line.event_type, line.status])).toEqual([
      ["payment.created", 200],
      ["payment.confirmed", 200],
    ]);
    expect(rejections(r)).toEqual([]);
    expect(r.rawLogs()).not.toContain((endpoint.body.secret as string).slice("whsec_".length));
  });
});
