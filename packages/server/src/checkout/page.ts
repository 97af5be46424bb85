import { abbreviateKey, html, trusted, type Html } from "../web/html.js";
import { qrSvgFitting } from "../web/qr.js";
import type { PaymentOut } from "../payments/service.js";
import { CHECKOUT_CSS, CHECKOUT_JS } from "./assets.js";
import { formatDateTime, LANGUAGES, MESSAGES, type Language, type Messages } from "./i18n.js";
import type { CheckoutState, CheckoutView } from "./view.js";

/** Everything a page needs besides its content: its language and this response's CSP nonce. */
export interface PageContext {
  language: Language;
  nonce: string;
}

/** Fits a 360 px screen; whole pixels per module keep it sharp for cameras. */
const QR_MAX_PX = 300;

/** Links to this page in the other languages. */
function footer(language: Language): Html {
  const others = LANGUAGES.filter((l) => l !== language);
  return html`<footer>${others.map((l) => html`<a href="?lang=${l}" lang="${l}" hreflang="${l}">${MESSAGES[l].languageName}</a>`)}</footer>`;
}

/** The document around a page's `<main>`: the inline style sheet and script under the nonce, and a region announcing "Copied". */
export function layout(ctx: PageContext, title: string, main: Html): Html {
  return html`<!doctype html>
<html lang="${ctx.language}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style nonce="${ctx.nonce}">${trusted(CHECKOUT_CSS)}</style></head>
<body>${main}${footer(ctx.language)}<p id="notice" class="sr-only" role="status"></p>
<script nonce="${ctx.nonce}">${trusted(CHECKOUT_JS)}</script></body></html>`;
}

/** Who is asking for the money: a monogram (remote logos are not loaded, see docs/operations.md) and the name. */
export function merchantHeader(name: string, eyebrow: string): Html {
  return html`<header class="merchant"><span class="monogram" aria-hidden="true">${[...name.trim()][0]?.toUpperCase() ?? "?"}</span>
<div><p class="eyebrow">${eyebrow}</p><h1>${name}</h1></div></header>`;
}

export const assetCode = (payment: PaymentOut) => (payment.asset === "XLM" ? "XLM" : payment.asset.code);

/** "12.5 USDC": an amount with its asset code. */
export const withAsset = (amount: string, payment: PaymentOut) => `${amount} ${assetCode(payment)}`;

/** "GA5Z…KZVN": enough of a 56-character key to recognise it; the copy button copies all of it. */

type Copyable = Exclude<keyof Messages["copy"], "button" | "done">;

/** Shown once the script runs (it alone can copy); the accessible name says what it copies. */
function copyButton(t: Messages, value: string, what: Copyable): Html {
  return html`<button type="button" data-copy="${value}" data-copied="${t.copy.done}" aria-label="${t.copy[what]}" hidden>${t.copy.button}</button>`;
}

/** One labelled value with its copy button; `shown` is what is displayed when it is not the value itself. */
function field(t: Messages, label: string, value: string, what: Copyable, shown: Html | string = html`<code>${value}</code>`): Html {
  return html`<div><dt>${label}</dt><dd><span>${shown}</span>${copyButton(t, value, what)}</dd></div>`;
}

function assetField(t: Messages, payment: PaymentOut): Html {
  if (payment.asset === "XLM") return html`<div><dt>${t.asset}</dt><dd>${t.nativeAsset}</dd></div>`;
  const { code, issuer } = payment.asset;
  return html`<div><dt>${t.asset}</dt><dd><span>${code}, ${t.issuer} <code title="${issuer}">${abbreviateKey(issuer)}</code></span>${copyButton(t, issuer, "issuer")}</dd></div>`;
}

/** The memo with its warning, or for a muxed payment the note that its M address is all it takes. */
function memoFields(t: Messages, payment: PaymentOut): { field: Html | string; note: Html } {
  if (payment.memo === null || payment.memo_type === null) return { field: "", note: html`<p class="note">${t.muxedNote}</p>` };
  return {
    field: field(t, t.memo(t.memoTypes[payment.memo_type]), payment.memo, "memo"),
    note: html`<p class="warning"><strong>${t.memoRequiredTitle}</strong> ${t.memoRequired}</p>`,
  };
}

/** "59:07" or "1:05:00", as the script counts. */
function formatCountdown(seconds: number): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return `${hours ? `${hours}:${pad(minutes)}` : minutes}:${pad(seconds % 60)}`;
}

