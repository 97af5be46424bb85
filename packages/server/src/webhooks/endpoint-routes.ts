import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { RouteDeps } from "../routes.js";
import { deliverToEndpoint, insertEvent } from "../events/outbox.js";
import { EVENT_TYPES } from "../events/types.js";
import { badRequest, HttpError, notFound } from "../http/errors.js";
import { idempotencyHeadersSchema, replyIdempotently, type IdempotencyHeaders } from "../http/idempotency.js";
import { listQuerySchema, listSchema, paginate, type PageQuery } from "../http/pagination.js";
import { transaction, type TransactionOptions } from "../db/pool.js";
import { newId } from "../ids.js";
import {
  countEndpoints,
  deleteEndpoint,
  endpointOut,
  endpointPosition,
  getEndpoint,
  insertEndpoint,
  listEndpointsPage,
  lockEndpoint,
  lockMerchantEndpoints,
  parkPendingDeliveries,
  rotateEndpointSecret,
  updateEndpoint,
  type EndpointOut,
  type EndpointRow,
} from "./endpoints-store.js";
import {
  deletedSchema,
  endpointInSchema,
  endpointOutSchema,
  endpointParamsSchema,
  endpointPatchSchema,
  endpointSecretSchema,
  endpointWithSecretSchema,
  MAX_ENDPOINTS_PER_MERCHANT,
  rotateSchema,
  testOutSchema,
  type EndpointIn,
  type EndpointPatch,
  type EndpointSecretOut,
  type EndpointTestOut,
  type EndpointWithSecretOut,
} from "./endpoint-schemas.js";
import { createSecretBox, generateSecret } from "./secrets.js";
import { validateWebhookUrl } from "./ssrf.js";

const error = { $ref: "Error#" } as const;
const authErrors = { 401: error, 429: error } as const;
const tags = ["webhook endpoints"];

function checkEvents(events: string[]): string[] {
  const unique = [...new Set(events)];
  if (unique.includes("*") && unique.length > 1) {
    throw badRequest("invalid_event_type", '"*" already means every event type; give it alone.', "enabled_events");
  }
  const unknown = unique.find((type) => type !== "*" && !(EVENT_TYPES as readonly string[]).includes(type));
  if (unknown !== undefined) {
    throw badRequest("invalid_event_type", `Unknown event type "${unknown}"; use one of ${EVENT_TYPES.join(", ")} or "*".`, "enabled_events");
  }
  return unique;
}

/** For routes whose transaction is all they do: one that a conflict aborted is run again, once. */
const retryOnce = (request: FastifyRequest): TransactionOptions => ({ retryOnConflict: true, log: request.log });

function checkDescription(description: string | null | undefined): void {
  // PostgreSQL text cannot store U+0000; refuse it here rather than fail with a 500.
  if (description?.includes("\u0000")) throw badRequest("invalid_request", "description must not contain NUL characters.", "description");
}

