import { readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Networks } from "@stellar/stellar-sdk";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { createLogger } from "../logger.js";
import { exitOnSignals } from "../signals.js";
import { startLocalHorizon } from "../stellar/local-horizon/index.js";
import type { Command } from "./args.js";

/**
 * The local network of `lumenpay start --network local` (in-process) or `lumenpay network start` (a process
 * of its own): a Horizon and a Stellar RPC on 127.0.0.1 whose chain is kept in `<dataDir>/local-horizon/`,
 * announced to the other commands (`lumenpay simulate`) by `<dataDir>/local-horizon.json`, as the embedded
 * PostgreSQL is found through its pid file.
 */

export interface LocalHorizonInfo {
  url: string;
  network_passphrase: string;
  /** Absent in files written before the local network served RPC. */
  rpc_url?: string;
}

/** A Horizon to talk to, and the passphrase of the network it serves. */
export interface HorizonAddress {
  url: string;
  networkPassphrase: string;
  /** Its Stellar RPC, when known (the local network announces it). */
  rpcUrl?: string;
}

export interface RunningLocalNetwork extends HorizonAddress {
  /** Its Stellar RPC. */
  rpcUrl: string;
  /** Withdraws the announcement, then stops the Horizon (ending its streams) and the RPC, and closes the journal. */
  close(): Promise<void>;
}

/** No usable local network for a command: the message says what to do. */
export class LocalNetworkError extends Error {
  override name = "LocalNetworkError";
}

const START_HINT = "start Lumenpay with --network local, or run lumenpay network start, first";

export const localHorizonFile = (dataDir: string) => path.join(dataDir, "local-horizon.json");

export async function startLocalNetwork(config: Config, logger: Logger): Promise<RunningLocalNetwork> {
  const file = localHorizonFile(config.dataDir);
  const journalDir = path.join(config.dataDir, "local-horizon");
  const horizon = await startLocalHorizon({
    host: "127.0.0.1",
    port: config.localHorizon.port,
    networkPassphrase: config.stellar.networkPassphrase,
    ledgerCloseMs: config.localHorizon.ledgerCloseMs,
    journalDir,
    rpcPort: config.localRpc.port,
  });
  // Set, since an RPC port was given.
  const rpcUrl = horizon.rpcUrl!;
  try {
    const info: LocalHorizonInfo = { url: horizon.url, network_passphrase: horizon.networkPassphrase, rpc_url: rpcUrl };
    // Renamed into place, so a reader never sees half a file.
    await writeFile(`${file}.tmp`, `${JSON.stringify(info)}\n`);
    await rename(`${file}.tmp`, file);
  } catch (error) {
    await horizon.close();
    throw error;
  }
  logger.info(
    { horizon_url: horizon.url, rpc_url: rpcUrl, network_passphrase: horizon.networkPassphrase, journal_dir: journalDir },
    `local Stellar network: Horizon on ${horizon.url}, Stellar RPC on ${rpcUrl}, a ledger every ${config.localHorizon.ledgerCloseMs} ms, faucet at ${horizon.url}/friendbot?addr=G…`,
  );
  let closing: Promise<void> | undefined;
  return {
    url: horizon.url,
    rpcUrl,
    networkPassphrase: horizon.networkPassphrase,
    close: () =>
      (closing ??= (async () => {
        await rm(file, { force: true });
        await horizon.close();
      })()),
  };
}

/** The passphrase a Horizon announces at its root (`/`); undefined when it does not answer. */
async function announcedPassphrase(url: string): Promise<string | undefined> {
  const root = await fetch(`${url}/`, { signal: AbortSignal.timeout(5000) })
    .then((res) => (res.ok ? (res.json() as Promise<{ network_passphrase?: unknown }>) : undefined))
    .catch(() => undefined);
  return typeof root?.network_passphrase === "string" ? root.network_passphrase : undefined;
}

/** The Horizon at `url` (given with --horizon-url) and its network; a LocalNetworkError when it does not answer. */
export async function connectHorizon(url: string): Promise<HorizonAddress> {
  const networkPassphrase = await announcedPassphrase(url);
  if (networkPassphrase === undefined) throw new LocalNetworkError(`no Horizon answers at ${url} (its root names no network_passphrase)`);
  return { url, networkPassphrase };
}

/** The local Horizon that runs from `dataDir` (in-process or on its own); a LocalNetworkError when none answers. */
export async function findLocalHorizon(dataDir: string): Promise<HorizonAddress> {
  const file = localHorizonFile(dataDir);
  let info: LocalHorizonInfo;
  try {
    info = JSON.parse(await readFile(file, "utf8")) as LocalHorizonInfo;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new LocalNetworkError(`no local Horizon is running for ${dataDir}; ${START_HINT}`);
    }
    throw new LocalNetworkError(`cannot read ${file} (${(error as Error).message}); ${START_HINT}`);
  }
  // A process killed without shutting down leaves the file behind, so ask the Horizon itself.
  if ((await announcedPassphrase(info.url)) !== info.network_passphrase) {
    throw new LocalNetworkError(`the local Horizon named in ${file} (${info.url}) does not answer; ${START_HINT}`);
  }
  return { url: info.url, networkPassphrase: info.network_passphrase, ...(info.rpc_url && { rpcUrl: info.rpc_url }) };
}

export const networkStart: Command = {
  name: "network start",
  summary: "Run the local Stellar network (Horizon, Stellar RPC, friendbot, /_local/mint) as a process of its own, with no database.",
  synopsis: "[--port 8000] [--data-dir DIR] [--rpc-port 8001]",
  optionHelp: [
    "  --port N                 Horizon's port on 127.0.0.1 (overrides LOCAL_HORIZON_PORT, default 8000; 0 picks a free one)",
    "  --data-dir DIR           keep the chain in DIR/local-horizon/, announce it in DIR/local-horizon.json",
    "                           (overrides LUMENPAY_DATA_DIR, default ./.lumenpay)",
    "  --rpc-port N             Stellar RPC's port on 127.0.0.1 (overrides LOCAL_RPC_PORT, default: the port after",
    "                           Horizon's, 8001; 0 picks a free one)",
  ],
  options: { port: { type: "string" }, "data-dir": { type: "string" }, "rpc-port": { type: "string" } },
  async run({ config }) {
    const logger = createLogger(config.logLevel, undefined, config.logFormat);
    // The standalone network whatever STELLAR_NETWORK says: `start --network local --horizon-url` expects its passphrase.
    const local: Config = {
      ...config,
      stellar: { ...config.stellar, network: "local", networkPassphrase: Networks.STANDALONE },
    };
    // Handlers first: a signal sent as soon as "listening" is logged must find them in place.
    const network = startLocalNetwork(local, logger);
    exitOnSignals(network, logger, "closing the local network");
    await network;
  },
};
