import pino, { type Logger } from "pino";

/** Paths that can carry credentials; pino replaces their values before anything is written. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["idempotency-key"]',
  "*.api_key",
  "*.apiKey",
  "*.secret",
  "*.password",
  "*.signing_seed",
  "*.webhookSigningSeed",
  "*.databaseUrl",
  "*.encryptionKey",
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, destination);
}
