import { Horizon, NotFoundError } from "@stellar/stellar-sdk";
import type { FastifyPluginAsync } from "fastify";
import type { RouteDeps } from "../routes.js";
import { transaction } from "../db/pool.js";
import { enforceLimit, RateLimiter } from "../http/auth.js";
import { idParams } from "../http/inputs.js";
import { HttpError } from "../http/errors.js";
import { getPayment, paymentOut, type PaymentOut } from "./service.js";
import { asPaymentRecords, type HorizonPaymentRecord } from "../stellar/incoming.js";
import { applyPaymentPage, observeSettlement, wroteEvents } from "./settlement.js";

/** Each call reaches Horizon, so it is limited per merchant well below the general API limit. */
export const VERIFY_LIMIT_PER_MINUTE = 10;
/** Without a hash, how far back the destination's payments are scanned (pages of 200, newest first). */
export const VERIFY_SCAN_PAGES = 3;

export interface VerifyIn {
  transaction_hash?: string;
}

const verifyInSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    transaction_hash: {
      type: "string",
      pattern: "^[0-9a-fA-F]{64}$",
      maxLength: 64,
      description: "A transaction the customer says pays this payment; it is fetched from Horizon, never trusted as given.",
    },
  },
} as const;

const error = { $ref: "Error#" } as const;

/** Horizon trouble (other than an unknown hash) is ours to report, not the client's fault. */
function horizonUnavailable(cause: unknown): HttpError {
  const e = new HttpError(502, "horizon_unavailable", "Horizon could not be reached; retry later.");
  e.cause = cause;
  return e;
}

/** A transaction's operations with the transaction joined; an unknown hash is `transaction_not_found`. */
async function transactionOperations(horizon: Horizon.Server, hash: string): Promise<HorizonPaymentRecord[]> {
  try {
    // A transaction holds at most 100 operations: one page.
    const page = await horizon.operations().forTransaction(hash).join("transactions").limit(200).call();
    return asPaymentRecords(page.records);
  } catch (cause) {
    if (cause instanceof NotFoundError) throw new HttpError(404, "transaction_not_found", `Horizon knows no transaction ${hash}.`, "transaction_hash");
    throw horizonUnavailable(cause);
  }
}

/** The account's recent payments, oldest first, so partial payments accumulate in chain order. */
async function recentPayments(horizon: Horizon.Server, account: string): Promise<HorizonPaymentRecord[]> {
  const records: HorizonPaymentRecord[] = [];
  try {
    let page = await horizon.payments().forAccount(account).join("transactions").order("desc").limit(200).call();
    for (let i = 0; i < VERIFY_SCAN_PAGES && page.records.length > 0; i++) {
      records.push(...asPaymentRecords(page.records));
      if (i + 1 < VERIFY_SCAN_PAGES) page = await page.next();
    }
  } catch (cause) {
    // An account Horizon has never seen has received nothing.
    if (!(cause instanceof NotFoundError)) throw horizonUnavailable(cause);
  }
  return records.reverse();
}

/** `POST /v1/payments/:id/verify`: checks Horizon now instead of waiting for ingestion. */
export const paymentVerifyRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config, metrics, wakeup }) => {
  const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase };
  const horizon = new Horizon.Server(config.stellar.horizonUrl, { allowHttp: config.stellar.horizonUrl.startsWith("http:") });
  const limiter = new RateLimiter(VERIFY_LIMIT_PER_MINUTE, clock);

  app.post<{ Params: { id: string }; Body: VerifyIn }>(
    "/payments/:id/verify",
    {
      // The body is optional; an absent one means "no hash" rather than failing the object schema.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ["payments"],
        summary: "Verify a payment on-chain now",
        description:
          "Looks on Horizon for operations paying this payment — in `transaction_hash` when given, else among the destination's " +
          "recent payments — and applies them as ingestion would, by the same rules (on-chain close times decide). Operations that " +
          "belong to another payment, or to none, are left to ingestion. " +
          `At most ${VERIFY_LIMIT_PER_MINUTE} calls a minute per merchant.`,
        params: idParams("pay"),
        body: verifyInSchema,
        response: { 200: { $ref: "Payment#" }, 400: error, 401: error, 404: error, 422: error, 429: error, 502: error },
      },
    },
    async (request, reply): Promise<PaymentOut> => {
      enforceLimit(limiter, request.merchant.id, reply, "verifications");
      const payment = await getPayment(pool, request.merchant.id, request.params.id);
      const hash = request.body.transaction_hash?.toLowerCase();
      const records = hash ? await transactionOperations(horizon, hash) : await recentPayments(horizon, payment.destination);
      // Operations to other accounts cannot pay this payment: skip them before locking anything.
      const relevant = records.filter((r) => (r.to ?? r.account) === payment.destination);
      const ctx = { now: clock.now(), networkPassphrase: config.stellar.networkPassphrase, links, account: payment.destination, paymentId: payment.id };
      // One account's records in ledger order: a page, applied as ingestion applies one.
      const outcomes = await transaction(pool, (tx) => applyPaymentPage(tx, relevant, ctx));
      for (const outcome of outcomes) observeSettlement(metrics, outcome);
      // Applied and unmatched operations wrote events, which may have queued deliveries.
      if (outcomes.some(wroteEvents)) wakeup.wake();
      if (hash && !outcomes.some((o) => o.kind !== "ignored")) {
        throw new HttpError(422, "transaction_not_matching", `Transaction ${hash} has no successful operation paying this payment.`, "transaction_hash");
      }
      return paymentOut(await getPayment(pool, request.merchant.id, payment.id), links);
    },
  );
};
