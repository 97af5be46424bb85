import { PAYMENT_STATUSES, type PaymentStatus } from "../payments/store.js";
import { html, trusted, type Html } from "../web/html.js";

/** Payments per day as stacked bars, drawn on the server as SVG: no script, no library, readable by the data table next to it. */

export interface DayCounts {
  /** YYYY-MM-DD (UTC). */
  day: string;
  counts: Record<PaymentStatus, number>;
}

/** The same colours as the legend's swatches (layout.ts). */
const FILL: Record<PaymentStatus, string> = {
  pending: "#8c959f",
  partially_paid: "#bf8700",
  confirmed: "#1a7f37",
  expired: "#d0d7de",
  canceled: "#cf222e",
};

const WIDTH = 600;
const HEIGHT = 180;
const AXIS = 22;

const total = (d: DayCounts) => PAYMENT_STATUSES.reduce((n, s) => n + d.counts[s], 0);

function bars(day: DayCounts, x: number, width: number, scale: number): string {
  let y = HEIGHT - AXIS;
  return PAYMENT_STATUSES.filter((s) => day.counts[s] > 0)
    .map((s) => {
      const h = day.counts[s] * scale;
      y -= h;
      return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${width.toFixed(1)}" height="${h.toFixed(1)}" fill="${FILL[s]}"/>`;
    })
    .join("");
}

export function paymentsChart(days: DayCounts[], label: string): Html {
  const max = Math.max(1, ...days.map(total));
  const scale = (HEIGHT - AXIS - 12) / max;
  const step = WIDTH / days.length;
  const columns = days.map((d, i) => bars(d, i * step + 1, step - 2, scale)).join("");
  // The first and last dates are anchored at the chart's edges, so neither is cut off.
  const ticks = [
    [0, 0, "start"],
    [Math.floor(days.length / 2), (Math.floor(days.length / 2) + 0.5) * step, "middle"],
    [days.length - 1, WIDTH, "end"],
  ] as const;
  const tickText = ticks
    .map(([i, x, anchor]) => `<text x="${x.toFixed(1)}" y="${HEIGHT - 6}" text-anchor="${anchor}" font-size="11" fill="#57606a">${days[i]!.day.slice(5)}</text>`)
    .join("");
  const top = `<text x="2" y="10" font-size="11" fill="#57606a">${max}</text><line x1="0" x2="${WIDTH}" y1="${HEIGHT - AXIS}" y2="${HEIGHT - AXIS}" stroke="#8c959f"/>`;
  // Every interpolated value above is a number or a fixed string we chose; the label is escaped.
  return html`<div class="chart"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${label}">${trusted(top + columns + tickText)}</svg>
<ul class="legend">${PAYMENT_STATUSES.map((s) => html`<li><span class="swatch sw-${s}"></span>${s.replace("_", " ")}</li>`)}</ul></div>`;
}