/** `/v1/webhook_endpoints`: where and what to send, the signing secrets, and a test event. */
export const webhookEndpointRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config }) => {
  const box = createSecretBox(config.webhooks.encryptionKey);
  const byId = (merchantId: string, id: string) => getEndpoint(pool, merchantId, id);

  /** Normalized (the URL as it will be requested), or 400 with the SSRF policy's code. */
  function checkUrl(url: string): string {
    const result = validateWebhookUrl(url, { allowHttp: config.webhooks.allowHttp, allowedCidrs: config.webhooks.allowedCidrs });
    if (!result.ok) throw badRequest(result.code, `url: ${result.message}.`, "url");
    return result.url.href;
  }

  function secretOut(row: EndpointRow): EndpointSecretOut {
    const { previous_secret: previous, previous_secret_expires_at: expiresAt } = row;
    const grace = previous !== null && expiresAt !== null && expiresAt > clock.now();
    return {
      secret: box.open(row.secret),
      previous_secret: grace ? box.open(previous) : null,
      previous_secret_expires_at: grace ? expiresAt.toISOString() : null,
    };
  }

  /** The endpoint a POST just wrote, or on an idempotent replay (which stores no secret), as it is now. */
  async function current(merchantId: string, written: EndpointRow | undefined, id: string): Promise<EndpointRow> {
    const row = written ?? (await getEndpoint(pool, merchantId, id));
    if (!row) throw notFound("webhook endpoint");
    return row;
  }

  app.post<{ Body: EndpointIn; Headers: IdempotencyHeaders }>(
    "/webhook_endpoints",
    {
      schema: {
        tags,
        summary: "Create a webhook endpoint",
        description: `Returns the signing \`secret\` (also available later from …/secret). At most ${MAX_ENDPOINTS_PER_MERCHANT} per merchant.`,
        headers: idempotencyHeadersSchema,
        body: endpointInSchema,
        response: { 201: endpointWithSecretSchema, 400: error, 404: error, 413: error, 415: error, 422: error, ...authErrors },
      },
    },
    async (request, reply): Promise<EndpointWithSecretOut> => {
      const merchantId = request.merchant.id;
      const url = checkUrl(request.body.url);
      const enabledEvents = checkEvents(request.body.enabled_events);
      checkDescription(request.body.description);
      let created: EndpointRow | undefined;
      // The stored (replayable) response leaves the secret out: it would sit there unencrypted.
      const out = await replyIdempotently({ pool, clock }, request, reply, async (tx) => {
        await lockMerchantEndpoints(tx, merchantId);
        if ((await countEndpoints(tx, merchantId)) >= MAX_ENDPOINTS_PER_MERCHANT) {
          throw badRequest("too_many_endpoints", `A merchant can have at most ${MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints; delete one first.`);
        }
        created = await insertEndpoint(tx, {
          id: newId("we"),
          merchantId,
          url,
          description: request.body.description ?? null,
          enabledEvents,
          disabled: request.body.disabled ?? false,
          secret: box.seal(generateSecret()),
          now: clock.now(),
        });
        return { status: 201, body: endpointOut(created) };
      });
      return { ...out, secret: box.open((await current(merchantId, created, out.id)).secret) };
    },
  );

  app.get<{ Querystring: PageQuery }>(
    "/webhook_endpoints",
    {
      schema: {
        tags,
        summary: "List webhook endpoints",
        description: "Newest first. Continue with `cursor` (the previous `next_cursor`) or `starting_after`.",
        querystring: listQuerySchema("webhook endpoint"),
        response: { 200: listSchema(endpointOutSchema), 400: error, ...authErrors },
      },
    },
    async (request) => {
      const merchantId = request.merchant.id;
      return paginate(request.query, {
        prefix: "we",
        positionOf: (id) => endpointPosition(pool, merchantId, id),
        fetch: (after, limit) => listEndpointsPage(pool, { merchantId, after, limit }),
        position: (row) => ({ createdAt: row.position_at, id: row.id }),
        out: endpointOut,
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    "/webhook_endpoints/:id",
    {
      schema: {
        tags,
        summary: "Retrieve a webhook endpoint",
        params: endpointParamsSchema,
        response: { 200: endpointOutSchema, 404: error, ...authErrors },
      },
    },
    async (request) => {
      const row = await byId(request.merchant.id, request.params.id);
      if (!row) throw notFound("webhook endpoint");
      return endpointOut(row);
    },
  );

  app.patch<{ Params: { id: string }; Body: EndpointPatch }>(
    "/webhook_endpoints/:id",
    {
      schema: {
        tags,
        summary: "Update a webhook endpoint",
        description: "Only the fields given change; `enabled_events` is replaced as a whole.",
        params: endpointParamsSchema,
        body: endpointPatchSchema,
        response: { 200: endpointOutSchema, 400: error, 404: error, 413: error, 415: error, ...authErrors },
      },
    },
    async (request): Promise<EndpointOut> => {
      const patch = request.body;
      const url = patch.url === undefined ? undefined : checkUrl(patch.url);
      const enabledEvents = patch.enabled_events === undefined ? undefined : checkEvents(patch.enabled_events);
      checkDescription(patch.description);
      return transaction(pool, async (tx) => {
        const before = await lockEndpoint(tx, request.merchant.id, request.params.id);
        if (!before) throw notFound("webhook endpoint");
        const disabled = patch.disabled ?? before.disabled;
        const row = await updateEndpoint(tx, before.id, {
          url: url ?? before.url,
          description: patch.description === undefined ? before.description : patch.description,
          enabledEvents: enabledEvents ?? before.enabled_events,
          disabled,
          now: clock.now(),
        });
        // Workers do not check `disabled`; what is queued must leave the queue.
        if (disabled && !before.disabled) await parkPendingDeliveries(tx, before.id);
        return endpointOut(row);
      }, retryOnce(request));
    },
  );

  app.delete<{ Params: { id: string } }>(
    "/webhook_endpoints/:id",
    {
      schema: {
        tags,
        summary: "Delete a webhook endpoint",
        description: "Stops its deliveries at once; its delivery log stays readable through GET /v1/deliveries/{id}.",
        params: endpointParamsSchema,
        response: { 200: deletedSchema, 404: error, ...authErrors },
      },
    },
    async (request) =>
      transaction(pool, async (tx) => {
        const row = await lockEndpoint(tx, request.merchant.id, request.params.id);
        if (!row) throw notFound("webhook endpoint");
        await deleteEndpoint(tx, row.id, clock.now());
        return { id: row.id, object: "webhook_endpoint" as const, deleted: true as const };
      }, retryOnce(request)),
  );

  app.get<{ Params: { id: string } }>(
    "/webhook_endpoints/:id/secret",
    {
      schema: {
        tags,
        summary: "Reveal an endpoint's signing secret",
        description: "The current secret and, while a rotation grace period runs, the previous one.",
        params: endpointParamsSchema,
        response: { 200: endpointSecretSchema, 404: error, ...authErrors },
      },
    },
    async (request) => {
      const row = await byId(request.merchant.id, request.params.id);
      if (!row) throw notFound("webhook endpoint");
      return secretOut(row);
    },
  );

  app.post<{ Params: { id: string }; Body: { grace_period_hours?: number }; Headers: IdempotencyHeaders }>(
    "/webhook_endpoints/:id/rotate_secret",
    {
      // A POST without a body takes the defaults, as one with `{}` does.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags,
        summary: "Rotate an endpoint's signing secret",
        description:
          "Generates a new secret. Until the grace period ends every delivery carries signatures with both, so " +
          "receivers can switch without losing events. A second rotation retires the previous secret at once.",
        headers: idempotencyHeadersSchema,
        params: endpointParamsSchema,
        body: rotateSchema,
        response: { 200: endpointSecretSchema, 400: error, 404: error, 413: error, 415: error, 422: error, ...authErrors },
      },
    },
    async (request, reply): Promise<EndpointSecretOut> => {
      const merchantId = request.merchant.id;
      const hours = request.body.grace_period_hours ?? config.webhooks.secretRotationGraceHours;
      let rotated: EndpointRow | undefined;
      const out = await replyIdempotently({ pool, clock }, request, reply, async (tx) => {
        const row = await lockEndpoint(tx, merchantId, request.params.id);
        if (!row) throw notFound("webhook endpoint");
        const now = clock.now();
        rotated = await rotateEndpointSecret(tx, row.id, box.seal(generateSecret()), new Date(now.getTime() + hours * 3_600_000), now);
        return { status: 200, body: endpointOut(rotated) };
      });
      return secretOut(await current(merchantId, rotated, out.id));
    },
  );

  app.post<{ Params: { id: string }; Headers: IdempotencyHeaders }>(
    "/webhook_endpoints/:id/test",
    {
      schema: {
        tags,
        summary: "Send a test event",
        description:
          "Records a `webhook.test` event (its object is this endpoint) and queues it for this endpoint only, " +
          "whatever it subscribes to. Follow the delivery with GET /v1/deliveries/{id}.",
        headers: idempotencyHeadersSchema,
        params: endpointParamsSchema,
        response: { 202: testOutSchema, 400: error, 404: error, 409: error, 422: error, ...authErrors },
      },
    },
    async (request, reply) =>
      replyIdempotently({ pool, clock }, request, reply, async (tx) => {
        const merchantId = request.merchant.id;
        const endpoint = await lockEndpoint(tx, merchantId, request.params.id);
        if (!endpoint) throw notFound("webhook endpoint");
        if (endpoint.disabled) throw new HttpError(409, "endpoint_disabled", "This endpoint is disabled; enable it first.");
        const now = clock.now();
        const event = await insertEvent(tx, { merchantId, type: "webhook.test", object: endpointOut(endpoint), now });
        const deliveryId = await deliverToEndpoint(tx, { id: event.id, merchantId, createdAt: now }, endpoint.id);
        const body: EndpointTestOut = { object: "webhook_test", event_id: event.id, delivery_id: deliveryId };
        return { status: 202, body };
      }),
  );
};