function openDetails(view: CheckoutView, language: Language, t: Messages): Html {
  const { payment, remaining } = view;
  const partial = view.state === "partially_paid";
  const due = withAsset(remaining, payment);
  const memo = memoFields(t, payment);
  return html`${partial ? html`<p>${t.received(withAsset(payment.amount_received, payment), withAsset(payment.amount, payment))} ${t.stillToPay}: <strong>${due}</strong></p>` : ""}
<figure class="qr">${qrSvgFitting(view.payUri, t.qrLabel(due), QR_MAX_PX)}<figcaption>${t.scanWithWallet}</figcaption></figure>
<a class="button" href="${view.payUri}">${t.openInWallet}</a>
<dl class="fields">${field(t, partial ? t.stillToPay : t.amount, remaining, "amount", html`<code>${remaining}</code> ${assetCode(payment)}`)}${assetField(t, payment)}
${field(t, t.sendTo, payment.destination, "destination")}${memo.field}</dl>
${memo.note}
<p>${t.timeLeft}: <strong id="countdown" role="timer" data-seconds-left="${view.secondsLeft}">${formatCountdown(view.secondsLeft)}</strong>
(<time datetime="${payment.expires_at}">${formatDateTime(language, new Date(payment.expires_at))}</time>)</p>`;
}

function paidDetails(view: CheckoutView, language: Language, t: Messages): Html {
  const { payment, completedBy } = view;
  return html`<dl class="fields">${completedBy ? field(t, t.transaction, completedBy.transaction_hash, "transaction") : ""}</dl>
<a class="button" href="/pay/${payment.id}/receipt?lang=${language}">${t.viewReceipt}</a>
${payment.success_url ? html`<p><a href="${payment.success_url}">${t.continue}</a></p>` : ""}`;
}

function closedDetails(view: CheckoutView, t: Messages): Html {
  const { payment } = view;
  const funds = payment.amount_received !== "0" ? html`<p>${t.refundable(withAsset(payment.amount_received, payment))}</p>` : "";
  return html`${funds}<p class="help">${view.state === "canceled" ? t.canceledHelp : t.expiredHelp}</p>`;
}

/** The part of the checkout that changes with the payment: replaced as a whole by live updates. */
export function liveDetails(view: CheckoutView, language: Language): Html {
  const t = MESSAGES[language];
  const details: Record<CheckoutState, () => Html> = {
    pending: () => openDetails(view, language, t),
    partially_paid: () => openDetails(view, language, t),
    paid: () => paidDetails(view, language, t),
    expired: () => closedDetails(view, t),
    canceled: () => closedDetails(view, t),
  };
  return details[view.state]();
}

/** The one-line status announced to screen readers when it changes. */
export function statusMessage(view: CheckoutView, language: Language): string {
  const status = MESSAGES[language].status;
  return view.state === "partially_paid" ? status.partially_paid(withAsset(view.remaining, view.payment)) : status[view.state];
}

/** `GET /pay/:id`: everything needed to pay from any wallet, correct without JavaScript; live with it. */
export function checkoutPage(view: CheckoutView, ctx: PageContext): Html {
  const t = MESSAGES[ctx.language];
  const { payment } = view;
  const self = `/pay/${payment.id}`;
  const query = `?lang=${ctx.language}`;
  return layout(
    ctx,
    t.pageTitle(view.merchantName),
    html`<main class="card" id="checkout" data-state="${view.state}" data-version="${view.version}" data-live="${self}/events${query}" data-poll="${self}/status${query}">
${merchantHeader(view.merchantName, t.paymentRequest)}
<p class="amount">${payment.amount} <span>${assetCode(payment)}</span></p>
${payment.description ? html`<p>${payment.description}</p>` : ""}
<p id="status" class="status" role="status" aria-live="polite">${statusMessage(view, ctx.language)}</p>
<div id="details">${liveDetails(view, ctx.language)}</div>
<p id="refresh" class="note">${t.noScript} <a href="${self}${query}">${t.refresh}</a></p>
</main>`,
  );
}

/** Unknown and malformed ids alike: the link is the secret, so nothing tells them apart. */
export function notFoundPage(ctx: PageContext): Html {
  const t = MESSAGES[ctx.language];
  return layout(ctx, t.notFoundTitle, html`<main class="card"><h1>${t.notFoundTitle}</h1><p>${t.notFound}</p></main>`);
}
