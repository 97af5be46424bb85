import type { Logger } from "pino";

/**
 * SIGTERM or SIGINT runs `server.close()` once the server has started and exits 0, or 1 when shutdown
 * (or the start) failed; a second signal during shutdown exits 1 at once. Install it before the
 * server starts, so a signal sent as soon as it announces itself is handled. `shuttingDown` tells
 * the log what closing involves.
 */
export function exitOnSignals(server: Promise<{ close(): Promise<void> }>, logger: Logger, shuttingDown: string): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} received again; exiting without finishing shutdown`);
      process.exit(1);
    }
    stopping = true;
    logger.info(`${signal} received; ${shuttingDown}`);
    server.then((started) => started.close()).then(
      () => {
        logger.info("shutdown complete");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
