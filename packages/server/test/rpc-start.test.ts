import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMerchant } from "../src/merchants/service.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { waitFor } from "./support/wait.js";
import { startReceiver } from "./support/receiver.js";
import { runCli, startServerProcess, type ServerProcess } from "./support/process.js";

/** `lumenpay start --network local` with DETECTION_SOURCE=rpc: payments are confirmed from the local network's Stellar RPC. */

let db: TestDatabase;
let dataDir: string;
let server: ServerProcess;
let apiUrl: string;
let apiKey: string;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-rpc-"));
  receiver = await startReceiver();
  apiKey = (await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date())).secret;
  server = startServerProcess(
    {
      DATABASE_URL: db.url,
      PORT: "0",
      LOG_LEVEL: "info",
      LUMENPAY_DATA_DIR: dataDir,
      LOCAL_HORIZON_PORT: "0",
      LOCAL_HORIZON_LEDGER_CLOSE_MS: "100",
      DETECTION_SOURCE: "rpc",
      METRICS_PUBLIC: "true",
      WEBHOOK_ALLOW_HTTP: "true",
      WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
      // Only a wake-up after the follower's commit can deliver within the test's wait.
      WEBHOOK_POLL_INTERVAL_MS: "120000",
    },
    ["--network", "local"],
  );
  apiUrl = (await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number")).url as string;
});
afterAll(async () => {
  if (server.child.exitCode === null) {
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
  }
  await receiver?.close();
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

const api = async (pathname: string, init: RequestInit = {}) =>
  fetch(`${apiUrl}${pathname}`, { ...init, headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", ...init.headers } });

describe("lumenpay start with DETECTION_SOURCE=rpc", { timeout: 90_000 }, () => {
  it("confirms a payment paid on the local network, tells the merchant at once, and says what it follows in /metrics", async () => {
    const endpoint = await api("/v1/webhook_endpoints", { method: "POST", body: JSON.stringify({ url: receiver.url, enabled_events: ["payment.confirmed"] }) });
    expect(endpoint.status).toBe(201);
    const created = await api("/v1/payments", { method: "POST", body: JSON.stringify({ amount: "3", asset: "XLM" }) });
    expect(created.status).toBe(201);
    const payment = (await created.json()) as { id: string };
    const paid = await runCli(["simulate", "pay", payment.id], { DATABASE_URL: db.url, LUMENPAY_DATA_DIR: dataDir });
    expect(paid.code, paid.stderr).toBe(0);
    await waitFor(async () => ((await (await api(`/v1/payments/${payment.id}`)).json()) as { status: string }).status === "confirmed", "the confirmation");
    const [webhook] = await receiver.waitFor(1);
    expect(JSON.parse(webhook!.body)).toMatchObject({ type: "payment.confirmed", data: { object: { id: payment.id, status: "confirmed" } } });

    const metrics = await (await fetch(`${apiUrl}/metrics`)).text();
    expect(Number(/^ingest_follower_ledger (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(1);
    expect(metrics).toMatch(/^ingest_retention_gap_ledgers 0$/m);
    expect(metrics).toMatch(/^stellar_rpc_requests_total\{method="getEvents"\} [1-9]/m);
    // One follower, and no Horizon ingestion with its per-account streams.
    expect(metrics).not.toMatch(/^horizon_streams_connected/m);
  });

  it("`lumenpay ingest backfill` finds nothing to fill while the RPC keeps every ledger", async () => {
    const result = await runCli(["ingest", "backfill", "--json"], { DATABASE_URL: db.url, LUMENPAY_DATA_DIR: dataDir, STELLAR_NETWORK: "local" });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
    const human = await runCli(["ingest", "backfill"], { DATABASE_URL: db.url, LUMENPAY_DATA_DIR: dataDir, STELLAR_NETWORK: "local" });
    expect(human.stdout).toContain("Nothing to fill");
  });
});
