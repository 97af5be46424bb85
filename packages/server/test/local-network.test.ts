import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Asset, Horizon, Keypair, Memo, Networks, Operation, TransactionBuilder } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createMerchant } from "../src/merchants/service.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { waitFor } from "./support/wait.js";
import { closedPort, runCli, startNetworkProcess, startServerProcess, type ServerProcess } from "./support/process.js";

let db: TestDatabase;
let dataDir: string;
const children: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-local-"));
});
afterEach(async () => {
  // A failed test must not leave a server behind.
  for (const child of children.splice(0)) if (child.child.exitCode === null) child.child.kill("SIGKILL");
  await rm(dataDir, { recursive: true, force: true });
});
afterAll(() => db.drop());

interface LocalLumenpay {
  server: ServerProcess;
  /** The API. */
  url: string;
  /** The local Horizon, as announced in local-horizon.json. */
  horizonUrl: string;
  horizon: Horizon.Server;
}

/** `lumenpay start --network local [args]` on free ports, with a fast ledger close; resolves once it listens. */
async function startLocal(env: Record<string, string> = {}, args: string[] = []): Promise<LocalLumenpay> {
  const server = startServerProcess(
    { DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: "info", LUMENPAY_DATA_DIR: dataDir, LOCAL_HORIZON_PORT: "0", LOCAL_HORIZON_LEDGER_CLOSE_MS: "100", ...env },
    ["--network", "local", ...args],
  );
  children.push(server);
  const ready = await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number");
  const announced = JSON.parse(await readFile(path.join(dataDir, "local-horizon.json"), "utf8")) as { url: string; network_passphrase: string };
  return { server, url: ready.url as string, horizonUrl: announced.url, horizon: new Horizon.Server(announced.url, { allowHttp: true }) };
}

async function stopLocal({ server }: Pick<LocalLumenpay, "server">): Promise<void> {
  server.child.kill("SIGTERM");
  expect(await server.exited).toEqual({ code: 0, signal: null });
}

