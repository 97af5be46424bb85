import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Asset, Horizon, Keypair, Networks, Operation, TransactionBuilder, type xdr } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMerchant } from "../src/merchants/service.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { closedPort, runCli, startNetworkProcess, type ServerProcess } from "./support/process.js";

const UNREACHABLE_DATABASE = "postgres://postgres@127.0.0.1:1/none";

let db: TestDatabase;
let dataDir: string;
let network: ServerProcess;
let horizonUrl: string;
let horizon: Horizon.Server;
const issuer = randomAccount();
const usdc = new Asset("USDC", issuer);

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-check-account-"));
  network = startNetworkProcess({ LOG_LEVEL: "info", LOCAL_HORIZON_LEDGER_CLOSE_MS: "100" }, ["--port", "0", "--data-dir", dataDir]);
  horizonUrl = (await network.waitForLog((line) => typeof line.horizon_url === "string")).horizon_url as string;
  horizon = new Horizon.Server(horizonUrl, { allowHttp: true });
});
afterAll(async () => {
  if (network.child.exitCode === null) {
    network.child.kill("SIGTERM");
    expect(await network.exited).toEqual({ code: 0, signal: null });
  }
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

/** `lumenpay merchants check-account …` finding the network through the data directory, as with `start --network local`. */
const checkAccount = (args: string[], env: Record<string, string> = {}) =>
  runCli(["merchants", "check-account", ...args], { DATABASE_URL: db.url, STELLAR_NETWORK: "local", LUMENPAY_DATA_DIR: dataDir, ...env });

/** A new account the local friendbot funds. */
async function fundedAccount(): Promise<Keypair> {
  const account = Keypair.random();
  await horizon.friendbot(account.publicKey()).call();
  return account;
}

async function submit(account: Keypair, ...operations: xdr.Operation[]): Promise<void> {
  const builder = new TransactionBuilder(await horizon.loadAccount(account.publicKey()), { fee: "100", networkPassphrase: Networks.STANDALONE });
  for (const operation of operations) builder.addOperation(operation);
  const tx = builder.setTimeout(60).build();
  tx.sign(account);
  await horizon.submitTransaction(tx);
}

// A network process and a child process per command: seconds each on a loaded machine.
describe("lumenpay merchants check-account", { timeout: 90_000 }, () => {
  it("checks the owning merchant's assets, says what to fix, and passes once it is fixed", async () => {
    const account = await fundedAccount();
    const { merchant } = await createMerchant(
      db.pool,
      { name: "Acme", email: "ops@acme.test", accounts: [account.publicKey()], accepted_assets: ["XLM", { code: "USDC", issuer }] },
      new Date(),
    );

    const before = await checkAccount([account.publicKey()]);
    expect(before.code).toBe(1);
    expect(before.stdout.split("\n")).toEqual([
      `Account ${account.publicKey()} on ${horizonUrl} (merchant ${merchant.id})`,
      "  ✓ the account exists",
      "  ✓ XLM: lumens need no trust line",
      `  ✗ USDC:${issuer}: no trust line; add one with a change_trust operation signed by the account, or payments in USDC fail`,
      "  ✗ memos not required: set the data entry config.memo_required=1 (SEP-29) so wallets refuse payments without a memo",
      "",
    ]);
    expect(before.stderr.trim()).toBe("lumenpay merchants check-account: 2 of 4 checks failed");

    // What the checklist says to do, done with the SDK on the local network.
    await submit(account, Operation.changeTrust({ asset: usdc }), Operation.manageData({ name: "config.memo_required", value: "1" }));
    const after = await checkAccount([account.publicKey(), "--json"]);
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toEqual({
      account: account.publicKey(),
      horizon_url: horizonUrl,
      ok: true,
      exists: true,
      trust_lines: [
        { asset: "XLM", ok: true },
        { asset: { code: "USDC", issuer }, ok: true },
      ],
      memo_required: true,
      merchant_id: merchant.id,
      note: null,
    });
    const human = await checkAccount([account.publicKey()]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`  ✓ USDC:${issuer}: trust line in place\n  ✓ memos required: config.memo_required=1 (SEP-29)\n`);

    // SEP-29 at work: the SDK now refuses to pay the account without a memo.
    const unmemoed = await runCli(["simulate", "pay", "--destination", account.publicKey(), "--amount", "1"], { LUMENPAY_DATA_DIR: dataDir });
    expect(unmemoed.code).toBe(1);
    expect(unmemoed.stderr.trim()).toBe("lumenpay simulate pay: submitting the payment failed: account requires memo");
    const memoed = await runCli(["simulate", "pay", "--destination", account.publicKey(), "--amount", "1", "--memo-type", "id", "--memo", "1"], {
      LUMENPAY_DATA_DIR: dataDir,
    });
    expect(memoed.code, memoed.stderr).toBe(0);
  });

  it("checks the --asset flags on the Horizon named by --horizon-url, without the database", async () => {
    const account = await fundedAccount();
    await submit(account, Operation.changeTrust({ asset: usdc }));
    // No STELLAR_NETWORK and no data directory to find a network in: only --horizon-url says where to look.
    const result = await runCli(
      ["merchants", "check-account", account.publicKey(), "--asset", `USDC:${issuer}`, "--asset", `EURC:${issuer}`, "--horizon-url", horizonUrl, "--json"],
      { DATABASE_URL: UNREACHABLE_DATABASE },
    );
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      account: account.publicKey(),
      horizon_url: horizonUrl,
      ok: false,
      exists: true,
      trust_lines: [
        { asset: { code: "USDC", issuer }, ok: true },
        { asset: { code: "EURC", issuer }, ok: false },
      ],
      memo_required: false,
      merchant_id: null,
      note: null,
    });
  });

  it("checks XLM only, saying why, when no merchant owns the account or the database cannot be read", async () => {
    const account = await fundedAccount();
    await submit(account, Operation.manageData({ name: "config.memo_required", value: "1" }));
    const unowned = await checkAccount([account.publicKey()]);
    expect(unowned.code, unowned.stderr).toBe(0);
    expect(unowned.stdout).toContain("  note: no merchant owns this account, so only XLM is checked; pass --asset for others\n");

    const unreachable = await checkAccount([account.publicKey(), "--json"], { DATABASE_URL: UNREACHABLE_DATABASE });
    expect(unreachable.code, unreachable.stderr).toBe(0);
    const out = JSON.parse(unreachable.stdout) as { trust_lines: unknown; note: string };
    expect(out.trust_lines).toEqual([{ asset: "XLM", ok: true }]);
    expect(out.note).toMatch(/^the database could not be read \(.*ECONNREFUSED.*\), so only XLM is checked; pass --asset for others$/);
  });

  it("reports an account that does not exist, with how to create it", async () => {
    const missing = randomAccount();
    const human = await checkAccount([missing, "--asset", "XLM"]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain("  ✗ the account does not exist: create it with a create_account operation");
    expect(human.stdout).not.toContain("✓");
    expect(human.stderr.trim()).toBe("lumenpay merchants check-account: 3 of 3 checks failed");
    const json = await checkAccount([missing, "--asset", "XLM", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, exists: false, trust_lines: [{ asset: "XLM", ok: false }], memo_required: false });
  });

  it("rejects a malformed account or --asset (exit 2), and an unreachable Horizon (exit 1)", async () => {
    const notAccount = await checkAccount(["GNOTANACCOUNT"]);
    expect(notAccount.code).toBe(2);
    expect(notAccount.stderr).toContain('lumenpay merchants check-account: expected a Stellar account (G…), got "GNOTANACCOUNT"\nUsage: lumenpay merchants check-account G…');
    const asset = await checkAccount([randomAccount(), "--asset", "USDC"]);
    expect(asset.code).toBe(2);
    expect(asset.stderr).toContain('--asset must be XLM or CODE:ISSUER with a G… issuer (got "USDC")');
    const none = await checkAccount([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("expected G…, got 0 argument(s)");

    const port = await closedPort();
    const account = randomAccount();
    const down = await checkAccount([account, "--horizon-url", `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toMatch(new RegExp(`^lumenpay merchants check-account: loading ${account} from http://127\\.0\\.0\\.1:${port} failed: .+$`));
    const empty = await mkdtemp(path.join(os.tmpdir(), "lumenpay-check-account-none-"));
    try {
      const noNetwork = await checkAccount([account], { LUMENPAY_DATA_DIR: empty });
      expect(noNetwork.code).toBe(1);
      expect(noNetwork.stderr.trim()).toBe(
        `lumenpay merchants check-account: no local Horizon is running for ${empty}; start Lumenpay with --network local, or run lumenpay network start, first`,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
