import { hostname } from "node:os";
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config.js";
import { namedStatements, type Pool } from "../db/pool.js";
import type { Clock } from "../clock.js";
import { randomToken } from "../ids.js";
import { every } from "../every.js";
import { createDeliverer } from "./deliver.js";
import { createWebhookSender, type WebhookSender } from "./sender.js";
import { createNotificationListener, pollingOnly, type NotificationListener } from "./listener.js";
import type { WebhookMetrics } from "./metrics.js";
import { claimDeliveries, releaseDeliveries } from "./queue.js";
import { dropDeletedEndpointDeliveries, processRecoveries, purgeOldAttempts, purgeOldWebhookData } from "./maintenance.js";
import { createSecretBox } from "./secrets.js";
import { createDeliveryWakeup, DELIVERIES_CHANNEL, type DeliveryWakeup } from "./wakeup.js";
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
  /**
   * Wakes the workers after this runtime's own commits that queue deliveries (recoveries, the
   * `endpoint.disabled` event). server.ts passes the process's one wake-up, whose `local` calls this
   * runtime's `wakeWorker`; by default one on `pool` that wakes this runtime's worker directly.
   */
  wakeup?: DeliveryWakeup;
  /** Tests inject a sender whose DNS lookup they control. */
  sender?: WebhookSender;
  /** The worker's fallback poll, when no wake-up comes; default `config.webhooks.pollIntervalMs`. */
  pollIntervalMs?: number;
  maintenanceIntervalMs?: number;
  /** How often data past its retention is purged; default hourly. */
  purgeIntervalMs?: number;
  /** Which halves run, both by default: the `deliver` role runs the worker, `maintenance` the maintenance loop. */
  run?: { worker: boolean; maintenance: boolean };
}

export interface WebhookRuntime {
  /** Resolves when `signal` has aborted and in-flight attempts have settled. */
  done: Promise<void>;
  /** Ends the worker's wait at once (deliveries were queued in this process); a no-op without the worker. */
  wakeWorker(): void;
}

/**
 * Everything that sends webhooks in this process: the delivery worker (woken after commits that
 * queue deliveries, polling as a fallback) and the maintenance loop (recoveries, attempt-log
 * retention). Any number of processes may run either against one database.
 */
export function startWebhookRuntime(deps: WebhookRuntimeDeps): WebhookRuntime {
  const { worker, maintenance } = deps.run ?? { worker: true, maintenance: true };
  const listener = worker
    ? deps.connectionString
      ? createNotificationListener({ connectionString: deps.connectionString, channel: DELIVERIES_CHANNEL, log: deps.log })
      : pollingOnly()
    : undefined;
  const wakeup = deps.wakeup ?? createDeliveryWakeup({ pool: deps.pool, log: deps.log, local: listener?.wake });
  const parts = [listener ? runWorker(deps, listener, wakeup) : undefined, maintenance ? runMaintenance(deps, wakeup) : undefined];
  return { done: Promise.all(parts).then(() => wakeup.settled()), wakeWorker: () => listener?.wake() };
}

/** The delivery worker; resolves once it has stopped and its listener and sender are closed. */
async function runWorker(deps: WebhookRuntimeDeps, listener: NotificationListener, wakeup: DeliveryWakeup): Promise<void> {
  const { config, pool, clock, log, signal } = deps;
  const workerId = `${hostname()}:${process.pid}:${randomToken(6)}`;
  const sender =
    deps.sender ??
    createWebhookSender({
      timeoutMs: config.webhooks.timeoutMs,
      allowedCidrs: config.webhooks.allowedCidrs,
      userAgent: USER_AGENT,
    });
  const { leaseMs } = config.webhooks;
  const prepared = namedStatements(config.db);

  const worker = createDeliveryWorker({
    claim: (limit, room) => claimDeliveries(pool, { workerId, now: clock.now(), leaseMs, limit, ...room, prepared }),
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
      wake: wakeup.wake,
      preparedStatements: prepared,
    }),
    waitForWork: (ms, s) => listener.wait(ms, s),
    concurrency: config.webhooks.workerConcurrency,
    maxPerEndpoint: config.webhooks.maxConcurrentPerEndpoint,
    pollIntervalMs: deps.pollIntervalMs ?? config.webhooks.pollIntervalMs,
    signal,
    log,
  });
  await worker.done;
  await listener.close();
  if (!deps.sender) await sender.close();
}

/** Recoveries, deliveries of deleted endpoints, and the retention purge (hourly by default). */
function runMaintenance(deps: WebhookRuntimeDeps, wakeup: DeliveryWakeup): Promise<void> {
  const { config, pool, clock, log, signal } = deps;
  let lastPurge = 0;
  return every(
    deps.maintenanceIntervalMs ?? 1000,
    signal,
    (error) => log.error({ err: error }, "webhook maintenance failed; will retry"),
    async () => {
      await processRecoveries(pool, clock.now(), wakeup.wake);
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
