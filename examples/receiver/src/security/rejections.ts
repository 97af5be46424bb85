import { AsyncLocalStorage } from "node:async_hooks";
import type { RequestHandler } from "express";
import type { Logger } from "pino";
import { clientIp } from "./ip-allowlist.js";
import type { RejectionReason, SecurityMonitor } from "./monitor.js";

/**
 * Every refusal, whichever layer made it (allow-list, rate limiter, the SDK's adapter or its
 * verifier), ends in a status code; this middleware watches the response and reports the refusal
 * once. What only the verifier knows (which check failed, which event passed) reaches it through
 * an AsyncLocalStorage scoped to the request, since the SDK's adapter answers on its own.
 */

const REASONS: Record<number, RejectionReason> = {
  400: "invalid_payload",
  401: "invalid_signature",
  403: "ip_not_allowed",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
};

interface RequestContext {
  verificationError?: string;
  event?: { id: string; type: string };
}

const requestContext = new AsyncLocalStorage<RequestContext>();

/** Called by the verifier: the delivery was rejected (error class name) or verified (its event). */
export function noteVerification(outcome: { error: Error } | { event: { id: string; type: string } }): void {
  const context = requestContext.getStore();
  if (!context) return;
  if ("error" in outcome) context.verificationError = outcome.error.name;
  else context.event = { id: outcome.event.id, type: outcome.event.type };
}

// Attacker-chosen header values are logged, so they are cut short.
const clip = (value: string | string[] | undefined) => (typeof value === "string" ? value.slice(0, 200) : undefined);

/** Mounted first: logs each answered webhook and hands every refusal to the monitor. */
export function observeRequests({ monitor, log }: { monitor: SecurityMonitor; log: Logger }): RequestHandler {
  return (req, res, next) => {
    const context: RequestContext = {};
    const started = performance.now();
    res.once("finish", () => {
      const reason = REASONS[res.statusCode];
      if (reason) {
        return monitor.reject({
          ip: clientIp(req),
          reason,
          status: res.statusCode,
          detail: context.verificationError,
          userAgent: clip(req.headers["user-agent"]),
          webhookId: clip(req.headers["webhook-id"] ?? req.headers["stellar-webhook-id"]),
          method: req.method,
          path: req.path,
        });
      }
      if (!context.event) return;
      log.info(
        {
          kind: "webhook.answered",
          webhook_id: context.event.id,
          event_type: context.event.type,
          status: res.statusCode,
          ip: clientIp(req),
          duration_ms: Math.round(performance.now() - started),
        },
        `webhook ${context.event.type} answered ${res.statusCode}`,
      );
    });
    requestContext.run(context, next);
  };
}
