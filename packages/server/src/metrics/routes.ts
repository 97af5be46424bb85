import type { FastifyPluginAsync } from "fastify";
import { HttpError } from "../http/errors.js";
import { sameToken } from "../ids.js";
import type { Config } from "../config.js";
import type { Metrics } from "./registry.js";

function bearerMatches(header: string | undefined, token: string): boolean {
  return sameToken(/^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1] ?? "", token);
}

/**
 * `GET /metrics`: Prometheus text exposition, behind `Authorization: Bearer <METRICS_TOKEN>` when one
 * is set. In production without a token it answers 403 unless METRICS_PUBLIC opens it.
 */
export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics; config: Pick<Config, "metricsToken" | "metricsPublic" | "production"> }> = async (
  app,
  { metrics, config },
) => {
  const token = config.metricsToken;
  const closed = token === undefined && config.production && !config.metricsPublic;
  app.get(
    "/metrics",
    {
      schema: {
        hide: true,
        response: {
          200: { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } },
          401: { $ref: "Error#" },
          403: { $ref: "Error#" },
        },
      },
    },
    async (request, reply) => {
      if (closed) throw new HttpError(403, "metrics_not_public", "Set METRICS_TOKEN (or METRICS_PUBLIC=true) to expose /metrics in production.");
      if (token !== undefined && !bearerMatches(request.headers.authorization, token)) {
        reply.header("www-authenticate", 'Bearer realm="metrics"');
        throw new HttpError(401, "invalid_metrics_token", "Send the metrics token as Authorization: Bearer <token>.");
      }
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text);
    },
  );
};
