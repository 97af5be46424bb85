import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { Config } from "./config.js";
import type { Pool } from "./db/pool.js";
import type { Clock } from "./clock.js";
import { errorSchema, registerErrorHandler, type ErrorBody } from "./http/errors.js";
import { refuseHostileInput } from "./http/inputs.js";
import { newId } from "./ids.js";
import { createMetrics, type Metrics } from "./metrics/registry.js";
import { registerRoutes } from "./routes.js";
import { createDeliveryWakeup, type DeliveryWakeup } from "./webhooks/wakeup.js";

export interface AppDeps {
  config: Config;
  pool: Pool;
  clock: Clock;
  logger: FastifyBaseLogger;
  /** Shared with background workers so all metrics land on one registry; created when absent. */
  metrics?: Metrics;
  /**
   * Called after each commit that queued webhook deliveries: server.ts passes the process's one
   * wake-up (which also wakes its own delivery worker directly); by default a NOTIFY on `pool`.
   */
  wakeup?: DeliveryWakeup;
  /**
   * A direct (non-pooler) connection to the database, for LISTEN: stellar.toml files and API keys are then
   * cached, and dropped as soon as their merchant or key changes on any instance (re-read every second
   * whatever happens); without it stellar.toml files are re-read every second and keys on every request.
   */
  directUrl?: string;
  /**
   * False in a process without the `api` role: the same server, hooks and error shapes, serving only
   * /health, /ready and /metrics (404 for the rest), so probes and scrapes work whatever it runs.
   */
  api?: boolean;
}

export const BODY_LIMIT_BYTES = 1024 * 1024;
const VERSION = "0.1.0";

/** Builds the whole HTTP application; `server.ts` and the tests call it the same way. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const metrics = deps.metrics ?? createMetrics(deps.pool);
  const wakeup = deps.wakeup ?? createDeliveryWakeup({ pool: deps.pool, log: deps.logger });
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: () => newId("req"),
    requestIdHeader: false,
    // `example` is OpenAPI documentation, not validation: let schemas carry it.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", allErrors: false, keywords: ["example"] } },
    // Lets in-flight requests finish on close while refusing new keep-alive requests.
    forceCloseConnections: "idle",
    return503OnClosing: true,
    // A malformed percent-encoding in the URL answers in the API's error shape, not Fastify's.
    // A request Node's HTTP parser refuses (e.g. a GET with a body it cannot frame) still answers in the API's shape.
    clientErrorHandler: (error, socket) => {
      // Bytes after a response on a closing connection (an unread body) are no new request to answer;
      // Node marks the response in progress on the socket, as its own default handler checks.
      if ((socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) return socket.destroy();
      const body = JSON.stringify({ error: { code: "invalid_request", message: "The HTTP request is malformed." } } satisfies ErrorBody);
      const status = (error as { code?: string }).code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      else socket.destroy();
    },
    frameworkErrors: (error, _request, reply) => {
      const body: ErrorBody = { error: { code: error.code === "FST_ERR_BAD_URL" ? "invalid_url" : "invalid_request", message: "The URL is malformed." } };
      void (reply as unknown as FastifyReply).status(400).send(body);
    },
  });

  // JSON only: anything else is a 415 (Fastify also accepts text/plain by default).
  app.removeContentTypeParser("text/plain");
  // Callback-style hooks: an async hook costs a promise on every request.
  app.addHook("onSend", (request, reply, payload, done) => {
    reply.header("request-id", request.id);
    done(null, payload);
  });
  app.addHook("onResponse", (request, reply, done) => {
    metrics.httpRequestDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? "unmatched",
        status_class: `${Math.floor(reply.statusCode / 100)}xx`,
      },
      reply.elapsedTime / 1000,
    );
    done();
  });

  // A NOTIFY still in flight finishes before the caller ends the pool.
  app.addHook("onClose", () => wakeup.settled());

  app.addSchema(errorSchema);
  registerErrorHandler(app);
  refuseHostileInput(app);

  if (deps.api === false) {
    await registerRoutes(app, { ...deps, metrics, wakeup });
    return app;
  }
  await app.register(swagger, {
    // Shared schemas keep their $id as their name (components.schemas.Payment, not def-1), so generated
    // clients get stable type names whatever the order schemas were added in.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
    openapi: {
      info: { title: "Lumenpay API", version: VERSION, description: "Payments on the Stellar network." },
      components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "sk_… API key" } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  await registerRoutes(app, { ...deps, metrics, wakeup });
  return app;
}
