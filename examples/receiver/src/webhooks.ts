import { createRouter, Webhook, WebhookVerificationError, type ReplayStore, type Router } from "@lumenpay/webhooks";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { registerHandlers } from "./handlers.js";
import type { OrderStore } from "./orders.js";
import { noteVerification } from "./security/rejections.js";

/** The SDK's router with the example handlers, verifying with every configured secret and key. */
export function createWebhookRouter({
  config,
  replayStore,
  orders,
  log,
}: {
  config: Config;
  replayStore: ReplayStore;
  orders: OrderStore;
  log: Logger;
}): Router {
  const webhook = new Webhook({
    secrets: config.secrets,
    publicKeys: config.signingKey ? [config.signingKey] : [],
    toleranceSeconds: config.replay.toleranceSeconds,
  });
  const router = createRouter({
    // Tells the request's monitor which check failed (or which event passed); the answer is the SDK's.
    webhook: {
      async verify(rawBody, headers) {
        try {
          const event = await webhook.verify(rawBody, headers);
          noteVerification({ event });
          return event;
        } catch (error) {
          if (error instanceof WebhookVerificationError) noteVerification({ error });
          throw error;
        }
      },
    },
    replayStore,
    onDuplicate: config.replay.duplicateMode,
    onError: (error, event) =>
      log.error({ kind: "webhook.failed", webhook_id: event?.id, event_type: event?.type, err: error }, "webhook handler or replay store failed"),
  });
  return registerHandlers(router, { orders, log, timeoutMs: config.handlerTimeoutMs });
}
