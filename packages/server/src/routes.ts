import type { FastifyInstance } from "fastify";
import type { AppDeps } from "./app.js";
import type { Metrics } from "./metrics/registry.js";
import { requireApiKey } from "./http/auth.js";
import { healthRoutes } from "./health/routes.js";
import { merchantRoutes } from "./merchants/routes.js";

export type RouteDeps = AppDeps & { metrics: Metrics };

/** Every plugin, registered explicitly: public routes first, then the authenticated `/v1` context. */
export async function registerRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  await app.register(healthRoutes, { pool: deps.pool });

  await app.register(async (v1) => {
    requireApiKey(v1, { pool: deps.pool, clock: deps.clock, rateLimitPerMinute: deps.config.api.rateLimitPerMinute });
    await v1.register(merchantRoutes, deps);
  }, { prefix: "/v1" });
}
