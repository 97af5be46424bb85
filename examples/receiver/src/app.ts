import { expressHandler, type Router } from "@lumenpay/webhooks";
import express, { type ErrorRequestHandler, type Express } from "express";
import helmet from "helmet";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { createAllowList, requireAllowedIp } from "./security/ip-allowlist.js";
import type { SecurityMonitor } from "./security/monitor.js";
import { createRateLimiter } from "./security/rate-limit.js";
import { observeRequests } from "./security/rejections.js";

/**
 * The Express app, in the order a request meets its checks: observed (for logs and alerts),
 * security headers, rate limit, IP allow-list, then the SDK's adapter (body size, content type,
 * signature, timestamp, duplicate id) and the handler. Nothing parses JSON before the adapter:
 * the signature covers the raw bytes.
 */
export function buildApp({ config, router, monitor, log }: { config: Config; router: Router; monitor: SecurityMonitor; log: Logger }): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", config.trustProxy);
  app.use(observeRequests({ monitor, log }));
  if (config.helmet) app.use(helmet());
  const allowList = createAllowList(config.allowedIps);
  if (config.rateLimit.enabled) app.use(createRateLimiter({ perMinute: config.rateLimit.perMinute, allowList }));

  // Outside the allow-list, so a load balancer's health checks reach it.
  app.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });
  // Every method, so a GET gets the adapter's 405 rather than a 404.
  const webhook = expressHandler(router, { bodyLimit: config.maxBodyBytes });
  if (allowList) app.all(config.webhookPath, requireAllowedIp(allowList), webhook);
  else app.all(config.webhookPath, webhook);

  app.use((_req, res) => {
    res.status(404).json({ error: "not_found" });
  });
  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    log.error({ kind: "http.error", err: error }, "unhandled error");
    if (res.headersSent) return res.destroy();
    res.status(500).json({ error: "internal_error" });
  };
  app.use(onError);
  return app;
}
