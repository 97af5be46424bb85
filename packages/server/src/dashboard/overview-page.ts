import type { FastifyPluginAsync } from "fastify";
import { PAYMENT_STATUSES, type PaymentStatus } from "../payments/store.js";
import type { RouteDeps } from "../routes.js";
import { formatAmount } from "../stellar/amount.js";
import { assetOut } from "../stellar/assets.js";
import { html } from "../web/html.js";
import { paymentsChart, type DayCounts } from "./chart.js";
import { assetName, badge, percent, table, when } from "./format.js";
import { sendDashboardPage } from "./layout.js";
import { merchantDeliveryHealth, paymentsPerDay, receivedPerAsset } from "./queries.js";

const DAY_MS = 86_400_000;
const CHART_DAYS = 30;

const zeroCounts = () => Object.fromEntries(PAYMENT_STATUSES.map((s) => [s, 0])) as Record<PaymentStatus, number>;

/** The last `CHART_DAYS` UTC days up to today's, each with its counts (zero when nothing happened). */
function lastDays(rows: Array<{ day: string; status: PaymentStatus; count: number }>, today: Date): DayCounts[] {
  const days = Array.from({ length: CHART_DAYS }, (_, i) => ({
    day: new Date(today.getTime() - (CHART_DAYS - 1 - i) * DAY_MS).toISOString().slice(0, 10),
    counts: zeroCounts(),
  }));
  const byDay = new Map(days.map((d) => [d.day, d]));
  for (const r of rows) {
    const day = byDay.get(r.day);
    if (day) day.counts[r.status] = r.count;
  }
  return days;
}

const sum = (days: DayCounts[], status: PaymentStatus) => days.reduce((n, d) => n + d.counts[status], 0);
const all = (days: DayCounts[]) => PAYMENT_STATUSES.reduce((n, s) => n + sum(days, s), 0);

/** `GET /dashboard`: payments today and over 30 days by status, money received per asset, webhook health. */
export const overviewPage: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock }) => {
  app.get("/", { schema: { hide: true } }, async (request, reply) => {
    const merchantId = request.dashboard.merchant.id;
    const now = clock.now();
    const today = new Date(now.getTime() - (now.getTime() % DAY_MS));
    const since = new Date(today.getTime() - (CHART_DAYS - 1) * DAY_MS);
    const [perDay, received, webhooks] = await Promise.all([
      paymentsPerDay(pool, merchantId, since),
      receivedPerAsset(pool, merchantId, { today, since }),
      merchantDeliveryHealth(pool, merchantId, new Date(now.getTime() - DAY_MS)),
    ]);
    const days = lastDays(perDay, today);
    const todays = days.slice(-1);

    const statusRows = PAYMENT_STATUSES.map(
      (s) => html`<tr><th scope="row"><a href="/dashboard/payments?status=${s}">${badge(s)}</a></th><td class="num">${sum(todays, s)}</td><td class="num">${sum(days, s)}</td></tr>`,
    );
    const receivedRows = received.map(
      (r) => html`<tr><th scope="row">${assetName(assetOut(r.asset))}</th><td class="num">${formatAmount(r.today)}</td><td class="num">${formatAmount(r.total)}</td></tr>`,
    );
    const body = html`<div class="cards">
<section class="card" aria-labelledby="c-today"><h2 id="c-today">Today</h2><p class="big">${all(todays)}</p><p class="muted">payments created, ${sum(todays, "confirmed")} confirmed</p></section>
<section class="card" aria-labelledby="c-month"><h2 id="c-month">Last 30 days</h2><p class="big">${all(days)}</p><p class="muted">payments created, ${sum(days, "confirmed")} confirmed</p></section>
<section class="card" aria-labelledby="c-hooks"><h2 id="c-hooks">Webhooks, last 24 h</h2><p class="big">${percent(webhooks.succeeded, webhooks.attempts)}</p><p class="muted">of ${webhooks.attempts} attempts answered 2xx</p></section>
<section class="card" aria-labelledby="c-queue"><h2 id="c-queue">Webhook queue</h2><p class="big">${webhooks.queued}</p><p class="muted">deliveries waiting${webhooks.oldestDueAt ? html`, the oldest due ${when(webhooks.oldestDueAt)}` : ""}</p></section>
</div>
<section class="card" aria-labelledby="c-chart"><h2 id="c-chart">Payments per day</h2>
${paymentsChart(days, `Payments created per day over the last ${CHART_DAYS} days, by status; the table below has the totals.`)}
${table({ id: "t-status", caption: "Payments by status", head: ["Status", { label: "Today", num: true }, { label: "Last 30 days", num: true }], rows: statusRows, empty: "" })}
</section>
<section class="card" aria-labelledby="c-received"><h2 id="c-received">Received</h2>
${table({ id: "t-received", caption: "Amounts received on time, per asset (by ledger close time)", head: ["Asset", { label: "Today", num: true }, { label: "Last 30 days", num: true }], rows: receivedRows, empty: "Nothing received in the last 30 days." })}
</section>`;
    return sendDashboardPage(request, reply, { title: "Overview", body });
  });
};
