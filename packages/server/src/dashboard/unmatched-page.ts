import type { FastifyPluginAsync } from "fastify";
import { paginate } from "../http/pagination.js";
import type { UnmatchedReason } from "../payments/matching.js";
import { UNMATCHED_REASONS, unmatchedOut, type UnmatchedPaymentOut } from "../payments/unmatched-routes.js";
import { getUnmatched, listUnmatched } from "../payments/unmatched-store.js";
import type { RouteDeps } from "../routes.js";
import { html, type Html } from "../web/html.js";
import { assetName, badge, table, when } from "./format.js";
import { select } from "./forms.js";
import { sendDashboardPage } from "./layout.js";

const PAGE_SIZE = 25;

/** What each reason means for the merchant, in words. */
const REASONS: Record<UnmatchedReason, string> = {
  no_memo: "No memo: the customer forgot it",
  unknown_memo: "A memo no payment of yours carries",
  wrong_asset: "The asset is not the payment's",
  before_payment: "Paid before the payment was created",
  after_monitoring_window: "Paid after the payment stopped being watched",
};

interface Query {
  reason?: UnmatchedReason | "";
  cursor?: string;
}

const querySchema = {
  type: "object",
  additionalProperties: false,
  properties: { reason: { type: "string", enum: ["", ...UNMATCHED_REASONS] }, cursor: { type: "string", maxLength: 200 } },
} as const;

function row(u: UnmatchedPaymentOut): Html {
  const memo = u.memo === null ? html`<span class="muted">none</span>` : html`<code>${u.memo}</code> <span class="muted">(${u.memo_type})</span>`;
  const named = u.payment_id ? html`<a href="/dashboard/payments/${u.payment_id}"><code>${u.payment_id}</code></a>` : "—";
  return html`<tr><td>${when(u.closed_at)}</td><td>${badge(u.reason, "warn")}<br><span class="muted">${REASONS[u.reason]}</span></td>
<td class="num">${u.amount} ${assetName(u.asset)}</td><td><code>${u.from}</code></td><td>${memo}</td><td><code>${u.transaction_hash}</code><br><span class="muted">ledger ${u.ledger}</span></td><td>${named}</td></tr>`;
}

/** `/dashboard/unmatched`: money that reached the merchant's accounts without paying a payment, with what is known of it (GET /v1/unmatched_payments). */
export const unmatchedPage: FastifyPluginAsync<RouteDeps> = async (app, { pool }) => {
  app.get<{ Querystring: Query }>("/unmatched", { schema: { hide: true, querystring: querySchema } }, async (request, reply) => {
    const merchantId = request.dashboard.merchant.id;
    const reason = request.query.reason || undefined;
    const page = await paginate(
      { limit: PAGE_SIZE, cursor: request.query.cursor },
      {
        prefix: "unm",
        positionOf: async (id) => (await getUnmatched(pool, merchantId, id))?.position,
        fetch: (after, limit) => listUnmatched(pool, { merchantId, reason, after, limit }),
        position: (u) => u.position,
        out: unmatchedOut,
      },
    );
    const filters = new URLSearchParams(reason ? { reason } : {});
    const older = page.next_cursor ? `/dashboard/unmatched?${new URLSearchParams([...filters, ["cursor", page.next_cursor]])}` : undefined;
    const options = [{ value: "", label: "All reasons" }, ...UNMATCHED_REASONS.map((r) => ({ value: r, label: REASONS[r] }))];
    const body = html`<p class="muted">Payments to your accounts that settled no payment request. The sender (<em>From</em>) is where a refund goes.</p>
<form method="get" action="/dashboard/unmatched" class="card filters" role="search" aria-label="Filter unmatched payments">${select({ name: "reason", label: "Reason", value: reason ?? "", options })}<button type="submit">Filter</button></form>
${table({ id: "t-unmatched", caption: "Unmatched payments, newest first", head: ["Closed on-chain", "Reason", { label: "Amount", num: true }, "From", "Memo", "Transaction", "Payment it named"], rows: page.data.map(row), empty: "Nothing unmatched: every payment to your accounts paid a payment request." })}
${request.query.cursor || older ? html`<nav class="actions" aria-label="Pages">${request.query.cursor ? html`<a href="/dashboard/unmatched?${filters}">Newest</a>` : ""}${older ? html`<a href="${older}">Older</a>` : ""}</nav>` : ""}`;
    return sendDashboardPage(request, reply, { title: "Unmatched payments", body });
  });
};
