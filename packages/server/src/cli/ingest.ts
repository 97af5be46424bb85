import { Registry } from "prom-client";
import { systemClock } from "../clock.js";
import { createLogger } from "../logger.js";
import { applyIncoming } from "../payments/settlement.js";
import { backfillFromHorizon } from "../stellar/follower-backfill.js";
import { createLedgerSource } from "../stellar/sources.js";
import { createDeliveryWakeup } from "../webhooks/wakeup.js";
import { integerValue, UsageError, type Command } from "./args.js";
import { withDatabase } from "./database.js";
import { findLocalHorizon } from "./network.js";

export const ingestBackfill: Command = {
  name: "ingest backfill",
  summary: "Fill from Horizon the ledgers the ingestion follower still needs and its source no longer keeps.",
  synopsis: "[--from-ledger N] [--horizon-url URL] [--rpc-url URL] [--json]",
  optionHelp: [
    "  --from-ledger N          also re-read every watched account from ledger N (what is applied already is",
    "                           recognised and left alone); default: only the ledgers ingestion waits for",
    "  --horizon-url URL        Horizon with history for those ledgers (overrides HORIZON_URL; default: the",
    "                           network's, or with STELLAR_NETWORK=local the local network of LUMENPAY_DATA_DIR)",
    "  --rpc-url URL            Stellar RPC whose retention is checked, with DETECTION_SOURCE=rpc (overrides STELLAR_RPC_URL)",
    '  --json                   print [{"position", "accounts", "from_ledger", "to_ledger", "operations"}]',
  ],
  options: { "from-ledger": { type: "string" }, "horizon-url": { type: "string" }, "rpc-url": { type: "string" }, json: { type: "boolean" } },
  async run({ values, config, print }) {
    const fromLedger = integerValue(values, "from-ledger", { min: 1, max: 2 ** 32 - 1 });
    // The local network of the data directory announces where its Horizon and RPC listen (their ports may have been picked).
    const local = config.localHorizon.inProcess ? await findLocalHorizon(config.dataDir) : undefined;
    const stellar = { ...config.stellar, horizonUrl: local?.url ?? config.stellar.horizonUrl, rpcUrl: values["rpc-url"] === undefined ? (local?.rpcUrl ?? config.stellar.rpcUrl) : config.stellar.rpcUrl };
    if (stellar.detectionSource === "rpc" && !stellar.rpcUrl) throw new UsageError("no Stellar RPC to check: set STELLAR_RPC_URL or pass --rpc-url");
    const log = createLogger("silent");
    const source = createLedgerSource({ ...config, stellar }, { registry: new Registry(), log });
    try {
      const filled = await withDatabase(config, async (pool) => {
        const filled = await backfillFromHorizon(
          {
            pool,
            source,
            horizonUrl: stellar.horizonUrl,
            networkPassphrase: stellar.networkPassphrase,
            links: { publicBaseUrl: config.publicBaseUrl, networkPassphrase: stellar.networkPassphrase },
            clock: systemClock,
            log,
            apply: applyIncoming,
          },
          { fromLedger },
        );
        // What it applied may have queued webhook deliveries: the servers' workers are told now rather than at their next poll.
        if (filled.some((f) => f.operations > 0)) {
          const wakeup = createDeliveryWakeup({ pool, log });
          wakeup.wake();
          await wakeup.settled();
        }
        return filled;
      });
      if (values.json) {
        print(JSON.stringify(filled.map((f) => ({ position: f.position, accounts: f.accounts, from_ledger: f.fromLedger, to_ledger: f.toLedger, operations: f.operations }))));
      } else if (filled.length === 0) {
        print(`Nothing to fill: the follower waits for no ledger that ${stellar.detectionSource === "rpc" ? "Stellar RPC" : "Horizon"} has dropped.`);
      } else {
        for (const f of filled) {
          print(`Filled ledgers ${f.fromLedger}–${f.toLedger} for ${f.accounts} account(s) (${f.position}): ${f.operations} operation(s) from ${new URL(stellar.horizonUrl).origin}`);
        }
      }
    } finally {
      await source.close();
    }
  },
};
