import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { namedStatements } from "../db/pool.js";
import { badRequest, HttpError } from "../http/errors.js";
import { paginate } from "../http/pagination.js";
import { createPayment, DEFAULT_EXPIRES_IN_S, inTransaction, MAX_EXPIRES_IN_S, MIN_EXPIRES_IN_S, paymentOut, type PaymentIn, type PaymentOut } from "../payments/service.js";
import { getPayment, listPayments, PAYMENT_STATUSES, type PaymentStatus } from "../payments/store.js";
import type { RouteDeps } from "../routes.js";
import { assetLabel, type AssetIn } from "../stellar/assets.js";
import { html, type Html } from "../web/html.js";
import { assetName, badge, table, when } from "./format.js";
import { csrfField, failedForm, field, formError, formOf, requiredText, select, text, textarea, wholeNumber, type Form, type FormState } from "./forms.js";
import { canChange, sendDashboardPage } from "./layout.js";
import { formIdField, once } from "./once.js";

const PAGE_SIZE = 25;

interface ListQuery {
  status?: PaymentStatus | "";
  q?: string;
  cursor?: string;
  notice?: string;
}

const listQuerySchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    status: { type: "string", enum: ["", ...PAYMENT_STATUSES] },
    q: { type: "string", maxLength: 100 },
    cursor: { type: "string", maxLength: 200 },
    notice: { type: "string", maxLength: 40 },
  },
} as const;

/** `XLM` or `CODE:ISSUER`, as the asset select sends it; the service checks that the merchant accepts it. */
function assetIn(value: string): AssetIn {
  if (value === "XLM") return "XLM";
  const [code, issuer, ...rest] = value.split(":");
  if (!code || !issuer || rest.length > 0) throw badRequest("invalid_asset", "Choose one of your accepted assets.", "asset");
  return { code, issuer };
}

const MINUTE_S = 60;

/** The form's fields as the API takes them: money stays a string, the expiry is in whole minutes. */
function paymentIn(form: Form): PaymentIn {
  const description = text(form, "description", 1000);
  return {
    amount: requiredText(form, "amount", 40, "Amount"),
    asset: assetIn(requiredText(form, "asset", 70, "Asset")),
    ...(description === "" ? {} : { description }),
    expires_in:
      wholeNumber(form, "expires_in_minutes", {
        min: MIN_EXPIRES_IN_S / MINUTE_S,
        max: MAX_EXPIRES_IN_S / MINUTE_S,
        fallback: DEFAULT_EXPIRES_IN_S / MINUTE_S,
      }) * MINUTE_S,
  };
}

function filterForm(query: ListQuery): Html {
  const options = [{ value: "", label: "All statuses" }, ...PAYMENT_STATUSES.map((s) => ({ value: s, label: s.replace("_", " ") }))];
  return html`<form method="get" action="/dashboard/payments" class="card filters" role="search" aria-label="Filter payments">
${select({ name: "status", label: "Status", value: query.status ?? "", options })}
${field({ name: "q", label: "Search", type: "search", value: query.q ?? "", hint: "A payment id, a memo or a metadata value, exactly." })}
<button type="submit">Filter</button></form>`;
}

function paymentRow(p: PaymentOut): Html {
  return html`<tr><td><a href="/dashboard/payments/${p.id}">${p.description ?? p.id}</a><br><code class="muted">${p.id}</code></td>
<td class="num">${p.amount} ${assetName(p.asset)}</td><td>${badge(p.status)}</td><td>${p.memo === null ? html`<span class="muted">muxed</span>` : html`<code>${p.memo}</code>`}</td><td>${when(p.created_at)}</td></tr>`;
}

