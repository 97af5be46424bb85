import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { buildApp } from "./app.js";
import type { Config } from "./config.js";
import { createLogger } from "./logger.js";
import { MemoryOrderStore, type OrderStore } from "./orders.js";
import { openReplayStore } from "./replay-store.js";
import { slackNotifier } from "./security/alert.js";
import { createSecurityMonitor, SlidingWindowCounter } from "./security/monitor.js";
import { createWebhookRouter } from "./webhooks.js";

/**
 * TLS 1.2 and 1.3 only, with forward-secret AEAD suites (Mozilla's "intermediate" list): TLS 1.0
 * and 1.1, CBC and static-RSA suites are refused in the handshake. Node's default minimum is
 * already 1.2, but `--tls-min-v1.0` in NODE_OPTIONS would lower it; this pins it.
 */
export const TLS_OPTIONS = {
  minVersion: "TLSv1.2",
  ciphers: [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ].join(":"),
  honorCipherOrder: true,
} as const satisfies https.ServerOptions;

// Counters for this many IP × reason pairs at most; the least recently seen go first.
const MAX_MONITORED_KEYS = 10_000;
// Slow clients may not hold sockets open: headers within 10 s, a whole request within 30 s
// (Lumenpay itself gives up after 15 s).
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

export interface Receiver {
  /** The webhook URL, with the port actually bound (PORT=0 picks one). */
  url: string;
  port: number;
  /** Stops accepting, lets requests in flight finish (up to the handler timeout), closes Redis. */
  close(): Promise<void>;
}

export interface ReceiverDeps {
  log?: Logger;
  orders?: OrderStore;
}

const UNSPECIFIED_HOSTS = new Set([undefined, "::", "0.0.0.0"]);

export async function startReceiver(config: Config, deps: ReceiverDeps = {}): Promise<Receiver> {
  const log = deps.log ?? createLogger(config.logLevel);
  const replay = await openReplayStore(config.replay, log);
  let server: http.Server;
  try {
    const { monitoring } = config;
    const monitor = createSecurityMonitor({
      log,
      counter: monitoring.enabled
        ? new SlidingWindowCounter({ threshold: monitoring.threshold, windowMs: monitoring.windowSeconds * 1000, maxKeys: MAX_MONITORED_KEYS })
        : undefined,
      windowSeconds: monitoring.windowSeconds,
      alertEmail: monitoring.alertEmail,
      notify: slackNotifier(monitoring.slackWebhookUrl, log),
    });
    const router = createWebhookRouter({ config, replayStore: replay.store, orders: deps.orders ?? new MemoryOrderStore(), log });
    const app = buildApp({ config, router, monitor, log });
    server = config.tls ? https.createServer({ ...TLS_OPTIONS, ...config.tls }, app) : http.createServer(app);
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.listen(config.port, config.host);
    await once(server, "listening");
  } catch (error) {
    await replay.close();
    throw error;
  }

  const { port } = server.address() as AddressInfo;
  const host = UNSPECIFIED_HOSTS.has(config.host) ? "127.0.0.1" : config.host!.includes(":") ? `[${config.host}]` : config.host;
  const url = `${config.tls ? "https" : "http"}://${host}:${port}${config.webhookPath}`;
  log.info(
    {
      kind: "receiver.started",
      url,
      port,
      https: config.tls !== undefined,
      replay_store: replay.kind,
      allowed_ips: config.allowedIps.length,
      rate_limiting: config.rateLimit.enabled,
      security_monitoring: config.monitoring.enabled,
    },
    `Lumenpay webhook receiver listening on ${url}`,
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive sockets close at once; busy ones get the handler's time to answer.
      const force = setTimeout(() => server.closeAllConnections(), config.handlerTimeoutMs + 1000);
      await closed;
      clearTimeout(force);
      await replay.close();
      log.info({ kind: "receiver.stopped" }, "receiver stopped");
    })());
  return { url, port, close };
}
