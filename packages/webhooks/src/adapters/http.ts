import type { RouterResponse } from "../router.js";

/** What every adapter does before and around `router.handle`, whatever the framework. */

export interface AdapterOptions {
  /** Largest body accepted, in bytes; a larger one gets 413 before it is read. Default 1 MiB. */
  bodyLimit?: number;
}

/** Lumenpay's events are a few kilobytes; a megabyte leaves room without inviting abuse. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export function bodyLimitOf(options: AdapterOptions | undefined): number {
  const limit = options?.bodyLimit ?? DEFAULT_BODY_LIMIT;
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new TypeError("bodyLimit must be a positive whole number of bytes");
  return limit;
}

// application/json or a +json type, with any parameters (charset).
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;

export const tooLarge = (limit: number): RouterResponse => ({
  status: 413,
  body: { error: "payload_too_large", message: `The body exceeds ${limit} bytes.` },
});

export const methodNotAllowed: RouterResponse = {
  status: 405,
  body: { error: "method_not_allowed", message: "Webhooks are delivered with POST." },
  headers: { allow: "POST" },
};

/** The answer due from the headers alone, so a body that will be refused is never read. */
export function rejectBeforeReading(
  contentType: string | null | undefined,
  contentLength: string | null | undefined,
  limit: number,
): RouterResponse | undefined {
  if (!contentType || !JSON_TYPE.test(contentType)) {
    return {
      status: 415,
      body: { error: "unsupported_media_type", message: "Lumenpay webhooks are sent as application/json." },
    };
  }
  if (contentLength && Number(contentLength) > limit) return tooLarge(limit);
  return undefined;
}

/** Answer to a framework that parsed the body before the adapter could read it raw. */
export function alreadyParsed(hint: string): RouterResponse {
  return {
    status: 500,
    body: {
      error: "body_already_parsed",
      message:
        "The webhook route received an already-parsed body, so its signature cannot be checked. " +
        `${hint} Signatures cover the exact bytes sent.`,
    },
  };
}

export function serialize(response: RouterResponse): { status: number; headers: Record<string, string>; text: string } {
  return {
    status: response.status,
    headers: { "content-type": "application/json; charset=utf-8", ...response.headers },
    text: JSON.stringify(response.body),
  };
}

/** Collects chunks up to `limit` bytes; `add` returns false once the body is too large. */
export class BodyCollector {
  readonly #chunks: Uint8Array[] = [];
  #size = 0;

  constructor(readonly limit: number) {}

  add(chunk: Uint8Array): boolean {
    this.#size += chunk.byteLength;
    if (this.#size > this.limit) return false;
    this.#chunks.push(chunk);
    return true;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }
}
