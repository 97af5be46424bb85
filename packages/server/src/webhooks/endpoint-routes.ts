import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { RouteDeps } from "../routes.js";
import { notFound } from "../http/errors.js";
import { idempotencyHeadersSchema, replyIdempotently, type IdempotencyHeaders } from "../http/idempotency.js";
import { listQuerySchema, listSchema, paginate, type PageQuery } from "../http/pagination.js";
import { transaction, type TransactionOptions } from "../db/pool.js";
import {
  deleteEndpoint,
  endpointOut,
  endpointPosition,
  getEndpoint,
  listEndpointsPage,
  lockEndpoint,
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
  type EndpointWithSecretOut,
} from "./endpoint-schemas.js";
import { createSecretBox } from "./secrets.js";
import {
  createEndpoint,
  endpointSecrets,
  patchEndpoint,
  rotateSecret,
  sendTestEvent,
  validateEndpointIn,
  validateEndpointPatch,
} from "./service.js";

const error = { $ref: "Error#" } as const;
const authErrors = { 401: error, 429: error } as const;
const tags = ["webhook endpoints"];

/** For routes whose transaction is all they do: one that a conflict aborted is run again, once. */
const retryOnce = (request: FastifyRequest): TransactionOptions => ({ retryOnConflict: true, log: request.log });

/** `/v1/webhook_endpoints`: where and what to send, the signing secrets, and a test event. */
export const webhookEndpointRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config, wakeup }) => {
  const box = createSecretBox(config.webhooks.encryptionKey);
  const byId = (merchantId: string, id: string) => getEndpoint(pool, merchantId, id);
  const secretOut = (row: EndpointRow): EndpointSecretOut => endpointSecrets(row, box, clock.now());

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
      const endpoint = validateEndpointIn(request.body, config.webhooks);
      let created: EndpointRow | undefined;
      // The stored (replayable) response leaves the secret out: it would sit there unencrypted.
      const out = await replyIdempotently({ pool, clock }, request, reply, async (tx) => {
        created = await createEndpoint(tx, merchantId, endpoint, { box, now: clock.now() });
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
      const patch = validateEndpointPatch(request.body, config.webhooks);
      return transaction(
        pool,
        async (tx) => endpointOut(await patchEndpoint(tx, request.merchant.id, request.params.id, patch, clock.now())),
        retryOnce(request),
      );
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
        rotated = await rotateSecret(tx, merchantId, request.params.id, { graceHours: hours, box, now: clock.now() });
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
      replyIdempotently({ pool, clock }, request, reply, async (tx) => ({
        status: 202,
        body: await sendTestEvent(tx, request.merchant.id, request.params.id, clock.now()),
        afterCommit: wakeup.wake,
      })),
  );
};
