import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Account, Horizon, Keypair, MuxedAccount, Networks, StrKey } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMerchant } from "../src/merchants/service.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { closedPort, runCli, startServerProcess, type ServerProcess } from "./support/process.js";

let db: TestDatabase;
let dataDir: string;
let server: ServerProcess;
let apiUrl: string;
let horizonUrl: string;
let horizon: Horizon.Server;
let apiKey: string;
let destination: string;
const issuer = randomAccount();

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-simulate-"));
  destination = randomAccount();
  const created = await createMerchant(db.pool, {
    name: "Acme",
    email: "ops@acme.test",
    accounts: [destination],
    accepted_assets: ["XLM", { code: "USDC", issuer }],
  }, new Date());
  apiKey = created.secret;
  server = startServerProcess(
    { DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: "info", LUMENPAY_DATA_DIR: dataDir, LOCAL_HORIZON_PORT: "0", LOCAL_HORIZON_LEDGER_CLOSE_MS: "100" },
    ["--network", "local"],
  );
  apiUrl = (await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number")).url as string;
  const announced = JSON.parse(await readFile(path.join(dataDir, "local-horizon.json"), "utf8")) as { url: string };
  horizonUrl = announced.url;
  horizon = new Horizon.Server(horizonUrl, { allowHttp: true });
});
afterAll(async () => {
  if (server.child.exitCode === null) {
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
  }
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

const simulate = (args: string[], env: Record<string, string> = {}) =>
  runCli(["simulate", "pay", ...args], { DATABASE_URL: db.url, LUMENPAY_DATA_DIR: dataDir, ...env });

interface PaymentJson {
  id: string;
  destination: string;
  memo_type: string | null;
  memo: string | null;
}

async function createPayment(body: Record<string, unknown>): Promise<PaymentJson> {
  const res = await fetch(`${apiUrl}/v1/payments`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as PaymentJson;
}

type Joined = Horizon.ServerApi.PaymentOperationRecord & { to_muxed?: string; transaction_attr: Horizon.HorizonApi.TransactionResponse };

/** The local Horizon's payment record of transaction `hash` to `account` (the merchant's by default), through the SDK. */
async function paymentRecord(hash: string, account = destination): Promise<Joined> {
  const page = await horizon.payments().forAccount(account).join("transactions").order("desc").limit(20).call();
  const record = (page.records as Joined[]).find((r) => r.transaction_hash === hash);
  expect(record, `no payment of ${hash} to ${account}`).toBeDefined();
  return record!;
}

// Real child processes, each several seconds to start on a loaded machine.
describe("lumenpay simulate pay", { timeout: 90_000 }, () => {
  it("pays the payment's amount and asset to its destination with its memo, in a real transaction", async () => {
    const payment = await createPayment({ amount: "12.5", asset: "XLM" });
    const result = await simulate([payment.id]);
    expect(result.code, result.stderr).toBe(0);
    const hash = /transaction ([0-9a-f]{64})/.exec(result.stdout)?.[1];
    expect(hash).toBeDefined();
    expect(result.stdout).toContain(`${payment.id}, pending before this transaction`);
    expect(result.stdout).toContain(`memo id ${payment.memo}`);

    const record = await paymentRecord(hash!);
    expect(record).toMatchObject({ type: "payment", to: destination, amount: "12.5000000", asset_type: "native", transaction_successful: true });
    expect(record.transaction_attr).toMatchObject({ memo_type: "id", memo: payment.memo });
    // From a payer of its own, which signed the envelope (the local Horizon checks signatures).
    expect(record.from).not.toBe(Keypair.master(Networks.STANDALONE).publicKey());
    expect(record.transaction_attr.signatures).toHaveLength(1);
  });

  it("takes --amount and --asset over the payment's own, and prints JSON with --json", async () => {
    const payment = await createPayment({ amount: "10", asset: { code: "USDC", issuer }, memo_type: "text", memo: "order-77" });
    // More lumens than friendbot gives the payer: the rest is minted for it.
    const result = await simulate([payment.id, "--amount", "20000.5", "--asset", "XLM", "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as Record<string, unknown> & { transaction_hash: string; from: string };
    expect(out).toEqual({
      transaction_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      ledger: expect.any(Number),
      payment: { id: payment.id, status: "pending" },
      from: expect.any(String),
      to: destination,
      amount: "20000.5",
      asset: "XLM",
      memo_type: "text",
      memo: "order-77",
    });
    const record = await paymentRecord(out.transaction_hash);
    expect(record).toMatchObject({ from: out.from, amount: "20000.5000000", asset_type: "native" });
    expect(record.transaction_attr).toMatchObject({ memo_type: "text", memo: "order-77" });
  });

  it("pays an issued asset from a payer that the local Horizon minted it for", async () => {
    const payment = await createPayment({ amount: "7", asset: { code: "USDC", issuer } });
    const result = await simulate([payment.id, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as { transaction_hash: string; from: string };
    const record = await paymentRecord(out.transaction_hash);
    expect(record).toMatchObject({ amount: "7.0000000", asset_type: "credit_alphanum4", asset_code: "USDC", asset_issuer: issuer });
    // The payer spent what it was minted: exactly the payment's amount.
    const payer = await horizon.loadAccount(out.from);
    expect(payer.balances.find((b) => b.asset_type === "credit_alphanum4")).toMatchObject({ asset_code: "USDC", balance: "0.0000000" });
  });

  it("pays a muxed payment's M address without a memo", async () => {
    const payment = await createPayment({ amount: "3", asset: "XLM", muxed: true });
    expect(StrKey.isValidMed25519PublicKey(payment.destination)).toBe(true);
    const result = await simulate([payment.id, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as { transaction_hash: string; to: string; memo_type: string | null };
    expect(out).toMatchObject({ to: payment.destination, memo_type: null });
    const record = await paymentRecord(out.transaction_hash);
    expect(record).toMatchObject({ to: destination, to_muxed: payment.destination, amount: "3.0000000" });
    expect(record.transaction_attr.memo_type).toBe("none");
  });

  it("says to start Lumenpay with --network local when no local Horizon runs, and exits 1", async () => {
    const payment = await createPayment({ amount: "1", asset: "XLM" });
    const empty = await mkdtemp(path.join(os.tmpdir(), "lumenpay-simulate-none-"));
    try {
      const none = await simulate([payment.id], { LUMENPAY_DATA_DIR: empty });
      expect(none.code).toBe(1);
      expect(none.stderr.trim()).toBe(
        `lumenpay simulate pay: no local Horizon is running for ${empty}; start Lumenpay with --network local, or run lumenpay network start, first`,
      );

      // Left behind by a server that was killed: the file names a Horizon that no longer answers.
      const port = await closedPort();
      const file = path.join(empty, "local-horizon.json");
      await writeFile(file, JSON.stringify({ url: `http://127.0.0.1:${port}`, network_passphrase: "Standalone Network ; February 2017" }));
      const stale = await simulate([payment.id], { LUMENPAY_DATA_DIR: empty });
      expect(stale.code).toBe(1);
      expect(stale.stderr.trim()).toBe(
        `lumenpay simulate pay: the local Horizon named in ${file} (http://127.0.0.1:${port}) does not answer; start Lumenpay with --network local, or run lumenpay network start, first`,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it("rejects an unknown payment (exit 1) and a malformed --asset or --amount (exit 2)", async () => {
    const paymentsBefore = (await horizon.payments().forAccount(destination).limit(200).call()).records.length;
    const unknown = await simulate(["pay_doesnotexist"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe("lumenpay simulate pay: No payment pay_doesnotexist. (resource_not_found)");

    const payment = await createPayment({ amount: "1", asset: "XLM" });
    const asset = await simulate([payment.id, "--asset", "USDC"]);
    expect(asset.code).toBe(2);
    expect(asset.stderr).toContain('--asset must be XLM or CODE:ISSUER with a G… issuer (got "USDC")');
    const amount = await simulate([payment.id, "--amount", "0"]);
    expect(amount.code).toBe(2);
    expect(amount.stderr).toContain('--amount must be a positive amount with at most 7 decimals, e.g. 4.5 (got "0")');
    expect((await horizon.payments().forAccount(destination).limit(200).call()).records).toHaveLength(paymentsBefore);
  });

  it("pays --destination with --asset and --memo, needing no database, and prints JSON with payment null", async () => {
    const to = randomAccount();
    // No database answers here: the raw mode must not look for one.
    const result = await simulate(["--destination", to, "--amount", "5", "--memo-type", "id", "--memo", "007", "--json"], { DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" });
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as Record<string, unknown> & { transaction_hash: string; from: string };
    expect(out).toEqual({
      transaction_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      ledger: expect.any(Number),
      payment: null,
      from: expect.any(String),
      to,
      amount: "5",
      asset: "XLM",
      memo_type: "id",
      memo: "7",
    });
    const record = await paymentRecord(out.transaction_hash, to);
    expect(record).toMatchObject({ from: out.from, to, amount: "5.0000000", asset_type: "native", transaction_successful: true });
    expect(record.transaction_attr).toMatchObject({ memo_type: "id", memo: "7" });
  });

  it("pays an M address in an issued asset on the Horizon named by --horizon-url, whatever the data directory holds", async () => {
    const account = Keypair.random();
    const muxed = new MuxedAccount(new Account(account.publicKey(), "0"), "42").accountId();
    const empty = await mkdtemp(path.join(os.tmpdir(), "lumenpay-simulate-url-"));
    try {
      const raw = await simulate(["--destination", muxed, "--amount", "2.25", "--asset", `USDC:${issuer}`, "--horizon-url", `${horizonUrl}/`], {
        DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
        LUMENPAY_DATA_DIR: empty,
      });
      expect(raw.code, raw.stderr).toBe(0);
      expect(raw.stdout).toContain(`to the local network at ${horizonUrl}.`);
      expect(raw.stdout).toContain(`to         ${muxed} (no memo)`);
      const hash = /transaction ([0-9a-f]{64})/.exec(raw.stdout)![1]!;
      expect(await paymentRecord(hash, account.publicKey())).toMatchObject({ to_muxed: muxed, amount: "2.2500000", asset_code: "USDC", asset_issuer: issuer });

      // A payment is still read from the database, and paid on that Horizon too.
      const payment = await createPayment({ amount: "4", asset: "XLM" });
      const paid = await simulate([payment.id, "--horizon-url", horizonUrl, "--json"], { LUMENPAY_DATA_DIR: empty });
      expect(paid.code, paid.stderr).toBe(0);
      expect(JSON.parse(paid.stdout)).toMatchObject({ payment: { id: payment.id, status: "pending" }, to: destination, amount: "4" });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it("says when the Horizon named by --horizon-url does not answer, and exits 1", async () => {
    const port = await closedPort();
    const result = await simulate(["--destination", randomAccount(), "--amount", "1", "--horizon-url", `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(`lumenpay simulate pay: no Horizon answers at http://127.0.0.1:${port} (its root names no network_passphrase)`);
  });

  it("rejects a payment and --destination together, neither, and malformed raw options (exit 2), paying nothing", async () => {
    const to = randomAccount();
    const payment = await createPayment({ amount: "1", asset: "XLM" });
    const cases: [string[], string][] = [
      [[payment.id, "--destination", to], "give a payment (pay_…) or --destination, not both"],
      [["--amount", "1"], "give a payment (pay_…) or --destination G…|M… --amount N"],
      [["--destination", to], "--amount is required with --destination"],
      [["--destination", "GNOTANACCOUNT", "--amount", "1"], '--destination must be a Stellar account (G…) or a muxed address (M…) (got "GNOTANACCOUNT")'],
      [["--destination", to, "--amount", "1", "--memo", "x"], "--memo-type and --memo go together"],
      [["--destination", to, "--amount", "1", "--memo-type", "return", "--memo", "x"], '--memo-type must be one of text, id, hash (got "return")'],
      [["--destination", to, "--amount", "1", "--memo-type", "id", "--memo", "12ab"], "--memo: An id memo must be a decimal string between 0 and 18446744073709551615."],
      [["--destination", to, "--amount", "1", "--memo-type", "text", "--memo", "x".repeat(29)], "--memo: A text memo must be 1–28 bytes of UTF-8 (got 29)."],
      [[payment.id, "--memo-type", "text", "--memo", "x"], "--memo-type and --memo go with --destination; a payment has its own memo"],
      [[payment.id, "extra"], "expected pay_…, got 2 argument(s)"],
    ];
    for (const [args, message] of cases) {
      const result = await simulate(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toContain(`lumenpay simulate pay: ${message}\nUsage: lumenpay simulate pay pay_…|--destination G…|M…`);
    }
    expect((await horizon.payments().forAccount(to).call()).records).toEqual([]);
  });
});
