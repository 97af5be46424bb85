import { abbreviateKey, html, type Html } from "../web/html.js";
import type { AssetOut } from "../stellar/assets.js";

/** How the dashboard shows values: dates in UTC, assets by code, statuses as words, tables that scroll on a phone. */

/** A date as `2026-05-01 10:00:05 UTC` in a <time>; an em dash for none. */
export function when(value: string | Date | null | undefined): Html {
  if (value === null || value === undefined) return html`—`;
  const iso = typeof value === "string" ? value : value.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace("T", " ")} UTC</time>`;
}

/** `XLM`, or the code with its issuer abbreviated (the whole issuer in the title). */
export function assetName(asset: AssetOut): Html {
  return asset === "XLM" ? html`XLM` : html`${asset.code} <abbr title="${asset.issuer}" class="muted">${abbreviateKey(asset.issuer)}</abbr>`;
}

/** A status as a badge: words, not colour alone. */
export const badge = (status: string, tone = status) => html`<span class="badge ${tone}">${status.replaceAll("_", " ")}</span>`;

/** A table in a region that scrolls sideways on narrow screens, keyboard-reachable, named by its caption. */
export function table(o: { id: string; caption: string; head: Array<string | { label: string; num?: boolean }>; rows: Html[]; empty: string }): Html {
  if (o.rows.length === 0) return html`<p class="muted">${o.empty}</p>`;
  const th = o.head.map((h) => (typeof h === "string" ? html`<th scope="col">${h}</th>` : html`<th scope="col" class="num">${h.label}</th>`));
  return html`<div class="scroll" role="region" aria-labelledby="${o.id}" tabindex="0"><table><caption id="${o.id}">${o.caption}</caption><thead><tr>${th}</tr></thead><tbody>${o.rows}</tbody></table></div>`;
}

/** A copyable value: a read-only field with a copy button that appears when scripts run. */
export function copyable(id: string, label: string, value: string): Html {
  return html`<div class="field"><label for="${id}">${label}</label><input id="${id}" readonly value="${value}" class="mono"><button type="button" class="secondary" data-copy="${id}" hidden>Copy</button></div>`;
}

/** A percentage with one decimal, or an em dash when there is nothing to divide. */
export const percent = (part: number, whole: number) => (whole === 0 ? "—" : `${((part / whole) * 100).toFixed(1)} %`);
