import type { FastifyReply, FastifyRequest } from "fastify";
import { html, newNonce, sendPage, trusted, type Html } from "../web/html.js";
import { csrfField } from "./forms.js";

/** The page shell: navigation, the signed-in user, a sign-out button, one stylesheet and one small script, each with the response's nonce. */

const NAV = [
  ["/dashboard", "Overview"],
  ["/dashboard/payments", "Payments"],
  ["/dashboard/unmatched", "Unmatched"],
  ["/dashboard/webhooks", "Webhooks"],
  ["/dashboard/keys", "API keys"],
  ["/dashboard/settings", "Settings"],
] as const;

/** What a redirect after a change says on the next page (`?notice=`): fixed texts, never the query's own words. */
const NOTICES: Record<string, string> = {
  canceled: "The payment was canceled.",
  resent: "The delivery is queued again: a worker sends it now.",
  saved: "Saved.",
  created: "Created.",
  test_sent: "A webhook.test event is queued for this endpoint.",
  enabled: "The endpoint is enabled. Recover what it missed while it was off below.",
  disabled: "The endpoint is disabled: events are stored for it but not sent.",
  rotated: "The secret was rotated. The previous one keeps signing until the grace period ends; reveal the new one to configure your receiver.",
  recovery: "Recovery started: failed and parked deliveries of that period are queued again.",
  revoked: "The API key was revoked; requests using it are refused from now on.",
  verified: "The home domain is verified: its stellar.toml is served.",
  attached: "The account is attached and marked verified.",
};

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;background:#f6f8fa}
a{color:#0a58ca}
:focus-visible{outline:3px solid #0a58ca;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:2}
header{background:#0f172a;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}
header .brand{font-weight:700;margin-right:auto}
header nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem .9rem}
header a{color:#fff;text-decoration:none;padding:.25rem 0;display:inline-block}
header a[aria-current=page]{border-bottom:3px solid #93c5fd}
header :focus-visible{outline-color:#fff}
header .who{font-size:.875rem;display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
header button{background:transparent;color:#fff;border:1px solid #cbd5e1}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1,h2,h3,p,dd,li,legend{overflow-wrap:anywhere}
h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.25rem;margin:1.5rem 0 .5rem}h3{font-size:1.05rem;margin:1rem 0 .25rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:.5rem;padding:1rem;margin-bottom:1rem}
.card>h2:first-child,.card>h3:first-child{margin-top:0}
.filters{display:flex;flex-wrap:wrap;gap:0 1rem;align-items:flex-end}.filters .field{flex:1 1 14rem}.filters button{margin-bottom:.8rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(16rem,1fr));gap:0 1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:1rem}
.muted,.hint{color:#57606a;font-size:.875rem}
.scroll{overflow-x:auto;max-width:100%}.scroll table{min-width:36rem}
table{border-collapse:collapse;width:100%;background:#fff}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}
thead th{background:#f6f8fa;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-all}
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.8rem;font-weight:600;white-space:nowrap;background:#eaeef2;color:#24292f}
.badge.confirmed,.badge.succeeded,.badge.ok{background:#dafbe1;color:#116329}
.badge.partially_paid,.badge.warn{background:#fff8c5;color:#6a4200}
.badge.canceled,.badge.failed,.badge.bad{background:#ffebe9;color:#a40e26}
.badge.expired,.badge.endpoint_disabled{background:#eaeef2;color:#4d555d}
.field{display:flex;flex-direction:column;gap:.2rem;margin-bottom:.8rem;max-width:36rem}
label{font-weight:600}
input,select,textarea{font:inherit;padding:.45rem .5rem;border:1px solid #6e7781;border-radius:.35rem;background:#fff;color:#1f2328;width:100%}
input[aria-invalid=true],textarea[aria-invalid=true],select[aria-invalid=true]{border:2px solid #a40e26}
.field-error{color:#a40e26;font-weight:600;font-size:.9rem}
fieldset.checks{border:1px solid #d0d7de;border-radius:.35rem;margin:0 0 .8rem;max-width:36rem}
label.check{display:flex;gap:.4rem;align-items:center;font-weight:400}
label.check input{width:auto}
button,.button{font:inherit;font-weight:600;padding:.45rem .9rem;border-radius:.35rem;border:1px solid #0a58ca;background:#0a58ca;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#fff;color:#0a58ca}
button.danger{background:#b42318;border-color:#b42318}
form.inline{display:inline-block;margin:0 .25rem .25rem 0}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.5rem 0}
.form-error{border:2px solid #a40e26;background:#ffebe9;border-radius:.35rem;padding:0 .75rem;margin-bottom:.8rem}
.notice{border:1px solid #116329;background:#dafbe1;border-radius:.35rem;padding:.5rem .75rem;margin-bottom:1rem}
.viewer{border:1px solid #6a4200;background:#fff8c5;border-radius:.35rem;padding:.5rem .75rem;margin-bottom:1rem}
.secret{background:#fff8c5;border:1px solid #6a4200;border-radius:.35rem;padding:.5rem .75rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;min-width:0}
.qr svg{width:14rem;max-width:100%;height:auto;border:1px solid #d0d7de}
.chart svg{width:100%;height:auto}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem;font-size:.875rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle;border:1px solid #1f2328}
.sw-pending{background:#8c959f}.sw-partially_paid{background:#bf8700}.sw-confirmed{background:#1a7f37}.sw-expired{background:#d0d7de}.sw-canceled{background:#cf222e}
.big{font-size:1.6rem;font-weight:700}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:.35rem;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
@media (max-width:40rem){main{padding:.75rem}h1{font-size:1.35rem}dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.4rem}}
`;

// Progressive enhancement only: a copy button next to links and secrets, and a confirmation before destructive buttons.
const SCRIPT = `
document.querySelectorAll("[data-copy]").forEach(function (b) {
  b.hidden = false;
  b.addEventListener("click", function () {
    navigator.clipboard.writeText(document.getElementById(b.dataset.copy).value).then(function () { b.textContent = "Copied"; });
  });
});
document.querySelectorAll("form[data-confirm]").forEach(function (f) {
  f.addEventListener("submit", function (e) { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
});
`;

/** STYLE and SCRIPT are constants of this file: raw text elements, where escaping would corrupt them. */
function shell(nonce: string, title: string, header: Html, main: Html): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Lumenpay</title><style nonce="${nonce}">${trusted(STYLE)}</style></head>
<body><a class="skip" href="#main">Skip to content</a>${header}<main id="main">${main}</main>
<script nonce="${nonce}">${trusted(SCRIPT)}</script></body></html>`;
}

function currentSection(url: string): string {
  const path = url.split("?")[0]!;
  return [...NAV].reverse().find(([href]) => path === href || (href !== "/dashboard" && path.startsWith(`${href}/`)))?.[0] ?? "/dashboard";
}

function signedInHeader(request: FastifyRequest): Html {
  const { user, merchant } = request.dashboard;
  const current = currentSection(request.url);
  return html`<header><span class="brand">${merchant.name}</span>
<nav aria-label="Dashboard"><ul>${NAV.map(([href, label]) => html`<li><a href="${href}"${href === current ? html` aria-current="page"` : ""}>${label}</a></li>`)}</ul></nav>
<div class="who"><span>${user.email} (${user.role})</span><form class="inline" method="post" action="/dashboard/logout">${csrfField(request)}<button type="submit">Sign out</button></form></div></header>`;
}

function noticeOf(request: FastifyRequest): Html {
  const key = (request.query as Record<string, unknown> | undefined)?.notice;
  const text = typeof key === "string" ? NOTICES[key] : undefined;
  return text ? html`<p class="notice" role="status">${text}</p>` : html``;
}

/** Sends a signed-in page: `body` under an h1 of `title`, with the notice a redirect asked for. */
export function sendDashboardPage(request: FastifyRequest, reply: FastifyReply, { title, body, status }: { title: string; body: Html; status?: number }) {
  const nonce = newNonce();
  const viewer = request.dashboard.user.role === "viewer" ? html`<p class="viewer">You have view-only access: you can see everything here but change nothing.</p>` : "";
  return sendPage(reply, shell(nonce, title, signedInHeader(request), html`<h1>${title}</h1>${noticeOf(request)}${viewer}${body}`), { nonce, status });
}

/** Sends a page for someone not signed in (sign-in, errors). */
export function sendPublicPage(reply: FastifyReply, { title, body, status }: { title: string; body: Html; status?: number }) {
  const nonce = newNonce();
  return sendPage(reply, shell(nonce, title, html`<header><span class="brand">Lumenpay</span></header>`, html`<h1>${title}</h1>${body}`), { nonce, status });
}

/** Whether the signed-in user may change things: pages show their forms to owners only (the server refuses viewers anyway). */
export const canChange = (request: FastifyRequest) => request.dashboard.user.role === "owner";
