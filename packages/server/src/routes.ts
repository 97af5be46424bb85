import type { FastifyInstance } from "fastify";
import type { AppDeps } from "./app.js";
import type { Metrics } from "./metrics/registry.js";
import type { DeliveryWakeup } from "./webhooks/wakeup.js";
import { requireApiKey } from "./http/auth.js";
import { healthRoutes } from "./health/routes.js";
import { merchantRoutes } from "./merchants/routes.js";
import { paymentRoutes } from "./payments/routes.js";
import { unmatchedPaymentRoutes } from "./payments/unmatched-routes.js";
import { metricsRoutes } from "./metrics/routes.js";
import { sep1Routes } from "./sep1/routes.js";
import { checkoutRoutes } from "./checkout/routes.js";
import { eventRoutes } from "./events/routes.js";
import { webhookEndpointRoutes } from "./webhooks/endpoint-routes.js";
import { deliveryRoutes } from "./webhooks/delivery-routes.js";
import { registerDashboard } from "./dashboard/routes.js";
import { listenForMerchantChanges, type MerchantChanges } from "./merchants/changes.js";

/** `merchantChanges` is there when the app has a direct connection to LISTEN on (see `AppDeps.directUrl`). */
export type RouteDeps = AppDeps & { metrics: Metrics; wakeup: DeliveryWakeup; merchantChanges?: MerchantChanges };

/**
 * Every plugin, registered explicitly: the probes, then (with the `api` role) public routes and the
 * dashboard (its own sign-in), then the authenticated `/v1` context.
 */
export async function registerRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  await app.register(healthRoutes, { pool: deps.pool });
  await app.register(metricsRoutes, { metrics: deps.metrics, config: deps.config });
  if (deps.api === false) return;
  if (deps.directUrl) {
    const merchantChanges = listenForMerchantChanges(deps.directUrl, app.log);
    app.addHook("onClose", () => merchantChanges.close());
    deps = { ...deps, merchantChanges };
  }
  await app.register(sep1Routes, deps);
  await app.register(checkoutRoutes, deps);
  await app.register(async (dashboard) => registerDashboard(dashboard, deps), { prefix: "/dashboard" });

  await app.register(async (v1) => {
    requireApiKey(v1, { pool: deps.pool, clock: deps.clock, merchantChanges: deps.merchantChanges, ...deps.config.api });
    await v1.register(merchantRoutes, deps);
    await v1.register(paymentRoutes, deps);
    await v1.register(unmatchedPaymentRoutes, deps);
    await v1.register(webhookEndpointRoutes, deps);
    await v1.register(deliveryRoutes, deps);
    await v1.register(eventRoutes, deps);
  }, { prefix: "/v1" });
}
