import type { LoadRequest, LoadResult } from "./load.js";
import { load } from "./load.js";

/**
 * Runs `load` in a process of its own (`loadInProcess`): the load generator's CPU and memory are not the
 * server's, so the benchmark process's peak RSS is the server's.
 */
process.once("message", (message: { origin: string; req: Omit<LoadRequest, "body">; bodyText?: string; options: Parameters<typeof load>[2] }) => {
  const { origin, req, bodyText, options } = message;
  void load(origin, { ...req, body: bodyText === undefined ? undefined : () => bodyText }, options).then((result: LoadResult) =>
    process.send!(result, () => process.exit(0)),
  );
});
