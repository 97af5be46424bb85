import { hostname } from "node:os";
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config.js";
import type { Pool } from "../db/pool.js";
import type { Clock } from "../clock.js";
import { DELIVERIES_CHANNEL } from "../events/outbox.js";
import { randomToken } from "../ids.js";
import { every } from "../every.js";
import { createDeliverer } from "./deliver.js";
import { createWebhookSender, type WebhookSender } from "./sender.js";
import { createNotificationListener, pollingOnly } from "./listener.js";
import type { WebhookMetrics } from "./metrics.js";
import { claimDeliveries, releaseDeliveries } from "./queue.js";
import { dropDeletedEndpointDeliveries, processRecoveries, purgeOldAttempts, purgeOldWebhookData } from "./maintenance.js";
import { createSecretBox } from "./secrets.js";
import { createDeliveryWorker } from "./worker.js";

export const USER_AGENT = "Lumenpay-Webhooks/0.1.0";

export interface WebhookRuntimeDeps {
  config: Config;
  pool: Pool;
  /**
   * A direct connection string for LISTEN, which must not come from the pool nor go through a
   * transaction pooler (it would hear nothing); without one the worker only polls.
   */
  connectionString: string | undefined;
  clock: Clock;
  log: FastifyBaseLogger;
  metrics: WebhookMetrics;
  signal: AbortSignal;
  /** Tests inject a sender whose DNS lookup they control. */
  sender?: WebhookSender;
  pollIntervalMs?: number;
  maintenanceIntervalMs?: number;
  /** How often data past its retention is purged; default hourly. */
  purgeIntervalMs?: number;
  /** Which halves run, both by default: the `deliver` role runs the worker, `maintenance` the maintenance loop. */
  run?: { worker: boolean; maintenance: boolean };
}

/**
 * Everything that sends webhooks in this process: the delivery worker (woken by NOTIFY, polling as
 * a fallback) and the maintenance loop (recoveries, attempt-log retention). Any number of processes
 * may run either against one database. Resolves when `signal` aborts and in-flight attempts settle.
 */
export function startWebhookRuntime(deps: WebhookRuntimeDeps): { done: Promise<void> } {
  const { worker, maintenance } = deps.run ?? { worker: true, maintenance: true };
  const parts = [worker ? runWorker(deps) : undefined, maintenance ? runMaintenance(deps) : undefined];
  return { done: Promise.all(parts).then(() => undefined) };
}

/** The delivery worker; resolves once it has stopped and its listener and sender are closed. */
async function runWorker(deps: WebhookRuntimeDeps): Promise<void> {
  const { config, pool, clock, log, signal } = deps;
  const workerId = `${hostname()}:${process.pid}:${randomToken(6)}`;
  const sender =
    deps.sender ??
    createWebhookSender({
      timeoutMs: config.webhooks.timeoutMs,
      allowedCidrs: config.webhooks.allowedCidrs,
      userAgent: USER_AGENT,
    });
  const listener = deps.connectionString
    ? createNotificationListener({ connectionString: deps.connectionString, channel: DELIVERIES_CHANNEL, log })
    : pollingOnly();
  const { leaseMs } = config.webhooks;

  const worker = createDeliveryWorker({
    claim: (limit, skipEndpoints) => claimDeliveries(pool, { workerId, now: clock.now(), leaseMs, limit, skipEndpoints }),
    release: (claimed) => releaseDeliveries(pool, claimed),
    deliver: createDeliverer({
      pool,
      clock,
      sender,
      secrets: createSecretBox(config.webhooks.encryptionKey),
      signingSeed: config.webhookSigningSeed,
      retryScheduleMs: config.webhooks.retryScheduleMs,
      disableAfterHours: config.webhooks.disableAfterHours,
      metrics: deps.metrics,
      random: Math.random,
      log,
    }),
    waitForWork: (ms, s) => listener.wait(ms, s),
    concurrency: config.webhooks.workerConcurrency,
    maxPerEndpoint: config.webhooks.maxConcurrentPerEndpoint,
    pollIntervalMs: deps.pollIntervalMs ?? 1000,
    signal,
    log,
  });
  await worker.done;
  await listener.close();
  if (!deps.sender) await sender.close();
}

/** Recoveries, deliveries of deleted endpoints, and the retention purge (hourly by default). */
function runMaintenance(deps: WebhookRuntimeDeps): Promise<void> {
  const { config, pool, clock, log, signal } = deps;
  let lastPurge = 0;
  return every(
    deps.maintenanceIntervalMs ?? 1000,
    signal,
    (error) => log.error({ err: error }, "webhook maintenance failed; will retry"),
    async () => {
      await processRecoveries(pool, clock.now());
      await dropDeletedEndpointDeliveries(pool, clock.now());
      if (Date.now() - lastPurge > (deps.purgeIntervalMs ?? 3_600_000)) {
        const attempts = await purgeOldAttempts(pool, clock.now(), config.webhooks.logRetentionDays, signal);
        const older = await purgeOldWebhookData(pool, clock.now(), config.webhooks.eventRetentionDays, signal);
        if (attempts + older.deliveries + older.events + older.recoveries > 0) log.info({ attempts, ...older }, "purged webhook data past its retention");
        lastPurge = Date.now();
      }
    },
  );
}
