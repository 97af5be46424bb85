import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyPluginAsync } from "fastify";
import { HttpError } from "../http/errors.js";
import type { Metrics } from "./registry.js";

const sha256 = (value: string) => createHash("sha256").update(value).digest();

/** Compares digests, so the comparison takes the same time whatever the token's content or length. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1] ?? "";
  return timingSafeEqual(sha256(given), sha256(token));
}

/** `GET /metrics`: Prometheus text exposition, behind `Authorization: Bearer <METRICS_TOKEN>` when one is set. */
export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics; token: string | undefined }> = async (app, { metrics, token }) => {
  app.get(
    "/metrics",
    {
      schema: {
        hide: true,
        response: {
          200: { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } },
          401: { $ref: "Error#" },
        },
      },
    },
    async (request, reply) => {
      if (token !== undefined && !bearerMatches(request.headers.authorization, token)) {
        reply.header("www-authenticate", 'Bearer realm="metrics"');
        throw new HttpError(401, "invalid_metrics_token", "Send the metrics token as Authorization: Bearer <token>.");
      }
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text);
    },
  );
};
