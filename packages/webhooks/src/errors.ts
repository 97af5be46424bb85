/**
 * Every reason `Webhook.verify` rejects a request. Catch this one class and answer 400; the
 * subclasses exist for logging and tests. Misuse of the API (no secrets, an empty secret) throws
 * `TypeError` instead, so a configuration bug is never mistaken for a forged request.
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
        "or a content-type parser with parseAs: \"buffer\" in Fastify.",
    );
  }
}
