import pino, { type DestinationStream, type Logger } from "pino";

/**
 * JSON lines on stdout. Nothing here logs request headers or configuration, so secrets and
 * signatures never reach a log; the redaction is a second line of defence for what a merchant adds.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "lumenpay-receiver" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ["*.secret", "*.secrets", "*.signature", "*.headers", "*.authorization"], censor: "[redacted]" },
    },
    destination,
  );
}
