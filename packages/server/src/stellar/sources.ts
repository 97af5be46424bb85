import type client from "prom-client";
import type { Config } from "../config.js";
import { createHorizonSource } from "./horizon-source.js";
import type { IngestLog } from "./ingest-account.js";
import type { LedgerSource } from "./ledger-source.js";
import { createRpcSource } from "./rpc-source.js";

/** The source the ledger follower reads, as configured (`DETECTION_SOURCE`). */
export function createLedgerSource(config: Config, deps: { registry: client.Registry; log: Pick<IngestLog, "warn"> }): LedgerSource {
  const { stellar } = config;
  return stellar.detectionSource === "rpc"
    ? createRpcSource({ url: stellar.rpcUrl!, networkPassphrase: stellar.networkPassphrase, registry: deps.registry })
    : createHorizonSource({ url: stellar.horizonUrl, log: deps.log });
}
