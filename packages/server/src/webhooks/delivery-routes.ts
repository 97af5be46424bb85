import type { FastifyPluginAsync } from "fastify";
import { publicKeyFromSeed } from "@lumenpay/webhooks";
import type { RouteDeps } from "../routes.js";
import { notFound } from "../http/errors.js";
import { idParams } from "../http/inputs.js";
import { idempotencyHeadersSchema, replyIdempotently, type IdempotencyHeaders } from "../http/idempotency.js";
import { listQuerySchema, listSchema, paginate, type PageQuery } from "../http/pagination.js";
import {
  DELIVERY_STATUSES,
  deliveryOut,
  deliveryPosition,
  getDelivery,
  getRecovery,
  listAttempts,
  listDeliveries,
  recoveryOut,
  type AttemptOut,
  type DeliveryOut,
  type DeliveryStatus,
  type RecoveryOut,
} from "./deliveries-store.js";
import { endpointParamsSchema } from "./endpoint-schemas.js";
import { getEndpoint } from "./endpoints-store.js";
import { recoveryWindow, retryDelivery, startRecovery } from "./service.js";

export type DeliveryWithAttemptsOut = DeliveryOut & { attempts: AttemptOut[] };

export interface RecoveryIn {
  since: string;
  until?: string;
}

export interface SigningKeyOut {
  signing_key: string | null;
  algorithm: "ed25519";
}

const dateTimeOrNull = { type: ["string", "null"], format: "date-time" } as const;

const deliveryOutProperties = {
  id: { type: "string", example: "del_5hTn1Wq7Zc3Rm8Kv2Lx9Pb" },
  object: { type: "string", enum: ["webhook_delivery"] },
  event_id: { type: "string" },
  event_type: { type: "string" },
  endpoint_id: { type: "string" },
  status: {
    type: "string",
    enum: DELIVERY_STATUSES,
    description: "pending: queued or waiting to retry; endpoint_disabled: parked while the endpoint was off (recoverable).",
  },
  attempt_count: { type: "integer" },
  next_attempt_at: { ...dateTimeOrNull, description: "Null unless pending." },
  last_status_code: { type: ["integer", "null"] },
  last_error: { type: ["string", "null"] },
  created_at: { type: "string", format: "date-time" },
  completed_at: dateTimeOrNull,
} as const;
const deliveryOutRequired = Object.keys(deliveryOutProperties);

const deliveryOutSchema = { type: "object", required: deliveryOutRequired, properties: deliveryOutProperties } as const;

const attemptOutSchema = {
  type: "object",
  required: ["attempt", "started_at", "duration_ms", "status_code", "error_class", "response_body"],
  properties: {
    attempt: { type: "integer", description: "1 for the first attempt." },
    started_at: { type: "string", format: "date-time" },
    duration_ms: { type: "integer" },
    status_code: { type: ["integer", "null"], description: "Null when no response arrived." },
    error_class: {
      type: ["string", "null"],
      description: "timeout, connection, unreachable (the host does not resolve to an address we may connect to), tls, redirect, http_status…; null on success.",
    },
    response_body: { type: ["string", "null"], description: "The first 4 KB of the response body." },
  },
} as const;

const deliveryWithAttemptsSchema = {
  type: "object",
  required: [...deliveryOutRequired, "attempts"],
  properties: {
    ...deliveryOutProperties,
    attempts: { type: "array", items: attemptOutSchema, description: "Oldest first; logs older than the retention period are purged." },
  },
} as const;

const recoveryInSchema = {
  type: "object",
  additionalProperties: false,
  required: ["since"],
  properties: {
    since: { type: "string", maxLength: 40, description: "RFC 3339 date-time: events created at or after this time…" },
    until: { type: "string", maxLength: 40, description: "…and before this one (default: now)." },
  },
} as const;

const recoveryOutSchema = {
  type: "object",
  required: ["id", "object", "endpoint_id", "since", "until", "status", "requeued", "created_at", "finished_at"],
  properties: {
    id: { type: "string", example: "rcv_8Yc2Pn6Hq0Jt4Ws1Dk7Vm3" },
    object: { type: "string", enum: ["webhook_recovery"] },
    endpoint_id: { type: "string" },
    since: { type: "string", format: "date-time" },
    until: { type: "string", format: "date-time" },
    status: { type: "string", enum: ["running", "done"] },
    requeued: { type: "integer", description: "Deliveries put back in the queue so far." },
    created_at: { type: "string", format: "date-time" },
    finished_at: dateTimeOrNull,
  },
} as const;

const signingKeySchema = {
  type: "object",
  required: ["signing_key", "algorithm"],
  properties: {
    signing_key: {
      type: ["string", "null"],
      description: "Stellar G… public key whose Ed25519 `v1a` signatures every delivery carries; null when the server signs with endpoint secrets only.",
    },
    algorithm: { type: "string", enum: ["ed25519"] },
  },
} as const;

const error = { $ref: "Error#" } as const;
const authErrors = { 401: error, 429: error } as const;
const tags = ["webhook deliveries"];

