import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { transaction } from "../db/pool.js";
import { HttpError } from "../http/errors.js";
import { idParams } from "../http/inputs.js";
import { cancelPayment, getPayment, paymentOut, type PaymentOut } from "../payments/service.js";
import type { RouteDeps } from "../routes.js";
import { idPattern } from "../ids.js";
import { html, type Html } from "../web/html.js";
import { qrSvg } from "../web/qr.js";
import { attemptsOf, deliveryOut, listPaymentDeliveries, type AttemptOut, type DeliveryOut } from "../webhooks/deliveries-store.js";
import { retryDelivery } from "../webhooks/service.js";
import { assetName, badge, copyable, table, when } from "./format.js";
import { actionButton, failedForm, formError, formOf, stateOf, type FormState } from "./forms.js";
import { canChange, sendDashboardPage } from "./layout.js";
import { MAX_PAYMENT_DELIVERIES, paymentEvents, type TimelineEvent } from "./queries.js";

const RESPONSE_EXCERPT = 300;

function facts(request: FastifyRequest, p: PaymentOut, state: FormState | undefined): Html {
  const memo = p.memo === null ? html`none: customers pay the M address (muxed id <code>${p.muxed_id}</code>)` : html`<code>${p.memo}</code> (${p.memo_type})`;
  const metadata = Object.entries(p.metadata);
  return html`<dl class="facts">
<dt>Status</dt><dd>${badge(p.status)}${p.overpaid ? html` ${badge("overpaid", "warn")}` : ""}</dd>
<dt>Amount</dt><dd>${p.amount} ${assetName(p.asset)}</dd>
<dt>Received on time</dt><dd>${p.amount_received}</dd>
<dt>Pay to</dt><dd><code>${p.destination}</code></dd>
<dt>Memo</dt><dd>${memo}</dd>
<dt>Description</dt><dd>${p.description ?? "—"}</dd>
<dt>Metadata</dt><dd>${metadata.length === 0 ? "—" : metadata.map(([k, v]) => html`<code>${k}</code> = <code>${v}</code><br>`)}</dd>
<dt>Created</dt><dd>${when(p.created_at)}</dd>
<dt>Expires</dt><dd>${when(p.expires_at)} <span class="muted">(operations are still recorded, as late, for ${p.monitor_for} s after)</span></dd>
<dt>Confirmed</dt><dd>${when(p.confirmed_at)}</dd>
<dt>Expired</dt><dd>${when(p.expired_at)}</dd>
<dt>Canceled</dt><dd>${when(p.canceled_at)}</dd>
<dt>Id</dt><dd><code>${p.id}</code></dd></dl>
${formError(stateOf(state, "cancel"))}${p.status === "pending" && canChange(request) ? html`<div class="actions">${actionButton(request, { action: `/dashboard/payments/${p.id}/cancel`, label: "Cancel payment", danger: true, confirm: "Cancel this payment? The customer can no longer pay it." })}</div>` : ""}`;
}

/** For an open payment: the link to send, its QR code, and the SEP-7 link wallets open. */
function paymentLink(p: PaymentOut): Html {
  if (p.status !== "pending" && p.status !== "partially_paid") return html``;
  return html`<section class="card" aria-labelledby="link"><h2 id="link">Payment link</h2>
${copyable("payment-url", "Send this link to your customer", p.payment_url)}
<p><a href="${p.payment_url}">Open the payment page</a> · <a href="${p.sep7_uri}">Open in a Stellar wallet</a></p>
<div class="qr">${qrSvg(p.payment_url, "QR code of the payment link")}</div></section>`;
}

function settlements(p: PaymentOut): Html {
  const rows = p.settlements.map(
    (s) => html`<tr><td><code>${s.transaction_hash}</code></td><td class="num">${s.ledger}</td><td>${when(s.closed_at)}</td><td class="num">${s.amount}</td><td><code>${s.from}</code></td><td>${s.late ? badge("late", "bad") : badge("on time", "ok")}</td></tr>`,
  );
  return table({ id: "t-settlements", caption: "Settlements: the on-chain operations that paid it", head: ["Transaction", { label: "Ledger", num: true }, "Closed on-chain", { label: "Amount", num: true }, "From", "On time"], rows, empty: "No operation has paid this payment yet." });
}

function timeline(events: TimelineEvent[]): Html {
  const rows = events.map((e) => html`<tr><td>${when(e.createdAt)}</td><td><code>${e.type}</code></td><td class="num">${e.sequence ?? "—"}</td><td><code>${e.id}</code></td></tr>`);
  return table({ id: "t-events", caption: "Events, in order", head: ["When", "Event", { label: "Sequence", num: true }, "Event id"], rows, empty: "No events." });
}

function attemptRow(a: AttemptOut): Html {
  const outcome = a.status_code === null ? badge(a.error_class ?? "no response", "bad") : badge(String(a.status_code), a.status_code < 300 ? "ok" : "bad");
  const excerpt = a.response_body === null ? "—" : html`<code>${a.response_body.slice(0, RESPONSE_EXCERPT)}</code>`;
  return html`<tr><td class="num">${a.attempt}</td><td>${when(a.started_at)}</td><td>${outcome}</td><td class="num">${a.duration_ms} ms</td><td>${excerpt}</td></tr>`;
}