// Real child processes, each several seconds to start on a loaded machine.
describe("lumenpay start --network local", { timeout: 90_000 }, () => {
  it("runs a local Horizon, announces it, points payments and stellar.toml at it, and stops it on SIGTERM", async () => {
    const local = await startLocal();
    expect((await fetch(`${local.url}/ready`)).status).toBe(200);
    expect(JSON.parse(await readFile(path.join(dataDir, "local-horizon.json"), "utf8"))).toEqual({
      url: local.horizonUrl,
      network_passphrase: Networks.STANDALONE,
      rpc_url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
    });
    expect(local.horizonUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const logged = await local.server.waitForLog((line) => typeof line.horizon_url === "string");
    expect(logged.horizon_url).toBe(local.horizonUrl);

    expect((await local.horizon.root()).network_passphrase).toBe(Networks.STANDALONE);
    const root = await local.horizon.loadAccount(Keypair.master(Networks.STANDALONE).publicKey());
    expect(root.balances).toEqual([expect.objectContaining({ asset_type: "native", balance: "100000000000.0000000" })]);

    const { merchant, secret } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date());
    const res = await fetch(`${local.url}/v1/payments`, {
      method: "POST",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: JSON.stringify({ amount: "5", asset: "XLM" }),
    });
    expect(res.status).toBe(201);
    const payment = (await res.json()) as { sep7_uri: string };
    expect(new URL(payment.sep7_uri).searchParams.get("network_passphrase")).toBe(Networks.STANDALONE);
    const toml = await (await fetch(`${local.url}/.well-known/stellar.toml?merchant_id=${merchant.id}`)).text();
    expect(toml).toContain(`HORIZON_URL = "${local.horizonUrl}"`);
    expect(toml).toContain(`NETWORK_PASSPHRASE = "${Networks.STANDALONE}"`);

    await stopLocal(local);
    await local.server.waitForLog((line) => line.msg === "shutdown complete");
    await expect(fetch(`${local.horizonUrl}/`)).rejects.toThrow();
    await expect(stat(path.join(dataDir, "local-horizon.json"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("keeps the chain across a restart: the same records, and new payments after them", async () => {
    const merchant = randomAccount();
    const first = await startLocal();
    const payer = Keypair.random();
    await first.horizon.friendbot(payer.publicKey()).call();
    const tx = new TransactionBuilder(await first.horizon.loadAccount(payer.publicKey()), { fee: "100", networkPassphrase: Networks.STANDALONE })
      .addOperation(Operation.payment({ destination: merchant, asset: Asset.native(), amount: "7.5" }))
      .addMemo(Memo.id("1234"))
      .setTimeout(60)
      .build();
    tx.sign(payer);
    const submitted = await first.horizon.submitTransaction(tx);
    const [paid] = (await first.horizon.payments().forAccount(merchant).call()).records;
    await stopLocal(first);

    const second = await startLocal();
    const again = await second.horizon.transactions().transaction(submitted.hash).call();
    expect(again).toMatchObject({ id: submitted.hash, hash: submitted.hash, paging_token: submitted.paging_token, ledger_attr: submitted.ledger, memo: "1234" });
    const [served] = (await second.horizon.payments().forAccount(merchant).call()).records;
    expect(served).toMatchObject({ id: paid!.id, paging_token: paid!.paging_token, transaction_hash: submitted.hash, amount: "7.5000000" });

    // The payer's sequence number survived too, so it can sign its next payment.
    const next = new TransactionBuilder(await second.horizon.loadAccount(payer.publicKey()), { fee: "100", networkPassphrase: Networks.STANDALONE })
      .addOperation(Operation.payment({ destination: merchant, asset: Asset.native(), amount: "1" }))
      .setTimeout(60)
      .build();
    next.sign(payer);
    await second.horizon.submitTransaction(next);
    const page = await second.horizon.payments().forAccount(merchant).call();
    expect(page.records.map((r) => r.transaction_hash)).toEqual([submitted.hash, next.hash().toString("hex")]);
    expect(BigInt(page.records[1]!.paging_token)).toBeGreaterThan(BigInt(paid!.paging_token));
    await stopLocal(second);
  });

  it("refuses to run a second local network from the same data directory", async () => {
    const first = await startLocal();
    const second = startServerProcess(
      { DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: "silent", LUMENPAY_DATA_DIR: dataDir, LOCAL_HORIZON_PORT: "0" },
      ["--network", "local"],
    );
    children.push(second);
    expect(await second.exited).toEqual({ code: 1, signal: null });
    expect(second.stderr().trim()).toBe(
      `lumenpay start: another process (pid ${first.server.child.pid}) is running the local network kept in ${path.join(dataDir, "local-horizon")}; stop it first`,
    );
    // The first one is untouched, and still announced.
    expect((await first.horizon.root()).network_passphrase).toBe(Networks.STANDALONE);
    expect(JSON.parse(await readFile(path.join(dataDir, "local-horizon.json"), "utf8")).url).toBe(first.horizonUrl);
    await stopLocal(first);
  });

  it("rejects an unknown --network and a malformed --horizon-url, naming the variable; --network-passphrase alone means custom", async () => {
    const bogus = await runCli(["start", "--network", "moon"], { DATABASE_URL: db.url });
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toContain('STELLAR_NETWORK must be one of testnet, public, custom, local (got "moon")');
    const badUrl = await runCli(["start", "--network", "local", "--horizon-url", "127.0.0.1:8000"], { DATABASE_URL: db.url });
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain("HORIZON_URL must be a http: or https: URL");
    const passphrase = await runCli(["start", "--network-passphrase", "Private ; 2026"], { DATABASE_URL: db.url });
    expect(passphrase.code).toBe(2);
    expect(passphrase.stderr).toContain("HORIZON_URL is required when STELLAR_NETWORK=custom");
  });
});

/** `lumenpay network start` in the test's data directory; resolves with its Horizon's URL once it listens. */
async function startNetwork(args: string[] = ["--port", "0"]): Promise<{ network: ServerProcess; horizonUrl: string }> {
  const network = startNetworkProcess({ LOG_LEVEL: "info", LUMENPAY_DATA_DIR: dataDir, LOCAL_HORIZON_LEDGER_CLOSE_MS: "100" }, args);
  children.push(network);
  const logged = await network.waitForLog((line) => typeof line.horizon_url === "string");
  return { network, horizonUrl: logged.horizon_url as string };
}

/** Creates a payment through the API, pays it with `lumenpay simulate pay`, and waits until Lumenpay confirms it. */
async function payAndConfirm(apiUrl: string, secret: string): Promise<void> {
  const auth = { authorization: `Bearer ${secret}` };
  const res = await fetch(`${apiUrl}/v1/payments`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ amount: "5", asset: "XLM" }),
  });
  expect(res.status).toBe(201);
  const payment = (await res.json()) as { id: string };
  const paid = await runCli(["simulate", "pay", payment.id], { DATABASE_URL: db.url, LUMENPAY_DATA_DIR: dataDir });
  expect(paid.code, paid.stderr).toBe(0);
  await waitFor(
    async () => ((await (await fetch(`${apiUrl}/v1/payments/${payment.id}`, { headers: auth })).json()) as { status: string }).status === "confirmed",
    `${payment.id} to be confirmed`,
    60_000,
  );
}

describe("lumenpay start --network local --horizon-url", { timeout: 120_000 }, () => {
  it("uses the network of `lumenpay network start` and runs no Horizon of its own", async () => {
    const { network, horizonUrl } = await startNetwork();
    const { merchant, secret } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date());
    // The same data directory: an in-process network would find the journal taken, and fail to start.
    const local = await startLocal({}, ["--horizon-url", horizonUrl]);
    expect(local.horizonUrl).toBe(horizonUrl);

    const res = await fetch(`${local.url}/v1/payments`, {
      method: "POST",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: JSON.stringify({ amount: "1", asset: "XLM" }),
    });
    const payment = (await res.json()) as { sep7_uri: string };
    expect(new URL(payment.sep7_uri).searchParams.get("network_passphrase")).toBe(Networks.STANDALONE);
    const toml = await (await fetch(`${local.url}/.well-known/stellar.toml?merchant_id=${merchant.id}`)).text();
    expect(toml).toContain(`HORIZON_URL = "${horizonUrl}"`);
    expect(toml).toContain(`NETWORK_PASSPHRASE = "${Networks.STANDALONE}"`);
    await payAndConfirm(local.url, secret);

    // Stopping Lumenpay leaves the network running and announced.
    await stopLocal(local);
    expect((await local.horizon.root()).network_passphrase).toBe(Networks.STANDALONE);
    expect(JSON.parse(await readFile(path.join(dataDir, "local-horizon.json"), "utf8")).url).toBe(horizonUrl);
    network.child.kill("SIGTERM");
    expect(await network.exited).toEqual({ code: 0, signal: null });
  });

  it("starts while that Horizon does not answer, and ingests once it does", async () => {
    const port = await closedPort();
    const { secret } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date());
    const server = startServerProcess(
      { DATABASE_URL: db.url, PORT: "0", LOG_LEVEL: "info", LUMENPAY_DATA_DIR: dataDir },
      ["--network", "local", "--horizon-url", `http://127.0.0.1:${port}`],
    );
    children.push(server);
    const url = (await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number")).url as string;
    expect((await fetch(`${url}/ready`)).status).toBe(200);

    // Its RPC on a free port: the one after `port` (the default) may be taken.
    const { network } = await startNetwork(["--port", String(port), "--rpc-port", "0"]);
    await payAndConfirm(url, secret);
    await stopLocal({ server });
    network.child.kill("SIGTERM");
    expect(await network.exited).toEqual({ code: 0, signal: null });
  });
});

describe("STELLAR_NETWORK=local", () => {
  it("uses the standalone passphrase and the local Horizon's defaults", () => {
    const config = loadConfig({ STELLAR_NETWORK: "local" });
    expect(config.stellar).toEqual({
      network: "local",
      networkPassphrase: Networks.STANDALONE,
      horizonUrl: "http://127.0.0.1:8000",
      rpcUrl: "http://127.0.0.1:8001",
      detectionSource: "horizon",
      ingestMode: "streams",
    });
    expect(config.localHorizon).toEqual({ inProcess: true, port: 8000, ledgerCloseMs: 1000 });
    expect(loadConfig({ STELLAR_NETWORK: "local", LOCAL_HORIZON_PORT: "0", LOCAL_HORIZON_LEDGER_CLOSE_MS: "250" }).localHorizon).toEqual({
      inProcess: true,
      port: 0,
      ledgerCloseMs: 250,
    });
    // HORIZON_URL names a local network running as its own process (`lumenpay network start`).
    const external = loadConfig({ STELLAR_NETWORK: "local", HORIZON_URL: "http://127.0.0.1:9000/" });
    // Its RPC is unknown then: STELLAR_RPC_URL names it.
    expect(external.stellar).toMatchObject({ network: "local", networkPassphrase: Networks.STANDALONE, horizonUrl: "http://127.0.0.1:9000", rpcUrl: undefined });
    expect(external.localHorizon.inProcess).toBe(false);
    expect(() => loadConfig({ LOCAL_HORIZON_LEDGER_CLOSE_MS: "5" })).toThrow(/LOCAL_HORIZON_LEDGER_CLOSE_MS must be an integer between 10 and 60000/);
  });
});
