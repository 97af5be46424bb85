import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Asset, Horizon, Keypair, Networks, Operation, TransactionBuilder } from "@stellar/stellar-sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, startNetworkProcess, type ServerProcess } from "./support/process.js";

let dataDir: string;
const children: ServerProcess[] = [];

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-network-"));
});
afterEach(async () => {
  // A failed test must not leave a network behind.
  for (const child of children.splice(0)) if (child.child.exitCode === null) child.child.kill("SIGKILL");
  await rm(dataDir, { recursive: true, force: true });
});

const isListening = (line: Record<string, unknown>) => typeof line.horizon_url === "string";

/** `lumenpay network start --port 0 --data-dir <dataDir>`; resolves with the process and its log line once it listens. */
async function startNetwork(env: Record<string, string> = {}): Promise<{ network: ServerProcess; url: string; logged: Record<string, unknown> }> {
  const network = startNetworkProcess({ LOG_LEVEL: "info", LOCAL_HORIZON_LEDGER_CLOSE_MS: "100", ...env }, ["--port", "0", "--data-dir", dataDir]);
  children.push(network);
  const logged = await network.waitForLog(isListening);
  return { network, url: logged.horizon_url as string, logged };
}

async function stop(network: ServerProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  network.child.kill(signal);
  expect(await network.exited).toEqual({ code: 0, signal: null });
}

async function payFromNewAccount(horizon: Horizon.Server, destination: string, amount: string): Promise<string> {
  const payer = Keypair.random();
  await horizon.friendbot(payer.publicKey()).call();
  const tx = new TransactionBuilder(await horizon.loadAccount(payer.publicKey()), { fee: "100", networkPassphrase: Networks.STANDALONE })
    .addOperation(Operation.payment({ destination, asset: Asset.native(), amount }))
    .setTimeout(60)
    .build();
  tx.sign(payer);
  return (await horizon.submitTransaction(tx)).hash;
}

/** Reads a server-sent event stream to its end. */
async function readToEnd(res: Response): Promise<string> {
  let text = "";
  for await (const chunk of res.body!) text += Buffer.from(chunk).toString("utf8");
  return text;
}

// Real child processes, each several seconds to start on a loaded machine.
describe("lumenpay network start", { timeout: 90_000 }, () => {
  it("runs the standalone network with no database, announces and journals it, and on SIGTERM ends its streams and exits 0", async () => {
    // STELLAR_NETWORK does not matter: `start --network local --horizon-url` expects the standalone passphrase.
    const { network, url, logged } = await startNetwork({ STELLAR_NETWORK: "testnet" });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(logged).toMatchObject({ network_passphrase: Networks.STANDALONE, journal_dir: path.join(dataDir, "local-horizon") });
    expect(logged.msg).toContain("a ledger every 100 ms");
    expect(JSON.parse(await readFile(path.join(dataDir, "local-horizon.json"), "utf8"))).toEqual({ url, network_passphrase: Networks.STANDALONE, rpc_url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });

    const horizon = new Horizon.Server(url, { allowHttp: true });
    expect((await horizon.root()).network_passphrase).toBe(Networks.STANDALONE);
    const merchant = Keypair.random().publicKey();
    const hash = await payFromNewAccount(horizon, merchant, "2.5");
    const stream = await fetch(`${url}/accounts/${merchant}/payments?cursor=now`, { headers: { accept: "text/event-stream" } });
    expect(stream.status).toBe(200);

    await stop(network);
    expect(await readToEnd(stream)).toContain('event: close\ndata: "byebye"');
    await expect(fetch(`${url}/`)).rejects.toThrow();
    await expect(stat(path.join(dataDir, "local-horizon.json"))).rejects.toMatchObject({ code: "ENOENT" });
    // No embedded PostgreSQL was started: the journal is all it keeps.
    expect((await readdir(dataDir)).sort()).toEqual(["local-horizon"]);
    expect(await readdir(path.join(dataDir, "local-horizon"))).toEqual(["ledger.jsonl"]);

    // The journal was released, and replays: a restart serves the same transaction.
    const again = await startNetwork();
    const record = await new Horizon.Server(again.url, { allowHttp: true }).transactions().transaction(hash).call();
    expect(record).toMatchObject({ hash, successful: true });
    await stop(again.network);
  });

  it("takes its port, data directory and ledger close interval from the environment, and stops on SIGINT", async () => {
    const network = startNetworkProcess({ LOG_LEVEL: "info", LOCAL_HORIZON_PORT: "0", LUMENPAY_DATA_DIR: dataDir, LOCAL_HORIZON_LEDGER_CLOSE_MS: "250" });
    children.push(network);
    const logged = await network.waitForLog(isListening);
    expect(logged.msg).toContain("a ledger every 250 ms");
    expect(JSON.parse(await readFile(path.join(dataDir, "local-horizon.json"), "utf8")).url).toBe(logged.horizon_url);
    await stop(network, "SIGINT");
    await expect(stat(path.join(dataDir, "local-horizon.json"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a data directory whose network another process runs, leaving that one untouched", async () => {
    const first = await startNetwork();
    const second = startNetworkProcess({ LOG_LEVEL: "info" }, ["--port", "0", "--data-dir", dataDir]);
    children.push(second);
    expect(await second.exited).toEqual({ code: 1, signal: null });
    expect(second.stderr().trim()).toBe(
      `lumenpay network start: another process (pid ${first.network.child.pid}) is running the local network kept in ${path.join(dataDir, "local-horizon")}; stop it first`,
    );
    expect((await new Horizon.Server(first.url, { allowHttp: true }).root()).network_passphrase).toBe(Networks.STANDALONE);
    expect(JSON.parse(await readFile(path.join(dataDir, "local-horizon.json"), "utf8")).url).toBe(first.url);
    await stop(first.network);
  });

  it("rejects bad options with its usage line and exit 2", async () => {
    const port = await runCli(["network", "start", "--port", "http"], { LUMENPAY_DATA_DIR: dataDir });
    expect(port.code).toBe(2);
    expect(port.stderr).toContain('LOCAL_HORIZON_PORT must be an integer between 0 and 65535 (got "http")');
    const unknown = await runCli(["network", "start", "--ledger", "5"], { LUMENPAY_DATA_DIR: dataDir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Usage: lumenpay network start [--port 8000] [--data-dir DIR]");
    const group = await runCli(["network"], {});
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/^ {2}network start +Run the local Stellar network/m);
    // Nothing was started or announced.
    expect(await readdir(dataDir)).toEqual([]);
  });
});