interface ShownDelivery {
  delivery: DeliveryOut;
  endpointUrl: string;
  attempts: AttemptOut[];
}

function deliveryBlock(request: FastifyRequest, paymentId: string, { delivery: d, endpointUrl, attempts }: ShownDelivery, state: FormState | undefined): Html {
  const resend = canChange(request) ? actionButton(request, { action: `/dashboard/payments/${paymentId}/deliveries/${d.id}/retry`, label: "Resend" }) : "";
  return html`<article class="card" aria-labelledby="h-${d.id}"><h3 id="h-${d.id}"><code>${d.event_type}</code> to <code>${endpointUrl}</code></h3>
<p>${badge(d.status)} ${d.attempt_count} attempt(s)${d.next_attempt_at ? html`, next ${when(d.next_attempt_at)}` : ""} · <code>${d.id}</code></p>
${table({ id: `t-${d.id}`, caption: `Attempts of ${d.id}`, head: [{ label: "#", num: true }, "Started", "Answer", { label: "Took", num: true }, "Response (start)"], rows: attempts.map(attemptRow), empty: "No attempt yet." })}
${formError(stateOf(state, `resend-${d.id}`))}<div class="actions">${resend}</div></article>`;
}

/** `/dashboard/payments/:id`: everything about one payment, its link, and the actions on it. */
export const paymentPage: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config, wakeup }) => {
  const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase };

  async function showPayment(request: FastifyRequest, reply: FastifyReply, id: string, state?: FormState) {
    const merchantId = request.dashboard.merchant.id;
    const payment = paymentOut(await getPayment(pool, merchantId, id), links);
    const [events, shownDeliveries] = await Promise.all([
      paymentEvents(pool, merchantId, id),
      // Two queries however many deliveries: the rows with their endpoints' URLs, then every attempt log.
      listPaymentDeliveries(pool, merchantId, id, MAX_PAYMENT_DELIVERIES).then(async (found) => {
        const attempts = await attemptsOf(pool, found.map((d) => d.id));
        return found.map((d) => ({ delivery: deliveryOut(d), endpointUrl: d.url, attempts: attempts.get(d.id) ?? [] }));
      }),
    ]);
    const body = html`<p><a href="/dashboard/payments">All payments</a></p>
<section class="card" aria-labelledby="facts"><h2 id="facts">${payment.amount} ${assetName(payment.asset)}${payment.description ? html` · ${payment.description}` : ""}</h2>${facts(request, payment, state)}</section>
${paymentLink(payment)}
<section class="card" aria-labelledby="settlements"><h2 id="settlements">Settlements</h2>${settlements(payment)}</section>
<section class="card" aria-labelledby="timeline"><h2 id="timeline">Timeline</h2>${timeline(events)}</section>
<section aria-labelledby="deliveries"><h2 id="deliveries">Webhook deliveries</h2>
${shownDeliveries.length === 0 ? html`<p class="muted">No webhook delivery: no endpoint was subscribed to these events.</p>` : shownDeliveries.map((d) => deliveryBlock(request, id, d, state))}</section>`;
    return sendDashboardPage(request, reply, { title: `Payment ${payment.id}`, body, status: state?.error.status });
  }

  /** Runs a one-button action on the payment; its error is shown next to that button, on the payment's page. */
  async function act(request: FastifyRequest, reply: FastifyReply, id: string, form: string, run: () => Promise<string>) {
    try {
      return reply.redirect(await run(), 303);
    } catch (error) {
      if (!(error instanceof HttpError) || error.code === "resource_not_found") throw error;
      return showPayment(request, reply, id, failedForm(form, formOf(request), error));
    }
  }

  app.get<{ Params: { id: string } }>("/payments/:id", { schema: { hide: true, params: idParams("pay") } }, async (request, reply) =>
    showPayment(request, reply, request.params.id),
  );

  app.post<{ Params: { id: string } }>("/payments/:id/cancel", { schema: { hide: true, params: idParams("pay") } }, async (request, reply) => {
    const { id } = request.params;
    return act(request, reply, id, "cancel", async () => {
      const { queued } = await transaction(pool, (tx) => cancelPayment(tx, request.dashboard.merchant.id, id, clock.now(), links));
      if (queued) wakeup.wake();
      return `/dashboard/payments/${id}?notice=canceled`;
    });
  });

  const retryParams = {
    type: "object",
    required: ["id", "deliveryId"],
    properties: { id: { type: "string", pattern: idPattern("pay"), maxLength: 64 }, deliveryId: { type: "string", pattern: idPattern("del"), maxLength: 64 } },
  } as const;

  app.post<{ Params: { id: string; deliveryId: string } }>(
    "/payments/:id/deliveries/:deliveryId/retry",
    { schema: { hide: true, params: retryParams } },
    async (request, reply) => {
      const { id, deliveryId } = request.params;
      return act(request, reply, id, `resend-${deliveryId}`, async () => {
        await transaction(pool, (tx) => retryDelivery(tx, request.dashboard.merchant.id, deliveryId, clock.now()));
        wakeup.wake();
        return `/dashboard/payments/${id}?notice=resent#h-${deliveryId}`;
      });
    },
  );
};
