import type { FastifyError, FastifyInstance } from "fastify";

/** The one error type of the HTTP boundary: `{"error": {"code", "message", "param"?}}` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param?: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const badRequest = (code: string, message: string, param?: string) => new HttpError(400, code, message, param);
export const notFound = (what: string) => new HttpError(404, "resource_not_found", `No such ${what}.`);

export interface ErrorBody {
  error: { code: string; message: string; param?: string };
}

/** JSON schema of an error response, referenced from every route's `response`. */
export const errorSchema = {
  $id: "Error",
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" }, param: { type: "string" } },
    },
  },
} as const;

function validationParam(error: FastifyError): string | undefined {
  const first = error.validation?.[0];
  if (!first) return undefined;
  const missing = (first.params as { missingProperty?: string }).missingProperty;
  const additional = (first.params as { additionalProperty?: string }).additionalProperty;
  const pathParts = first.instancePath.split("/").filter(Boolean);
  if (missing) pathParts.push(missing);
  if (additional) pathParts.push(additional);
  return pathParts.length > 0 ? pathParts.join(".") : undefined;
}

const FASTIFY_CODES: Record<string, { status: number; code: string; message?: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: "unsupported_media_type", message: "Send JSON with Content-Type: application/json." },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: "payload_too_large", message: "The request body exceeds 1 MiB." },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: "invalid_json", message: "The body is empty; send a JSON object." },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: "invalid_json", message: "The body is not valid JSON." },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: "invalid_request", message: "Content-Length does not match the body." },
};

/**
 * The database could not be reached, or went away during the request (a restart, a failover, a pool
 * that could not connect in time): nothing was done that a retry would repeat wrongly, so the client is
 * told to retry rather than that something broke.
 */
function databaseUnavailable(error: { code?: unknown; message?: unknown }): boolean {
  const code = typeof error.code === "string" ? error.code : "";
  return (
    ["ECONNREFUSED", "ECONNRESET", "EPIPE", "57P01", "57P02", "57P03"].includes(code) ||
    /^08[0-9A-Z]{3}$/.test(code) ||
    // node-postgres's own errors carry no code: a connection that ended during a query, or before the
    // next query of a client lent out when it ended, or a pool that could not connect in time.
    /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/.test(String(error.message))
  );
}

/** Maps every error to the API's error shape; 5xx messages never leak internals. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof HttpError) {
      const body: ErrorBody = { error: { code: error.code, message: error.message } };
      if (error.param) body.error.param = error.param;
      return reply.status(error.status).send(body);
    }
    // A path id of another shape (idParams) is simply absent, like an unknown one.
    if (error.validation && error.validationContext === "params") {
      return reply.status(404).send({ error: { code: "resource_not_found", message: "No such resource: the id does not exist." } });
    }
    if (error.validation) {
      const param = validationParam(error);
      const message = `Invalid ${error.validationContext ?? "request"}: ${param ? `${param} ` : ""}${error.validation[0]?.message ?? "is invalid"}.`;
      // A bad header is named by its code (invalid_idempotency_key), as the handler's own checks name it.
      const code = error.validationContext === "headers" && param ? `invalid_${param.replaceAll("-", "_")}` : "invalid_request";
      return reply.status(400).send({ error: { code, message, ...(param ? { param } : {}) } });
    }
    const known = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (known) {
      return reply.status(known.status).send({ error: { code: known.code, message: known.message ?? error.message } });
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ error: { code: "invalid_request", message: error.message } });
    }
    if (databaseUnavailable(error)) {
      request.log.warn({ reason: error.message }, "database unavailable; answered 503");
      reply.header("retry-after", "1");
      return reply.status(503).send({ error: { code: "database_unavailable", message: "The database cannot be reached right now; retry in a moment." } });
    }
    request.log.error({ err: error }, "unhandled error");
    return reply.status(500).send({ error: { code: "internal_error", message: "Something went wrong on our side." } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: "route_not_found", message: `No route ${request.method} ${request.url.split("?")[0]}.` } }),
  );
}
