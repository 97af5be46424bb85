import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApp } from "./app.js";
import { every } from "./every.js";
import { startLocalNetwork, type RunningLocalNetwork } from "./cli/network.js";
import { systemClock, type Clock } from "./clock.js";
import type { Config, Role } from "./config.js";
import { migrate } from "./db/migrate.js";
import { startEmbeddedPostgres } from "./db/embedded.js";
import { createPool } from "./db/pool.js";
import { purgeExpiredIdempotencyKeys } from "./http/idempotency.js";
import { purgeApiKeyUsage } from "./merchants/store.js";
import { startPoolMonitor } from "./metrics/monitor.js";
import { createMetrics } from "./metrics/registry.js";
import { createWebhookMetrics } from "./webhooks/metrics.js";
import { startWebhookRuntime } from "./webhooks/runtime.js";
import { createDeliveryWakeup } from "./webhooks/wakeup.js";
import { expireDuePayments } from "./payments/expiry.js";
import { applyIncoming, applyPaymentRecord, observeSettlement, wroteEvents, type SettlementOutcome } from "./payments/settlement.js";
import { startPaymentIngestion } from "./stellar/ingest.js";
import { startFollowerIngestion } from "./stellar/follower.js";
import { createLedgerSource } from "./stellar/sources.js";

const IDEMPOTENCY_PURGE_INTERVAL_MS = 60 * 60 * 1000;
// The per-key request counts of past minutes are dropped this often.
const API_KEY_USAGE_PURGE_INTERVAL_MS = 60 * 1000;
// Pending payments become expired within this long of expires_at.
const PAYMENT_EXPIRY_INTERVAL_MS = 5_000;

export interface RunningServer {
  /** Where the API listens, with the real port (PORT=0 picks a free one). */
  url: string;
  app: FastifyInstance;
  /** Graceful shutdown (see `startServer`); calling it again returns the same promise. */
  close(): Promise<void>;
}

/**
 * Makes the connection of `response` close once it is answered. Node keeps a connection alive
 * after a request that was in flight when closing began (and Fastify's keep-alive timeout is 72 s),
 * which would hold shutdown up.
 */
function closeWhenAnswered(httpServer: Server, response: ServerResponse): void {
  if (!response.headersSent) response.setHeader("connection", "close");
  // Already streaming, so the header is out: close the connection once the response has been sent.
  else if (!response.writableFinished) response.once("finish", () => setImmediate(() => httpServer.closeIdleConnections()));
}

/**
 * Opens the database (DATABASE_URL, or the embedded PostgreSQL in `config.dataDir`), migrates it,
 * starts the local Horizon when it runs in-process (`config.localHorizon.inProcess`) and a role
 * needs it, listens (the API, or only /health, /ready and /metrics without the `api` role) and
 * starts the background loops of `config.roles`. `close()` shuts down in order: stop accepting connections and let in-flight
 * requests finish (force-closing what is left after `config.shutdownTimeoutMs`), abort the
 * background loops and wait for them, stop the local Horizon, end the pool, stop the embedded
 * database. A failed start undoes itself the same way.
 */
