/**
 * Every reason `Webhook.verify` rejects a request. Catch this one class and refuse the request
 * (the router answers 401, or 400 for an `InvalidPayloadError`); the subclasses exist for logging
 * and tests. Misuse of the API (no secrets, an empty secret) throws `TypeError` instead, so a
 * configuration bug is never mistaken for a forged request.
 */
export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
}

export class MissingHeaderError extends WebhookVerificationError {
  override name = "MissingHeaderError";
  constructor(
    readonly header: string,
    message = `Missing required header ${header}`,
  ) {
    super(message);
  }
}

export class MalformedHeaderError extends WebhookVerificationError {
  override name = "MalformedHeaderError";
  constructor(
    readonly header: string,
    detail: string,
  ) {
    super(`Malformed header ${header}: ${detail}`);
  }
}

export class TimestampTooOldError extends WebhookVerificationError {
  override name = "TimestampTooOldError";
  constructor(
    readonly timestamp: number,
    toleranceSeconds: number,
  ) {
    super(`Webhook timestamp ${timestamp} is more than ${toleranceSeconds}s in the past`);
  }
}

export class TimestampTooNewError extends WebhookVerificationError {
  override name = "TimestampTooNewError";
  constructor(
    readonly timestamp: number,
    toleranceSeconds: number,
  ) {
    super(`Webhook timestamp ${timestamp} is more than ${toleranceSeconds}s in the future`);
  }
}

export class NoMatchingSignatureError extends WebhookVerificationError {
  override name = "NoMatchingSignatureError";
  constructor() {
    super(
      "No signature matches the payload. Check the endpoint secret, and pass the raw body exactly as received " +
        "(a proxy or body parser that re-serializes JSON changes the bytes).",
    );
  }
}

export class PayloadNotRawError extends WebhookVerificationError {
  override name = "PayloadNotRawError";
  constructor(received: string) {
    super(
      `Webhook.verify needs the raw request body as a string or Uint8Array, but got ${received}. ` +
        "Signatures cover the exact bytes sent, so a parsed and re-serialized body cannot be verified. " +
        "Read the raw body instead: express.raw({ type: \"application/json\" }) on this route in Express, " +
        "`await request.text()` with Fetch (Workers, Deno, Bun, Hono, Next.js), " +
        "or a content-type parser with parseAs: \"buffer\" in Fastify. " +
        "The SDK's adapters (nodeHandler, expressHandler, fastifyPlugin, fetchHandler) read the raw body for you.",
    );
  }
}

/**
 * The signature is valid but the body is not a Lumenpay event (not JSON, or no `id` and `type`).
 * Lumenpay signed it, so this is a bug to report rather than a forgery: the router answers 400.
 */
export class InvalidPayloadError extends WebhookVerificationError {
  override name = "InvalidPayloadError";
}

/**
 * Throw this from an event handler when trying again cannot help (the order it names does not
 * exist, say): the router stops its in-request retries at once. The delivery still fails with a
 * 5xx, so Lumenpay retries later and the event is not silently acknowledged.
 */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}

/** A handler ran past its `timeoutMs`; its `signal` was aborted. */
export class HandlerTimeoutError extends Error {
  override name = "HandlerTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`Webhook handler did not finish within ${timeoutMs} ms`);
  }
}
