import type { FastifyPluginAsync } from "fastify";
import type { Pool } from "../db/pool.js";
import { migrationsApplied, readMigrations } from "../db/migrate.js";

const statusSchema = {
  type: "object",
  properties: { status: { type: "string" }, database: { type: "string" }, migrations: { type: "string" } },
} as const;

/** `/health`: the process is alive. `/ready`: it can serve traffic (database reachable and migrated). */
export const healthRoutes: FastifyPluginAsync<{ pool: Pool }> = async (app, { pool }) => {
  // The shipped migrations never change while the process runs: read them once, not per probe.
  const versions = (await readMigrations()).map((m) => m.version);
  app.get("/health", { schema: { hide: true, response: { 200: statusSchema } } }, async () => ({ status: "ok" }));

  app.get("/ready", { schema: { hide: true, response: { 200: statusSchema, 503: statusSchema } } }, async (request, reply) => {
    try {
      const migrated = await migrationsApplied(pool, versions);
      if (!migrated) return reply.status(503).send({ status: "not_ready", database: "ok", migrations: "pending" });
      return { status: "ready", database: "ok", migrations: "applied" };
    } catch (error) {
      request.log.warn({ err: error }, "readiness check failed");
      return reply.status(503).send({ status: "not_ready", database: "unreachable" });
    }
  });
};
