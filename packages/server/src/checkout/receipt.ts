import { html, type Html } from "../web/html.js";
import type { SettlementOut } from "../payments/service.js";
import { formatDateTime, MESSAGES, type Messages } from "./i18n.js";
import { assetCode, layout, merchantHeader, withAsset, type PageContext } from "./page.js";
import type { CheckoutView } from "./view.js";

/** One on-chain operation that paid the payment: what a customer shows their bank or accountant. */
function settlementSection(t: Messages, view: CheckoutView, s: SettlementOut, ctx: PageContext): Html {
  return html`<dl class="fields settlement">
<div><dt>${t.transaction}</dt><dd><code>${s.transaction_hash}</code></dd></div>
<div><dt>${t.ledger}</dt><dd>${s.ledger}</dd></div>
<div><dt>${t.onChainTime}</dt><dd><time datetime="${s.closed_at}">${formatDateTime(ctx.language, new Date(s.closed_at), "medium")}</time></dd></div>
<div><dt>${t.amount}</dt><dd>${withAsset(s.amount, view.payment)}</dd></div>
<div><dt>${t.from}</dt><dd><code>${s.from}</code></dd></div>
</dl>`;
}

/** `GET /pay/:id/receipt` of a paid payment: printable (the print style sheet drops buttons and links). */
export function receiptPage(view: CheckoutView, ctx: PageContext): Html {
  const t = MESSAGES[ctx.language];
  const { payment } = view;
  const issuer = payment.asset === "XLM" ? "" : html`<div><dt>${t.asset} ${t.issuer}</dt><dd><code>${payment.asset.issuer}</code></dd></div>`;
  // Late operations did not pay this payment (the merchant refunds or accepts them), so they are not on its receipt.
  const settlements = payment.settlements.filter((s) => !s.late);
  return layout(
    ctx,
    `${t.receiptTitle}: ${view.merchantName}`,
    html`<main class="card">
${merchantHeader(view.merchantName, t.receiptTitle)}
<p class="amount">${payment.amount} <span>${assetCode(payment)}</span></p>
<dl class="fields">
<div><dt>${t.paidTo}</dt><dd>${view.merchantName}</dd></div>
<div><dt>${t.payment}</dt><dd><code>${payment.id}</code></dd></div>
${payment.description ? html`<div><dt>${t.description}</dt><dd>${payment.description}</dd></div>` : ""}
${payment.confirmed_at ? html`<div><dt>${t.paidAt}</dt><dd><time datetime="${payment.confirmed_at}">${formatDateTime(ctx.language, new Date(payment.confirmed_at), "medium")}</time></dd></div>` : ""}
${issuer}
<div><dt>${t.sendTo}</dt><dd><code>${payment.destination}</code></dd></div>
</dl>
<h2>${t.transactions}</h2>
${settlements.map((s) => settlementSection(t, view, s, ctx))}
<p class="screen-only"><button type="button" data-print hidden>${t.print}</button> <a href="/pay/${payment.id}?lang=${ctx.language}">${t.backToPayment}</a></p>
</main>`,
  );
}

/** A receipt asked for before the payment is paid: say so, and lead back to the checkout. */
export function noReceiptPage(paymentId: string, ctx: PageContext): Html {
  const t = MESSAGES[ctx.language];
  return layout(
    ctx,
    t.noReceiptTitle,
    html`<main class="card"><h1>${t.noReceiptTitle}</h1><p>${t.noReceipt}</p><p><a href="/pay/${paymentId}?lang=${ctx.language}">${t.backToPayment}</a></p></main>`,
  );
}
