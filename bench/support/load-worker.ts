import { parentPort, workerData } from "node:worker_threads";
import { load } from "./load.js";

/** Runs `load` off the main thread, so the load generator does not compete with the server measured. */
const { origin, req, bodyText, options } = workerData as {
  origin: string;
  req: { method: "GET" | "POST"; path: string; headers?: Record<string, string>; expectStatus: number };
  bodyText?: string;
  options: { connections?: number; durationMs?: number; warmupMs?: number };
};
const result = await load(origin, { ...req, body: bodyText === undefined ? undefined : () => bodyText }, options);
parentPort!.postMessage(result);
