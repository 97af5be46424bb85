import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { RouteDeps } from "../routes.js";
import { namedStatements } from "../db/pool.js";
import { badRequest } from "../http/errors.js";
import { idempotencyHeadersSchema, replyIdempotently, type IdempotencyHeaders } from "../http/idempotency.js";
import { assetLabel, assetSchema } from "../stellar/assets.js";
import { MEMO_TYPES } from "../stellar/memo.js";
import { MAX_MONITORING_WINDOW_S } from "../config.js";
import { idParams, timestampParam } from "../http/inputs.js";
import { listQuerySchema, listSchema, paginate, type PageQuery } from "../http/pagination.js";
import { getPayment as findPaymentOf, listPayments, PAYMENT_STATUSES, type PaymentStatus } from "./store.js";
import {
  cancelPayment,
  createPayment,
  createPaymentBatch,
  DEFAULT_EXPIRES_IN_S,
  getPayment,
  MAX_EXPIRES_IN_S,
  MIN_EXPIRES_IN_S,
  paymentOut,
  SUCCESS_URL_MAX_LENGTH,
  withIdempotencyKey,
  type PaymentIn,
} from "./service.js";
import { paymentVerifyRoutes } from "./verify-routes.js";

const paymentInSchema = {
  type: "object",
  additionalProperties: false,
  required: ["amount", "asset"],
  properties: {
    amount: {
      type: "string",
      maxLength: 40,
      description: "Decimal string, greater than 0, at most 7 decimals (JSON numbers are refused: they are floats).",
      examples: ["12.50"],
    },
    asset: assetSchema,
    destination: { type: "string", maxLength: 56, description: "One of your accounts (G…); defaults to the first." },
    memo_type: { type: "string", enum: MEMO_TYPES, description: "Give with `memo`; when both are absent a unique id memo is generated." },
    memo: {
      type: "string",
      maxLength: 100,
      description: "text: at most 28 UTF-8 bytes; id: decimal 0…18446744073709551615; hash: 64 hex digits.",
    },
    muxed: {
      type: "boolean",
      description: "Have the customer pay an M address (your account plus a generated id) instead of using a memo; give no memo.",
    },
    description: { type: "string", maxLength: 1000, description: "Shown to the payer (the SEP-7 `msg`, cut to 300 characters)." },
    metadata: {
      type: "object",
      maxProperties: 50,
      propertyNames: { minLength: 1, maxLength: 40 },
      additionalProperties: { type: "string", maxLength: 500 },
      description: "Your own key-value pairs: at most 50 keys of ≤ 40 characters, string values of ≤ 500.",
    },
    success_url: {
      type: "string",
      maxLength: SUCCESS_URL_MAX_LENGTH,
      description:
        "Where the hosted payment page's \"Continue\" link sends the customer once the payment is paid: an https URL " +
        "(http to localhost or 127.0.0.1 is accepted when the server does not run in production), without credentials.",
      examples: ["https://shop.example/orders/42/thanks"],
    },
    expires_in: {
      type: "integer",
      minimum: MIN_EXPIRES_IN_S,
      maximum: MAX_EXPIRES_IN_S,
      default: DEFAULT_EXPIRES_IN_S,
      description: "Seconds until the payment expires.",
    },
    monitor_for: {
      type: "integer",
      minimum: 0,
      maximum: MAX_MONITORING_WINDOW_S,
      description:
        "Seconds after `expires_at` during which operations paying it are still recorded against it (as late, with " +
        "`payment.late_payment_received`); later ones are unmatched payments. Default: the server's PAYMENT_MONITORING_WINDOW_S (24 h).",
    },
  },
} as const;

const settlementOutSchema = {
  type: "object",
  required: ["transaction_hash", "operation_id", "ledger", "closed_at", "amount", "asset", "from", "late"],
  properties: {
    transaction_hash: { type: "string" },
    operation_id: { type: "string", description: "Horizon operation id; each operation settles at most one payment." },
    ledger: { type: "integer" },
    closed_at: { type: "string", format: "date-time", description: "Close time of the ledger." },
    amount: { type: "string", description: "Amount received, a decimal string." },
    asset: assetSchema,
    from: { type: "string", description: "Paying account (G…)." },
    late: {
      type: "boolean",
      description:
        "Closed after the payment's deadline (expires_at, or canceled_at if earlier) or after it was fully paid; not counted in amount_received.",
    },
  },
} as const;

