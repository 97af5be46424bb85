import { randomBytes } from "node:crypto";
import type { FastifyReply } from "fastify";

/**
 * Server-rendered HTML for the checkout and the dashboard: a tagged template that escapes every
 * interpolated value unless it is already `Html`, so merchant- and customer-supplied text can never
 * become markup. No template engine, no build step.
 */

/** Markup that is safe to insert as it is. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** Interpolated values: Html as it is, arrays joined, null/undefined/false as nothing, anything else escaped. */
function render(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === null || value === undefined || value === false) return "";
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((value, i) => (out += render(value) + strings[i + 1]!));
  return new Html(out);
}

/** Trusted markup built elsewhere (an SVG we generated); never for input. */
export const trusted = (markup: string) => new Html(markup);

/** A random value for this response's Content-Security-Policy: only elements carrying it run or style. */
export const newNonce = () => randomBytes(16).toString("base64");

/**
 * Sends a page with a strict policy: scripts and styles only with this response's nonce, nothing from
 * another origin, no framing, forms posting back here only.
 */
export function sendPage(reply: FastifyReply, page: Html, { nonce, status = 200 }: { nonce: string; status?: number }): FastifyReply {
  return reply
    .status(status)
    .header(
      "content-security-policy",
      [
        "default-src 'none'",
        `script-src 'nonce-${nonce}'`,
        `style-src 'nonce-${nonce}'`,
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join("; "),
    )
    .header("x-frame-options", "DENY")
    .header("x-content-type-options", "nosniff")
    .header("referrer-policy", "no-referrer")
    .header("cache-control", "no-store")
    .type("text/html; charset=utf-8")
    .send(page.value);
}

/** A Stellar key or address shortened for display: its first and last four characters. */
export const abbreviateKey = (key: string) => `${key.slice(0, 4)}…${key.slice(-4)}`;