export async function startServer({
  config,
  logger,
  clock = systemClock,
}: {
  config: Config;
  logger: Logger;
  clock?: Clock;
}): Promise<RunningServer> {
  const embedded = config.databaseUrl
    ? undefined
    : await startEmbeddedPostgres({
        dataDir: config.dataDir,
        log: { info: (msg) => logger.info(msg), warn: (msg) => logger.warn(msg) },
      });
  const databaseUrl = config.databaseUrl ?? embedded!.url;
  const pool = createPool(databaseUrl, config.db, logger);
  // LISTEN and session advisory locks need a connection of their own, which a transaction pooler cannot give.
  const directUrl = config.databaseDirectUrl ?? (config.db.pooler === "none" ? databaseUrl : undefined);
  if (!directUrl) {
    logger.warn(
      `DATABASE_URL is a transaction pooler and DATABASE_DIRECT_URL is not set: delivery workers poll every ${config.webhooks.pollIntervalMs} ms instead of ` +
        "listening for other processes' wake-ups, ingestion holds accounts with leases, and statement_timeout must be set on the database role",
    );
  }
  const metrics = createMetrics(pool);
  // Every commit in this process that queues webhook deliveries calls wakeup.wake(): this process's
  // own delivery worker, once it runs, is woken directly, the other processes' by NOTIFY.
  let wakeLocalWorker: (() => void) | undefined;
  const wakeup = createDeliveryWakeup({ pool, log: logger, local: () => wakeLocalWorker?.() });
  // The one signal every background loop gets; shutdown aborts it and waits for the loops to return.
  const background = new AbortController();
  const loops: Promise<unknown>[] = [];
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  let app: FastifyInstance | undefined;
  let localNetwork: RunningLocalNetwork | undefined;

  async function drainHttp(): Promise<void> {
    if (!app) return;
    const httpServer = app.server;
    draining = true;
    for (const response of inFlight) closeWhenAnswered(httpServer, response);
    const force = setTimeout(() => {
      logger.warn(`requests still running after ${config.shutdownTimeoutMs} ms; closing their connections`);
      httpServer.closeAllConnections();
    }, config.shutdownTimeoutMs);
    try {
      await app.close();
    } finally {
      clearTimeout(force);
    }
  }

  const steps: Array<[string, () => Promise<unknown>]> = [
    ["HTTP server", drainHttp],
    [
      "background loops",
      () => {
        background.abort();
        return Promise.all(loops);
      },
    ],
    ["local Horizon", async () => localNetwork?.close()],
    ["delivery wake-up", () => wakeup.settled()],
    ["database pool", () => pool.end()],
    ["embedded PostgreSQL", async () => embedded?.stop()],
  ];
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      // Every step runs even if an earlier one failed, so nothing is left running.
      let failed = false;
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (error) {
          failed = true;
          logger.error({ err: error }, `shutdown: stopping the ${name} failed`);
        }
      }
      if (failed) throw new Error("shutdown did not complete cleanly");
    })();
    return closing;
  };

  try {
    const runs = (role: Role) => config.roles.includes(role);
    // Only the API (payment links, stellar.toml) and ingestion talk to Horizon.
    if (config.localHorizon.inProcess && (runs("api") || runs("ingest"))) {
      localNetwork = await startLocalNetwork(config, logger);
      // Payment links and stellar.toml must name the port it really got (LOCAL_HORIZON_PORT=0 picks one).
      config = { ...config, stellar: { ...config.stellar, horizonUrl: localNetwork.url, rpcUrl: localNetwork.rpcUrl } };
    }
    const applied = await migrate(pool);
    if (applied.length > 0) logger.info({ migrations: applied }, `applied ${applied.length} migration(s)`);

    app = await buildApp({ config, pool, clock, logger, metrics, wakeup, directUrl, api: runs("api") });
    const httpServer = app.server;
    httpServer.on("request", (_request, response: ServerResponse) => {
      if (draining) return closeWhenAnswered(httpServer, response);
      inFlight.add(response);
      response.once("close", () => inFlight.delete(response));
    });
    await app.listen({ host: config.host, port: config.port });

    const { signal } = background;
    if (config.poolMonitoring.enabled) {
      startPoolMonitor({ pool, intervalMs: config.poolMonitoring.intervalMs, log: logger, signal });
    }
    if (runs("deliver") || runs("maintenance")) {
      const webhookMetrics = createWebhookMetrics(metrics.registry, pool);
      const run = { worker: runs("deliver"), maintenance: runs("maintenance") };
      const runtime = startWebhookRuntime({ config, pool, connectionString: directUrl, clock, log: logger, metrics: webhookMetrics, signal, run, wakeup });
      wakeLocalWorker = runtime.wakeWorker;
      loops.push(runtime.done);
    }
    // Called with each outcome once its page's transaction has committed (the wake-ups of one page coalesce).
    const observe = (outcome: SettlementOutcome) => {
      observeSettlement(metrics, outcome);
      if (wroteEvents(outcome)) wakeup.wake();
    };
    if (runs("ingest") && config.stellar.ingestMode === "follower") {
      loops.push(
        startFollowerIngestion({
          pool,
          connectionString: directUrl,
          source: createLedgerSource(config, { registry: metrics.registry, log: logger }),
          networkPassphrase: config.stellar.networkPassphrase,
          links: { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase },
          clock,
          log: logger,
          metrics,
          signal,
          apply: applyIncoming,
          observe,
        }).done,
      );
    } else if (runs("ingest")) {
      loops.push(
        startPaymentIngestion({
          config,
          pool,
          connectionString: directUrl,
          clock,
          log: logger,
          metrics,
          signal,
          apply: applyPaymentRecord,
          observe,
        }).done,
      );
    }
    if (runs("maintenance")) {
      const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase };
      loops.push(
        every(PAYMENT_EXPIRY_INTERVAL_MS, signal, (err) => logger.error({ err }, "expiring payments failed"), async () => {
          const expired = await expireDuePayments(pool, clock.now(), links, { wake: wakeup.wake });
          if (expired > 0) logger.info(`expired ${expired} payment(s)`);
        }),
      );
      loops.push(
        every(API_KEY_USAGE_PURGE_INTERVAL_MS, signal, (err) => logger.error({ err }, "purging API key usage failed"), async () => {
          await purgeApiKeyUsage(pool, clock.now());
        }),
      );
      loops.push(
        every(IDEMPOTENCY_PURGE_INTERVAL_MS, signal, (err) => logger.error({ err }, "purging idempotency keys failed"), async () => {
          const purged = await purgeExpiredIdempotencyKeys(pool, clock.now(), signal);
          if (purged > 0) logger.info(`purged ${purged} expired idempotency key(s)`);
        }),
      );
    }
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }

  const { port } = app.server.address() as AddressInfo;
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
  const where = embedded ? `embedded PostgreSQL in ${config.dataDir}` : "PostgreSQL from DATABASE_URL";
  const roles = config.roles;
  const serves = roles.includes("api") ? `docs at ${url}/docs` : "serving /health, /ready and /metrics only";
  logger.info({ url, port, roles }, `Lumenpay (${roles.join(", ")}) is listening on ${url} (${where}); ${serves}`);
  return { url, app, close };
}
