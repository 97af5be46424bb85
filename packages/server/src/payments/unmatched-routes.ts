import type { FastifyPluginAsync } from "fastify";
import type { RouteDeps } from "../routes.js";
import { notFound } from "../http/errors.js";
import { listQuerySchema, listSchema, paginate, type PageQuery } from "../http/pagination.js";
import { idParams } from "../http/inputs.js";
import { formatAmount } from "../stellar/amount.js";
import { assetOut, assetSchema, type AssetOut } from "../stellar/assets.js";
import type { ShownMemoType } from "../stellar/memo.js";
import { muxedAddress } from "./service.js";
import type { UnmatchedReason } from "./matching.js";
import { getUnmatched, listUnmatched, type UnmatchedPayment } from "./unmatched-store.js";

export const UNMATCHED_REASONS: readonly UnmatchedReason[] = ["no_memo", "unknown_memo", "wrong_asset", "before_payment", "after_monitoring_window"];

export interface UnmatchedPaymentOut {
  id: string;
  object: "unmatched_payment";
  reason: UnmatchedReason;
  amount: string;
  asset: AssetOut;
  /** Where it was paid: the M address for a muxed destination, else the G account. */
  destination: string;
  destination_account: string;
  muxed_id: string | null;
  memo_type: ShownMemoType;
  memo: string | null;
  from: string;
  transaction_hash: string;
  operation_id: string;
  ledger: number;
  closed_at: string;
  payment_id: string | null;
  created_at: string;
}

export function unmatchedOut(u: UnmatchedPayment): UnmatchedPaymentOut {
  return {
    id: u.id,
    object: "unmatched_payment",
    reason: u.reason,
    amount: formatAmount(u.amountStroops),
    asset: assetOut(u.asset),
    destination: u.muxedId === null ? u.account : muxedAddress(u.account, u.muxedId),
    destination_account: u.account,
    muxed_id: u.muxedId,
    memo_type: u.memo.type,
    memo: u.memo.value,
    from: u.from,
    transaction_hash: u.transactionHash,
    operation_id: u.operationId,
    ledger: u.ledger,
    closed_at: u.closedAt.toISOString(),
    payment_id: u.paymentId,
    created_at: u.createdAt.toISOString(),
  };
}

export const unmatchedPaymentOutSchema = {
  type: "object",
  required: [
    "id", "object", "reason", "amount", "asset", "destination", "destination_account", "muxed_id", "memo_type", "memo", "from",
    "transaction_hash", "operation_id", "ledger", "closed_at", "payment_id", "created_at",
  ],
  properties: {
    id: { type: "string", example: "unm_2fGh7Kp1Qw9Xz4Rt6Lm3Nb" },
    object: { type: "string", enum: ["unmatched_payment"] },
    reason: {
      type: "string",
      enum: UNMATCHED_REASONS,
      description:
        "no_memo: neither memo nor muxed id; unknown_memo: no payment of yours carries it; wrong_asset: the payment it names asks for " +
        "another asset; before_payment: it closed before the payment it names was created; after_monitoring_window: it closed after " +
        "that payment stopped being monitored (expires_at + monitor_for).",
    },
    amount: { type: "string", description: "Amount received, a decimal string." },
    asset: assetSchema,
    destination: { type: "string", description: "Where it was paid: an M address for a muxed destination, else the G account." },
    destination_account: { type: "string", description: "Your G account that received it." },
    muxed_id: { type: ["string", "null"] },
    memo_type: { type: "string", enum: ["none", "text", "id", "hash", "return"] },
    memo: { type: ["string", "null"], description: "Text as UTF-8, id as a decimal, hash and return as hex; null for none." },
    from: { type: "string", description: "Paying account (G…): where a refund would go." },
    transaction_hash: { type: "string" },
    operation_id: { type: "string" },
    ledger: { type: "integer" },
    closed_at: { type: "string", format: "date-time", description: "Close time of the ledger." },
    payment_id: { type: ["string", "null"], description: "The payment its memo or muxed id names, when there is one." },
    created_at: { type: "string", format: "date-time", description: "When Lumenpay recorded it." },
  },
} as const;

const error = { $ref: "Error#" } as const;
const authErrors = { 401: error, 429: error } as const;

type UnmatchedListQuery = PageQuery & { reason?: UnmatchedReason };

/** `/v1/unmatched_payments`: money that reached your accounts without settling a payment, to refund or reconcile. */
export const unmatchedPaymentRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool }) => {
  app.addSchema({ $id: "UnmatchedPayment", ...unmatchedPaymentOutSchema });

  app.get<{ Querystring: UnmatchedListQuery }>(
    "/unmatched_payments",
    {
      schema: {
        tags: ["payments"],
        summary: "List unmatched payments",
        description:
          "Incoming operations to your accounts that settled no payment (no memo, an unknown memo, the wrong asset, too early or " +
          "too late), newest first. Each also sent `payment.unmatched_received`.",
        querystring: listQuerySchema("unmatched payment", { reason: { type: "string", enum: UNMATCHED_REASONS } }),
        response: { 200: listSchema({ $ref: "UnmatchedPayment#" }), 400: error, ...authErrors },
      },
    },
    async (request) => {
      const merchantId = request.merchant.id;
      const { reason } = request.query;
      return paginate(request.query, {
        prefix: "unm",
        positionOf: async (id) => (await getUnmatched(pool, merchantId, id))?.position,
        fetch: (after, limit) => listUnmatched(pool, { merchantId, reason, after, limit }),
        position: (u) => u.position,
        out: unmatchedOut,
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    "/unmatched_payments/:id",
    {
      schema: {
        tags: ["payments"],
        summary: "Retrieve an unmatched payment",
        params: idParams("unm"),
        response: { 200: { $ref: "UnmatchedPayment#" }, 404: error, ...authErrors },
      },
    },
    async (request) => {
      const unmatched = await getUnmatched(pool, request.merchant.id, request.params.id);
      if (!unmatched) throw notFound("unmatched payment");
      return unmatchedOut(unmatched);
    },
  );
};