export const paymentOutSchema = {
  type: "object",
  required: [
    "id", "object", "status", "amount", "asset", "destination", "destination_account", "muxed_id", "memo_type", "memo",
    "amount_received", "overpaid", "settlements", "description", "metadata", "success_url", "payment_url", "sep7_uri", "expires_at", "monitor_for",
    "created_at", "updated_at", "canceled_at", "confirmed_at", "expired_at",
  ],
  properties: {
    id: { type: "string", example: "pay_3kTMd9Qe0XvB7yLw2nR5sA" },
    object: { type: "string", enum: ["payment"] },
    status: { type: "string", enum: PAYMENT_STATUSES },
    amount: { type: "string", example: "12.5" },
    asset: assetSchema,
    destination: { type: "string", description: "Where the customer pays: the M address of a muxed payment, else the G account." },
    destination_account: { type: "string", description: "The G account that receives the funds." },
    muxed_id: { type: ["string", "null"], description: "uint64 id of the M address, as a decimal string; null with a memo." },
    memo_type: { type: ["string", "null"], enum: [...MEMO_TYPES, null], description: "Null for a muxed payment." },
    memo: { type: ["string", "null"] },
    amount_received: { type: "string", description: "Sum of the settlements that are not late, a decimal string.", example: "0" },
    overpaid: { type: "boolean", description: "amount_received exceeds amount." },
    settlements: { type: "array", items: settlementOutSchema, description: "On-chain operations that paid this payment." },
    description: { type: ["string", "null"] },
    metadata: { type: "object", additionalProperties: { type: "string" } },
    success_url: { type: ["string", "null"], description: "Where the hosted payment page sends the customer once paid; null when none was given." },
    payment_url: { type: "string", description: "Hosted page where the customer pays." },
    sep7_uri: { type: "string", description: "SEP-7 `web+stellar:pay` request for wallets and QR codes." },
    expires_at: { type: "string", format: "date-time" },
    monitor_for: { type: "integer", description: "Seconds after expires_at during which operations are still recorded against it." },
    created_at: { type: "string", format: "date-time" },
    updated_at: { type: "string", format: "date-time" },
    canceled_at: { type: ["string", "null"], format: "date-time", description: "When you canceled it (kept if an on-time operation then paid it)." },
    confirmed_at: { type: ["string", "null"], format: "date-time", description: "Close time of the ledger whose operation completed the amount." },
    expired_at: { type: ["string", "null"], format: "date-time", description: "When Lumenpay expired it (kept if an on-time operation then paid it)." },
  },
} as const;

const paymentListQuerySchema = listQuerySchema("payment", {
  status: { type: "string", enum: PAYMENT_STATUSES },
  created_gte: { type: "string", maxLength: 40, description: "RFC 3339 date-time with zone: created at or after." },
  created_lte: { type: "string", maxLength: 40, description: "RFC 3339 date-time with zone: created at or before." },
});

type PaymentListQuery = PageQuery & { status?: PaymentStatus; created_gte?: string; created_lte?: string };

const error = { $ref: "Error#" } as const;
const authErrors = { 401: error, 429: error } as const;

/**
 * JSON numbers are binary floats by the time the body is parsed, and ajv would quietly coerce them
 * to strings ("922337203685.4775807" becomes …4775), so an amount or memo must arrive as a string.
 */
async function requireStringMoneyFields(request: FastifyRequest): Promise<void> {
  const body = request.body;
  if (body === null || typeof body !== "object" || Array.isArray(body)) return;
  for (const field of ["amount", "memo"] as const) {
    const value = (body as Record<string, unknown>)[field];
    if (value !== undefined && typeof value !== "string") {
      throw badRequest(`invalid_${field}`, `${field} must be a JSON string, e.g. "12.50".`, field);
    }
  }
}

