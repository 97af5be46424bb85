import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

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

const WARN = 40;

/** What went wrong in one line: the message, the code, and the cause's (fetch puts the socket error there). */
export function reasonOf(error: Error): string {
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error ? `: ${reasonOf(error.cause)}` : "";
  return `${error.message || error.name}${typeof code === "string" && !error.message.includes(code) ? ` (${code})` : ""}${cause}`;
}

/** `format`: `json` always, `pretty` always, or `auto`: pretty when writing to stdout and it is a terminal. */
export function createLogger(level: string, destination?: pino.DestinationStream, format: "json" | "pretty" | "auto" = "json"): Logger {
  const readable = format === "pretty" || (format === "auto" && destination === undefined && process.stdout.isTTY === true);
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      hooks: {
        // A warning is an expected condition (a peer unreachable, a connection lost, an address
        // refused): one line with its reason; the error with its stack only at debug.
        logMethod(args, method, callLevel) {
          const [fields, ...rest] = args as [unknown, ...unknown[]];
          if (callLevel !== WARN || typeof fields !== "object" || fields === null || !((fields as { err?: unknown }).err instanceof Error)) {
            return method.apply(this, args);
          }
          const { err, ...context } = fields as { err: Error };
          method.apply(this, [{ ...context, reason: reasonOf(err) }, ...rest] as Parameters<typeof method>);
          if (this.isLevelEnabled("debug")) this.debug({ ...context, err }, ...(rest as [string]));
        },
      },
    },
    readable ? pretty({ sync: true, singleLine: true, colorize: process.stdout.isTTY === true, destination: destination ?? 1 }) : destination,
  );
}