/** `/dashboard/payments`: the list (filter, search, pages) and the form that creates a payment link. */
export const paymentsPages: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config, metrics, wakeup }) => {
  const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase };

  app.get<{ Querystring: ListQuery }>("/payments", { schema: { hide: true, querystring: listQuerySchema } }, async (request, reply) => {
    const merchantId = request.dashboard.merchant.id;
    const status = request.query.status || undefined;
    const search = request.query.q?.trim() || undefined;
    const page = await paginate(
      { limit: PAGE_SIZE, cursor: request.query.cursor },
      {
        prefix: "pay",
        positionOf: (id) => getPayment(pool, merchantId, id),
        fetch: (after, limit) => listPayments(pool, { merchantId, status, search, after, limit }),
        position: (p) => p,
        out: (p) => paymentOut(p, links),
      },
    );
    const filters = new URLSearchParams({ ...(status ? { status } : {}), ...(search ? { q: search } : {}) });
    const older = page.next_cursor ? `/dashboard/payments?${new URLSearchParams([...filters, ["cursor", page.next_cursor]])}` : undefined;
    const body = html`${canChange(request) ? html`<p><a class="button" href="/dashboard/payments/new">New payment link</a></p>` : ""}
${filterForm(request.query)}
${table({ id: "t-payments", caption: "Payments, newest first", head: ["Payment", { label: "Amount", num: true }, "Status", "Memo", "Created"], rows: page.data.map(paymentRow), empty: "No payments match." })}
${request.query.cursor || older ? html`<nav class="actions" aria-label="Pages">${request.query.cursor ? html`<a href="/dashboard/payments?${filters}">Newest</a>` : ""}${older ? html`<a href="${older}">Older payments</a>` : ""}</nav>` : ""}`;
    return sendDashboardPage(request, reply, { title: "Payments", body });
  });

  function showNewForm(request: FastifyRequest, reply: FastifyReply, state?: FormState) {
    if (!canChange(request)) return sendDashboardPage(request, reply, { title: "New payment", body: html`<p><a href="/dashboard/payments">All payments</a></p>` });
    const assets = request.dashboard.merchant.acceptedAssets.map((a) => ({
      value: assetLabel(a),
      label: a.issuer === null ? "XLM (lumens)" : `${a.code}, issued by ${a.issuer}`,
    }));
    const body = html`<section class="card" aria-labelledby="new-payment"><h2 id="new-payment">A payment link to send by hand</h2>
<p class="muted">Lumenpay generates the memo. Send the link (or its QR code) to your customer; the payment's page shows when it is paid.</p>
${formError(state)}
<form method="post" action="/dashboard/payments">${csrfField(request)}${formIdField()}
${field({ name: "amount", label: "Amount", required: true, inputmode: "decimal", hint: "A decimal with at most 7 decimals, e.g. 12.50.", state })}
${select({ name: "asset", label: "Asset", options: assets, state })}
${textarea({ name: "description", label: "Description (optional)", hint: "Shown to the customer.", state })}
${field({ name: "expires_in_minutes", label: "Expires in (minutes)", type: "number", min: MIN_EXPIRES_IN_S / MINUTE_S, max: MAX_EXPIRES_IN_S / MINUTE_S, value: String(DEFAULT_EXPIRES_IN_S / MINUTE_S), state })}
<button type="submit">Create payment link</button></form></section>`;
    return sendDashboardPage(request, reply, { title: "New payment", body, status: state?.error.status });
  }

  app.get("/payments/new", { schema: { hide: true } }, async (request, reply) => showNewForm(request, reply));

  app.post("/payments", { schema: { hide: true } }, async (request, reply) => {
    const form = formOf(request);
    const { merchant } = request.dashboard;
    try {
      const input = paymentIn(form);
      const now = clock.now();
      const { body } = await once(pool, { merchantId: merchant.id, form, action: "/dashboard/payments", now }, async (tx) => {
        const { payment, queued } = await createPayment(inTransaction(tx, namedStatements(config.db)), merchant, input, now, links, config.payments);
        const afterCommit = () => {
          metrics.paymentsCreated.inc({ asset: assetLabel(payment.asset) });
          if (queued) wakeup.wake();
        };
        return { status: 201, body: { id: payment.id }, afterCommit };
      });
      return reply.redirect(`/dashboard/payments/${body.id}?notice=created`, 303);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return showNewForm(request, reply, failedForm("new-payment", form, error));
    }
  });
};
