import type { FastifyPluginAsync } from "fastify";
import type { RouteDeps } from "../routes.js";
import { isId } from "../ids.js";
import { getMerchant } from "../merchants/store.js";
import { paymentOut, type PaymentOut } from "./service.js";
import { findPayment } from "./store.js";

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

const STATUS_TEXT: Record<PaymentOut["status"], string> = {
  pending: "Waiting for your payment",
  partially_paid: "Partly paid — please send the rest",
  confirmed: "Paid — thank you",
  expired: "This payment request has expired",
  canceled: "This payment request was canceled",
};

function row(label: string, value: string | null): string {
  return value === null ? "" : `<tr><th>${escapeHtml(label)}</th><td><code>${escapeHtml(value)}</code></td></tr>`;
}

/** A small server-rendered page: everything a customer needs to pay from any wallet. */
function render(merchantName: string, p: PaymentOut): string {
  const asset = p.asset === "XLM" ? "XLM" : p.asset.code;
  const open = p.status === "pending" || p.status === "partially_paid";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
${open ? '<meta http-equiv="refresh" content="10">' : ""}
<title>Pay ${escapeHtml(merchantName)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#111}
h1{font-size:1.4rem}.amount{font-size:2rem;font-weight:600}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ddd;vertical-align:top}code{word-break:break-all}
.button{display:inline-block;margin:1rem 0;padding:.7rem 1.2rem;background:#111;color:#fff;border-radius:.4rem;text-decoration:none}
.status{padding:.5rem .8rem;border-radius:.4rem;background:#f3f3f3}</style></head>
<body><h1>Pay ${escapeHtml(merchantName)}</h1>
<p class="amount">${escapeHtml(p.amount)} ${escapeHtml(asset)}</p>
${p.description ? `<p>${escapeHtml(p.description)}</p>` : ""}
<p class="status" data-status="${p.status}">${STATUS_TEXT[p.status]}</p>
${open ? `<a class="button" href="${escapeHtml(p.sep7_uri)}">Open in a Stellar wallet</a>` : ""}
<table>
${row("Send to", p.destination)}
${row(`Memo (${p.memo_type ?? "none"})`, p.memo)}
${row("Amount", `${p.amount} ${asset}`)}
${p.asset === "XLM" ? "" : row("Asset issuer", p.asset.issuer)}
${row("Received", p.amount_received)}
${row("Expires", p.expires_at)}
</table>
${open ? "<p>Include the memo exactly: without it the payment cannot be matched.</p>" : ""}
</body></html>`;
}

/** `GET /pay/:id`: the public page behind `payment_url` (no API key; the id is the secret link). */
export const paymentPageRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, config }) => {
  const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: config.stellar.networkPassphrase };
  app.get<{ Params: { id: string } }>(
    "/pay/:id",
    { schema: { hide: true, params: { type: "object", properties: { id: { type: "string", maxLength: 64 } }, required: ["id"] } } },
    async (request, reply) => {
      const payment = isId("pay", request.params.id) ? await findPayment(pool, request.params.id) : undefined;
      const merchant = payment && (await getMerchant(pool, payment.merchantId));
      reply
        // Never framed: a page asking for money must not be overlaid by another site (clickjacking).
        .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
        .header("x-frame-options", "DENY")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", "no-store")
        .type("text/html; charset=utf-8");
      if (!payment || !merchant) return reply.status(404).send("<!doctype html><title>Not found</title><p>No such payment.</p>");
      return render(merchant.org.name ?? merchant.name, paymentOut(payment, links));
    },
  );
};
