import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Horizon, Keypair } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMerchant } from "../src/merchants/service.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { pastTheSecondOf } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";
import { runCli, startNetworkProcess, startServerProcess, type ServerProcess } from "./support/process.js";
import { startReceiver } from "./support/receiver.js";

/**
 * The whole path with real processes and real waiting: the local network runs as its own process
 * while Lumenpay is stopped past a payment's expiry and started again. What each payment becomes
 * must follow from when its operations closed, not from when Lumenpay came back.
 */

let db: TestDatabase;
let dataDir: string;
const children: ServerProcess[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-restart-"));
});
afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null) child.child.kill("SIGKILL");
  await rm(dataDir, { recursive: true, force: true });
  await db?.drop();
});

interface PaymentJson {
  id: string;
  status: string;
  memo: string;
  created_at: string;
  expires_at: string;
  settlements: Array<{ late: boolean }>;
}

const until = (at: number, what: string) => waitFor(async () => Date.now() >= at, what, at - Date.now() + 10_000);

describe("payment states across a Lumenpay restart", () => {
  it("confirms what was paid in time while Lumenpay was down, records what was late, and never settles a reused memo", { timeout: 240_000 }, async () => {
    const network = startNetworkProcess({ LOG_LEVEL: "info", LUMENPAY_DATA_DIR: path.join(dataDir, "network"), LOCAL_HORIZON_PORT: "0", LOCAL_HORIZON_LEDGER_CLOSE_MS: "250" });
    children.push(network);
    const horizonUrl = (await network.waitForLog((line) => typeof line.horizon_url === "string")).horizon_url as string;
    const receiver = await startReceiver();
    const env = {
      DATABASE_URL: db.url,
      PORT: "0",
      LOG_LEVEL: "info",
      LUMENPAY_DATA_DIR: path.join(dataDir, "lumenpay"),
      HORIZON_URL: horizonUrl,
      WEBHOOK_ALLOW_HTTP: "true",
      WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
    };
    const startLumenpay = async () => {
      const server = startServerProcess(env, ["--network", "local"]);
      children.push(server);
      const ready = await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number");
      return { server, url: ready.url as string };
    };
    const pay = async (memo: { type: string; value: string }) => {
      const paid = await runCli(
        ["simulate", "pay", "--destination", account, "--amount", "5", "--memo-type", memo.type, "--memo", memo.value, "--horizon-url", horizonUrl, "--json"],
        { LOG_LEVEL: "silent" },
      );
      expect(paid.code, paid.stderr).toBe(0);
    };

    const account = Keypair.random().publicKey();
    const funded = await new Horizon.Server(horizonUrl, { allowHttp: true }).friendbot(account).call();
    await pastTheSecondOf(funded.created_at);
    const { secret } = await createMerchant(db.pool, { name: "Shop", email: "shop@example.test", accounts: [account] }, new Date());
    const auth = { authorization: `Bearer ${secret}` };

    let lumenpay = await startLumenpay();
    const api = async (method: string, url: string, body?: object) => {
      const res = await fetch(`${lumenpay.url}${url}`, {
        method,
        headers: body ? { ...auth, "content-type": "application/json" } : auth,
        ...(body && { body: JSON.stringify(body) }),
      });
      return res.json() as Promise<PaymentJson & { error?: unknown }>;
    };
    await api("POST", "/v1/webhook_endpoints", { url: receiver.url, enabled_events: ["*"] });
    const inTime = await api("POST", "/v1/payments", { amount: "5", asset: "XLM", expires_in: 60 });
    const late = await api("POST", "/v1/payments", { amount: "5", asset: "XLM", expires_in: 60 });
    const canceled = await api("POST", "/v1/payments", { amount: "5", asset: "XLM", memo_type: "text", memo: "order-42" });
    expect((await api("POST", `/v1/payments/${canceled.id}/cancel`)).status).toBe("canceled");

    lumenpay.server.child.kill("SIGTERM");
    expect(await lumenpay.server.exited).toEqual({ code: 0, signal: null });

    // While Lumenpay is down the chain goes on: one customer pays half-way through the window, one
    // pays the canceled order, one pays after the window closed.
    await until(Date.parse(inTime.created_at) + 30_000, "half-way through the payment window");
    await pay({ type: "id", value: inTime.memo });
    await pay({ type: "text", value: "order-42" });
    await until(Date.parse(late.expires_at) + 2_000, "the payments' expiry");
    await pay({ type: "id", value: late.memo });

    lumenpay = await startLumenpay();
    // The merchant reuses the memo at once, before ingestion has caught up.
    const reused = await api("POST", "/v1/payments", { amount: "5", asset: "XLM", memo_type: "text", memo: "order-42" });
    expect(reused.status).toBe("pending");

    const settled = (p: PaymentJson) => waitFor(async () => ((await api("GET", `/v1/payments/${p.id}`)).settlements.length > 0 ? true : undefined), `${p.id} settled`, 60_000);
    await Promise.all([settled(inTime), settled(late), settled(canceled)]);
    expect(await api("GET", `/v1/payments/${inTime.id}`)).toMatchObject({ status: "confirmed", settlements: [{ late: false }] });
    expect(await api("GET", `/v1/payments/${late.id}`)).toMatchObject({ status: "expired", settlements: [{ late: true }] });
    expect(await api("GET", `/v1/payments/${canceled.id}`)).toMatchObject({ status: "canceled", settlements: [{ late: true }] });
    expect(await api("GET", `/v1/payments/${reused.id}`)).toMatchObject({ status: "pending", settlements: [] });

    // What the merchant's endpoint heard, per payment.
    const heard = async (p: PaymentJson, expected: string) => {
      await waitFor(async () => receiver.received.some((r) => JSON.parse(r.body).type === expected && JSON.parse(r.body).data.object.id === p.id), `${expected} for ${p.id}`, 30_000);
      return receiver.received.map((r) => JSON.parse(r.body)).filter((e) => e.data.object.id === p.id).map((e) => e.type as string);
    };
    const inTimeEvents = await heard(inTime, "payment.confirmed");
    expect(inTimeEvents.filter((t) => t === "payment.confirmed")).toHaveLength(1);
    expect(inTimeEvents).not.toContain("payment.late_payment_received");
    expect((await heard(late, "payment.late_payment_received")).filter((t) => t === "payment.late_payment_received")).toHaveLength(1);
    expect(await heard(late, "payment.expired")).not.toContain("payment.confirmed");
    expect(await heard(canceled, "payment.late_payment_received")).not.toContain("payment.confirmed");
    expect(await heard(reused, "payment.created")).toEqual(["payment.created"]);

    lumenpay.server.child.kill("SIGTERM");
    network.child.kill("SIGTERM");
    expect(await lumenpay.server.exited).toEqual({ code: 0, signal: null });
    expect(await network.exited).toEqual({ code: 0, signal: null });
    await receiver.close();
  });
});
