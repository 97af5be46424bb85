import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyPluginAsync } from "fastify";
import { HttpError } from "../http/errors.js";
import type { Config } from "../config.js";
import type { Metrics } from "./registry.js";

const sha256 = (value: string) => createHash("sha256").update(value).digest();

/** Compares digests, so the comparison takes the same time whatever the token's content or length. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1] ?? "";
  return timingSafeEqual(sha256(given), sha256(token));
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
