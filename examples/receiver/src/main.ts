import { ConfigError, parseConfig, type Config } from "./config.js";
import { createLogger } from "./logger.js";
import { startReceiver } from "./server.js";

// The only place that reads process.env, listens for signals and exits.
async function configOrExit(): Promise<Config> {
  try {
    return parseConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Written before exiting: on some platforms a pipe is written asynchronously.
    await new Promise((resolve) => process.stderr.write(`${error.message}\n`, resolve));
    process.exit(2);
  }
}

const config = await configOrExit();
const log = createLogger(config.logLevel);
const receiver = await startReceiver(config, { log }).catch((error: unknown) => {
  log.fatal({ kind: "receiver.failed", err: error }, "the receiver could not start");
  process.exit(1);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log.info({ kind: "receiver.stopping", signal }, `${signal} received; finishing requests in flight`);
    receiver.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ kind: "receiver.failed", err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
