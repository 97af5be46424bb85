import { readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { startLocalHorizon } from "../stellar/local-horizon/index.js";

/**
 * The local network of `lumenpay start --network local`: a Horizon on 127.0.0.1 whose chain is kept in
 * `<dataDir>/local-horizon/`, announced to the other commands (`lumenpay simulate`) by
 * `<dataDir>/local-horizon.json`, as the embedded PostgreSQL is found through its pid file.
 */

export interface LocalHorizonInfo {
  url: string;
  network_passphrase: string;
}

export interface RunningLocalNetwork {
  url: string;
  networkPassphrase: string;
  /** Withdraws the announcement, then stops the Horizon (ending its streams) and closes the journal. */
  close(): Promise<void>;
}

/** No usable local network for a command: the message says what to do. */
export class LocalNetworkError extends Error {
  override name = "LocalNetworkError";
}

const START_HINT = "start Lumenpay with --network local first";

export const localHorizonFile = (dataDir: string) => path.join(dataDir, "local-horizon.json");

export async function startLocalNetwork(config: Config, logger: Logger): Promise<RunningLocalNetwork> {
  const file = localHorizonFile(config.dataDir);
  const horizon = await startLocalHorizon({
    host: "127.0.0.1",
    port: config.localHorizon.port,
    networkPassphrase: config.stellar.networkPassphrase,
    ledgerCloseMs: config.localHorizon.ledgerCloseMs,
    journalDir: path.join(config.dataDir, "local-horizon"),
  });
  try {
    const info: LocalHorizonInfo = { url: horizon.url, network_passphrase: horizon.networkPassphrase };
    // Renamed into place, so a reader never sees half a file.
    await writeFile(`${file}.tmp`, `${JSON.stringify(info)}\n`);
    await rename(`${file}.tmp`, file);
  } catch (error) {
    await horizon.close();
    throw error;
  }
  logger.info(
    { horizon_url: horizon.url, network_passphrase: horizon.networkPassphrase },
    `local Stellar network: Horizon on ${horizon.url}, a ledger every ${config.localHorizon.ledgerCloseMs} ms, faucet at ${horizon.url}/friendbot?addr=G…`,
  );
  let closing: Promise<void> | undefined;
  return {
    url: horizon.url,
    networkPassphrase: horizon.networkPassphrase,
    close: () =>
      (closing ??= (async () => {
        await rm(file, { force: true });
        await horizon.close();
      })()),
  };
}

/** The local Horizon that `lumenpay start --network local` runs from `dataDir`; a LocalNetworkError when none answers. */
export async function findLocalHorizon(dataDir: string): Promise<{ url: string; networkPassphrase: string }> {
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
  // A server killed without shutting down leaves the file behind, so ask the Horizon itself.
  const root = await fetch(`${info.url}/`, { signal: AbortSignal.timeout(5000) })
    .then((res) => (res.ok ? (res.json() as Promise<{ network_passphrase?: string }>) : undefined))
    .catch(() => undefined);
  if (!root || root.network_passphrase !== info.network_passphrase) {
    throw new LocalNetworkError(`the local Horizon named in ${file} (${info.url}) does not answer; ${START_HINT}`);
  }
  return { url: info.url, networkPassphrase: info.network_passphrase };
}