/** `/v1/payments`: create, retrieve, list, cancel and verify payment requests. */
export const paymentRoutes: FastifyPluginAsync<RouteDeps> = async (app, deps) => {
  const { pool, clock, config, metrics, wakeup } = deps;
  const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase };
  const paymentDefaults = { ...config.payments, allowLocalHttpSuccessUrl: !config.production };
  const prepared = namedStatements(config.db);
  const batch = createPaymentBatch(pool, prepared, (size) => metrics.paymentCreateBatchSize.observe(size));
  // Shared by reference with the verify plugin, which lives in its own file.
  app.addSchema({ $id: "Payment", ...paymentOutSchema });
  await app.register(paymentVerifyRoutes, deps);

  app.post<{ Body: PaymentIn; Headers: IdempotencyHeaders }>(
    "/payments",
    {
      preValidation: requireStringMoneyFields,
      schema: {
        tags: ["payments"],
        summary: "Create a payment",
        description: "Creates a pending payment request with a SEP-7 URI and a hosted payment page.",
        headers: idempotencyHeadersSchema,
        body: paymentInSchema,
        response: { 201: paymentOutSchema, 400: error, 409: error, 413: error, 415: error, 422: error, ...authErrors },
      },
    },
    async (request, reply) =>
      replyIdempotently(
        { pool, clock, prepared },
        request,
        reply,
        async (_pool, key) => {
          const status = 201;
          // The payment (and the record of its Idempotency-Key, with one) is written with other requests' at the time.
          const writer = key ? withIdempotencyKey(batch, { ...key, status }) : batch;
          const { payment, out, queued } = await createPayment(writer, request.merchant, request.body, clock.now(), links, paymentDefaults);
          return {
            status,
            body: out,
            afterCommit: () => {
              metrics.paymentsCreated.inc({ asset: assetLabel(payment.asset) });
              if (queued) wakeup.wake();
            },
          };
        },
        { oneStatement: true },
      ),
  );

  app.get<{ Params: { id: string } }>(
    "/payments/:id",
    {
      schema: {
        tags: ["payments"],
        summary: "Retrieve a payment",
        params: idParams("pay"),
        response: { 200: paymentOutSchema, 404: error, ...authErrors },
      },
    },
    async (request) => paymentOut(await getPayment(pool, request.merchant.id, request.params.id), links),
  );

  app.get<{ Querystring: PaymentListQuery }>(
    "/payments",
    {
      schema: {
        tags: ["payments"],
        summary: "List payments",
        description: "Newest first. Continue with `cursor` (the previous `next_cursor`) or `starting_after`, repeating the filters.",
        querystring: paymentListQuerySchema,
        response: { 200: listSchema(paymentOutSchema), 400: error, ...authErrors },
      },
    },
    async (request) => {
      const merchantId = request.merchant.id;
      const { status, created_gte: gte, created_lte: lte } = request.query;
      const createdGte = gte === undefined ? undefined : timestampParam(gte, "created_gte");
      const createdLte = lte === undefined ? undefined : timestampParam(lte, "created_lte");
      return paginate(request.query, {
        prefix: "pay",
        positionOf: (id) => findPaymentOf(pool, merchantId, id),
        fetch: (after, limit) => listPayments(pool, { merchantId, status, createdGte, createdLte, after, limit }),
        position: (p) => p,
        out: (p) => paymentOut(p, links),
      });
    },
  );

  app.post<{ Params: { id: string }; Headers: IdempotencyHeaders }>(
    "/payments/:id/cancel",
    {
      schema: {
        tags: ["payments"],
        summary: "Cancel a payment",
        description: "Only a pending payment can be canceled.",
        headers: idempotencyHeadersSchema,
        params: idParams("pay"),
        response: { 200: paymentOutSchema, 400: error, 404: error, 409: error, 422: error, ...authErrors },
      },
    },
    async (request, reply) =>
      replyIdempotently({ pool, clock }, request, reply, async (tx) => {
        const { payment, queued } = await cancelPayment(tx, request.merchant.id, request.params.id, clock.now(), links);
        return { status: 200, body: paymentOut(payment, links), afterCommit: queued ? wakeup.wake : undefined };
      }),
  );
};