/** Delivery logs, manual retries and recoveries, and the platform key that signs every delivery. */
export const deliveryRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config, wakeup }) => {
  const signingKey = config.webhookSigningSeed === undefined ? null : publicKeyFromSeed(config.webhookSigningSeed);

  app.get<{ Params: { id: string }; Querystring: PageQuery & { status?: DeliveryStatus } }>(
    "/webhook_endpoints/:id/deliveries",
    {
      schema: {
        tags,
        summary: "List an endpoint's deliveries",
        description: "Newest first. Continue with `cursor` (the previous `next_cursor`) or `starting_after`, repeating the filters.",
        params: endpointParamsSchema,
        querystring: listQuerySchema("delivery", { status: { type: "string", enum: DELIVERY_STATUSES } }),
        response: { 200: listSchema(deliveryOutSchema), 400: error, 404: error, ...authErrors },
      },
    },
    async (request) => {
      const merchantId = request.merchant.id;
      const endpoint = await getEndpoint(pool, merchantId, request.params.id);
      if (!endpoint) throw notFound("webhook endpoint");
      return paginate(request.query, {
        prefix: "del",
        positionOf: async (id) => {
          const delivery = await getDelivery(pool, merchantId, id);
          return delivery?.endpoint_id === endpoint.id ? deliveryPosition(delivery) : undefined;
        },
        fetch: (after, limit) => listDeliveries(pool, { merchantId, endpointId: endpoint.id, status: request.query.status, after, limit }),
        position: deliveryPosition,
        out: deliveryOut,
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    "/deliveries/:id",
    {
      schema: {
        tags,
        summary: "Retrieve a delivery with its attempts",
        params: idParams("del"),
        response: { 200: deliveryWithAttemptsSchema, 404: error, ...authErrors },
      },
    },
    async (request): Promise<DeliveryWithAttemptsOut> => {
      const delivery = await getDelivery(pool, request.merchant.id, request.params.id);
      if (!delivery) throw notFound("delivery");
      return { ...deliveryOut(delivery), attempts: await listAttempts(pool, delivery.id) };
    },
  );

  app.post<{ Params: { id: string }; Headers: IdempotencyHeaders }>(
    "/deliveries/:id/retry",
    {
      schema: {
        tags,
        summary: "Retry a delivery now",
        description:
          "Queues the delivery for an immediate attempt, whatever its status; a pending one skips its wait. " +
          "A delivery that had used up its retries gets one more attempt.",
        headers: idempotencyHeadersSchema,
        params: idParams("del"),
        response: { 202: deliveryOutSchema, 400: error, 404: error, 409: error, 422: error, ...authErrors },
      },
    },
    async (request, reply) =>
      replyIdempotently({ pool, clock }, request, reply, async (tx) => ({
        status: 202,
        body: await retryDelivery(tx, request.merchant.id, request.params.id, clock.now()),
        afterCommit: wakeup.wake,
      })),
  );

  app.post<{ Params: { id: string }; Body: RecoveryIn; Headers: IdempotencyHeaders }>(
    "/webhook_endpoints/:id/recover",
    {
      schema: {
        tags,
        summary: "Recover missed deliveries",
        description:
          "Re-queues, with a fresh retry schedule, every failed or parked (endpoint_disabled) delivery to this endpoint " +
          "of events created in [since, until). Runs in the background without a cap, and ends early if the endpoint is " +
          "disabled or deleted meanwhile; follow it with GET /v1/webhook_recoveries/{id}.",
        headers: idempotencyHeadersSchema,
        params: endpointParamsSchema,
        body: recoveryInSchema,
        response: { 202: recoveryOutSchema, 400: error, 404: error, 409: error, 413: error, 415: error, 422: error, ...authErrors },
      },
    },
    async (request, reply): Promise<RecoveryOut> => {
      const window = recoveryWindow(request.body, clock.now());
      return replyIdempotently({ pool, clock }, request, reply, async (tx) => ({
        status: 202,
        body: recoveryOut(await startRecovery(tx, request.merchant.id, request.params.id, window, clock.now())),
      }));
    },
  );

  app.get<{ Params: { id: string } }>(
    "/webhook_recoveries/:id",
    {
      schema: {
        tags,
        summary: "Retrieve a recovery",
        description: "Its progress: `requeued` so far, and `status` done once the whole window has been re-queued.",
        params: idParams("rcv"),
        response: { 200: recoveryOutSchema, 404: error, ...authErrors },
      },
    },
    async (request) => {
      const recovery = await getRecovery(pool, request.merchant.id, request.params.id);
      if (!recovery) throw notFound("webhook recovery");
      return recoveryOut(recovery);
    },
  );

  app.get(
    "/webhooks/signing_key",
    {
      schema: {
        tags,
        summary: "Retrieve the platform signing key",
        description: "Verify the `v1a` Ed25519 signature of deliveries with this key instead of, or besides, the endpoint secret.",
        response: { 200: signingKeySchema, ...authErrors },
      },
    },
    async (): Promise<SigningKeyOut> => ({ signing_key: signingKey, algorithm: "ed25519" }),
  );
};
