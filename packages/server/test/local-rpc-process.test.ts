import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Asset, Horizon, Keypair, nativeToScVal, Networks, rpc, scValToNative } from "@stellar/stellar-sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, type ServerProcess, startNetworkProcess } from "./support/process.js";

let dataDir: string;
const children: ServerProcess[] = [];

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-rpc-"));
});
afterEach(async () => {
  // A failed test must not leave a network behind.
  for (const child of children.splice(0)) if (child.child.exitCode === null) child.child.kill("SIGKILL");
  await rm(dataDir, { recursive: true, force: true });
});

/** `lumenpay network start` on free ports; resolves with its Horizon and RPC URLs once it listens. */
async function startNetwork(): Promise<{ network: ServerProcess; horizonUrl: string; rpcUrl: string }> {
  const network = startNetworkProcess({ LOG_LEVEL: "info", LOCAL_HORIZON_LEDGER_CLOSE_MS: "100" }, ["--port", "0", "--rpc-port", "0", "--data-dir", dataDir]);
  children.push(network);
  const logged = await network.waitForLog((line) => typeof line.rpc_url === "string");
  return { network, horizonUrl: logged.horizon_url as string, rpcUrl: logged.rpc_url as string };
}

async function stop(network: ServerProcess): Promise<void> {
  network.child.kill("SIGTERM");
  expect(await network.exited).toEqual({ code: 0, signal: null });
}

// Real child processes, each a few seconds to start on a loaded machine.
describe("lumenpay network start --rpc-port", { timeout: 60_000 }, () => {
  it("serves Stellar RPC from the journaled chain, with the same event ids after a restart", async () => {
    const first = await startNetwork();
    expect(first.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(first.rpcUrl).not.toBe(first.horizonUrl);
    const server = new rpc.Server(first.rpcUrl, { allowHttp: true });
    expect(await server.getNetwork()).toEqual({ passphrase: Networks.STANDALONE, protocolVersion: 23 });

    // The friendbot's create_account is a lumen transfer from the root account.
    const account = Keypair.random().publicKey();
    await new Horizon.Server(first.horizonUrl, { allowHttp: true }).friendbot(account).call();
    const request: rpc.Api.GetEventsRequest = {
      startLedger: 1,
      filters: [{ contractIds: [Asset.native().contractId(Networks.STANDALONE)], topics: [["*", "*", nativeToScVal(account, { type: "address" }).toXDR("base64"), "**"]] }],
    };
    const before = await server.getEvents(request);
    expect(before.events.map((event) => [...event.topic.map((topic) => scValToNative(topic) as unknown), scValToNative(event.value) as unknown])).toEqual([
      ["transfer", Keypair.master(Networks.STANDALONE).publicKey(), account, "native", 10_000n * 10_000_000n],
    ]);
    await stop(first.network);
    await expect(server.getHealth()).rejects.toThrow();

    const second = await startNetwork();
    const after = await new rpc.Server(second.rpcUrl, { allowHttp: true }).getEvents(request);
    expect(after.events.map((event) => [event.id, event.txHash, event.ledgerClosedAt])).toEqual(before.events.map((event) => [event.id, event.txHash, event.ledgerClosedAt]));
    await stop(second.network);
  });

  it("rejects a bad --rpc-port with exit 2", async () => {
    const bad = await runCli(["network", "start", "--rpc-port", "http", "--data-dir", dataDir], {});
    expect(bad.code).toBe(2);
    // Validated with the configuration it overrides, as --port is.
    expect(bad.stderr).toContain('LOCAL_RPC_PORT must be an integer between 0 and 65535 (got "http")');
  });
});
