import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { RouteDeps } from "../routes.js";
import { HttpError, notFound } from "../http/errors.js";
import { isId } from "../ids.js";
import { getMerchant } from "../merchants/store.js";
import { findPayment, type Payment } from "../payments/store.js";
import { newNonce, sendPage, type Html } from "../web/html.js";
import { chooseLanguage, type Language } from "./i18n.js";
import { sendEventStream, streamSlots } from "../http/sse.js";
import { LIVE_LIMITS, statusStream, type LiveLimits } from "./live.js";
import { checkoutPage, liveDetails, notFoundPage, statusMessage, type PageContext } from "./page.js";
import { noReceiptPage, receiptPage } from "./receipt.js";
import { CHECKOUT_STATES, checkoutView, merchantDisplayName, type CheckoutView } from "./view.js";

export type CheckoutDeps = Pick<RouteDeps, "pool" | "clock" | "config"> & {
  /** Bounds of the live status streams; LIVE_LIMITS unless a test needs smaller ones. */
  liveLimits?: LiveLimits;
};

type IdRequest = { Params: { id: string }; Querystring: { lang?: string } };

// Any string: a malformed id must be answered like an unknown one, so the handler checks the shape.
const idParams = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 64 } } } as const;
const languageQuery = {
  type: "object",
  properties: { lang: { type: "string", maxLength: 35, description: "en or es (a tag such as es-MX works); else Accept-Language decides." } },
} as const;

/** What the page's script applies on a change; `GET /pay/:id/status` and each stream event carry it. */
export interface CheckoutStatus {
  state: CheckoutView["state"];
  version: string;
  message: string;
  amount_received: string;
  amount_remaining: string;
  /** The page's live section, rendered (and escaped) by the server. */
  html: string;
}

const checkoutStatusSchema = {
  type: "object",
  required: ["state", "version", "message", "amount_received", "amount_remaining", "html"],
  properties: {
    state: { type: "string", enum: CHECKOUT_STATES },
    version: { type: "string", description: "Changes whenever what the page shows changes." },
    message: { type: "string" },
    amount_received: { type: "string" },
    amount_remaining: { type: "string" },
    html: { type: "string" },
  },
} as const;

const statusOut = (view: CheckoutView, language: Language): CheckoutStatus => ({
  state: view.state,
  version: view.version,
  message: statusMessage(view, language),
  amount_received: view.payment.amount_received,
  amount_remaining: view.remaining,
  html: liveDetails(view, language).value,
});

// Read before validation too (the error handler's 404 page): the query may hold anything.
const languageOf = (request: FastifyRequest) => chooseLanguage((request.query as { lang?: unknown }).lang, request.headers["accept-language"]);

/** A path id too long for the schema, or refused as hostile input (NUL): the same answer as an unknown id. */
const isMalformedId = (error: FastifyError) => error.validationContext === "params" || (error instanceof HttpError && error.param === "id");

/**
 * The public checkout behind `payment_url`: `/pay/:id` (HTML), its receipt, and its live status as
 * JSON and server-sent events. No API key: the unguessable id is the secret, so unknown and
 * malformed ids get the same answer.
 */
export const checkoutRoutes: FastifyPluginAsync<CheckoutDeps> = async (app, { pool, clock, config, liveLimits = LIVE_LIMITS }) => {
  const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase };
  const slots = streamSlots(liveLimits.maxStreams);
  // Open streams would hold app.close() until their lifetime ends: end them as soon as it starts.
  const closing = new AbortController();
  app.addHook("preClose", async () => closing.abort());

  async function load(id: string): Promise<{ payment: Payment; merchantName: string } | undefined> {
    const payment = isId("pay", id) ? await findPayment(pool, id) : undefined;
    const merchant = payment && (await getMerchant(pool, payment.merchantId));
    return payment && merchant ? { payment, merchantName: merchantDisplayName(merchant) } : undefined;
  }
  const viewOf = (payment: Payment, merchantName: string) => checkoutView(payment, merchantName, clock.now(), links);

  await app.register(async (pages: FastifyInstance) => {
    const contextOf = (request: FastifyRequest): PageContext => ({ language: languageOf(request), nonce: newNonce() });
    const send = (reply: FastifyReply, ctx: PageContext, page: Html, status = 200) => sendPage(reply, page, { nonce: ctx.nonce, status });
    pages.setErrorHandler(async (error: FastifyError, request, reply) => {
      if (!isMalformedId(error)) throw error;
      const ctx = contextOf(request);
      return send(reply, ctx, notFoundPage(ctx), 404);
    });
    const schema = { hide: true, params: idParams, querystring: languageQuery } as const;

    pages.get<IdRequest>("/pay/:id", { schema }, async (request, reply) => {
      const ctx = contextOf(request);
      const found = await load(request.params.id);
      if (!found) return send(reply, ctx, notFoundPage(ctx), 404);
      return send(reply, ctx, checkoutPage(viewOf(found.payment, found.merchantName), ctx));
    });

    pages.get<IdRequest>("/pay/:id/receipt", { schema }, async (request, reply) => {
      const ctx = contextOf(request);
      const found = await load(request.params.id);
      if (!found) return send(reply, ctx, notFoundPage(ctx), 404);
      const view = viewOf(found.payment, found.merchantName);
      if (view.state !== "paid") return send(reply, ctx, noReceiptPage(found.payment.id, ctx), 404);
      return send(reply, ctx, receiptPage(view, ctx));
    });
  });

  await app.register(async (live: FastifyInstance) => {
    live.setErrorHandler(async (error: FastifyError) => {
      throw isMalformedId(error) ? notFound("payment") : error;
    });
    const errors = { 404: { $ref: "Error#" }, 503: { $ref: "Error#" } } as const;

    live.get<IdRequest>(
      "/pay/:id/status",
      { schema: { hide: true, params: idParams, querystring: languageQuery, response: { 200: checkoutStatusSchema, ...errors } } },
      async (request, reply) => {
        const found = await load(request.params.id);
        if (!found) throw notFound("payment");
        reply.header("cache-control", "no-store");
        return statusOut(viewOf(found.payment, found.merchantName), languageOf(request));
      },
    );

    live.get<IdRequest>(
      "/pay/:id/events",
      // HEAD would open a stream only to drop its body.
      { exposeHeadRoute: false, schema: { hide: true, params: idParams, querystring: languageQuery, response: errors } },
      async (request, reply) => {
        const found = await load(request.params.id);
        if (!found) throw notFound("payment");
        const release = slots.take();
        if (!release) throw new HttpError(503, "too_many_streams", "Too many live pages are open on this server; poll GET /pay/:id/status instead.");
        const left = new AbortController();
        reply.raw.once("close", () => {
          release();
          left.abort();
        });
        const language = languageOf(request);
        const read = async () => {
          try {
            const payment = await findPayment(pool, found.payment.id);
            return payment && viewOf(payment, found.merchantName);
          } catch (err) {
            // Ending the stream is enough: EventSource reconnects after `retry` and reads again.
            request.log.warn({ err }, "checkout stream: reading the payment failed");
            return undefined;
          }
        };
        const events = statusStream({
          read,
          render: (view) => JSON.stringify(statusOut(view, language)),
          limits: liveLimits,
          signal: AbortSignal.any([left.signal, closing.signal]),
        });
        return sendEventStream(reply, events);
      },
    );
  });
};
