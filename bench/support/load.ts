import { fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadRequest {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: () => string;
  /** Each request with an `Idempotency-Key` of its own, as @lumenpay/client sends every POST. */
  idempotencyKeys?: boolean;
  expectStatus: number;
}

/** The `p`th percentile of ascending `sorted` (nearest rank). */
export const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;

/** Closed-loop load: `connections` clients each send the next request as soon as one completes. */
export async function load(origin: string, req: LoadRequest, { connections = 32, durationMs = 5000, warmupMs = 1000 } = {}): Promise<LoadResult> {
  const pool = new Pool(origin, { connections, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const run = async (until: number, record: boolean) => {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < until) {
          const start = performance.now();
          try {
            const headers = req.idempotencyKeys ? { ...req.headers, "idempotency-key": randomUUID() } : req.headers;
            const res = await pool.request({ method: req.method, path: req.path, headers, body: req.body?.() });
            await res.body.dump();
            if (res.statusCode !== req.expectStatus) errors++;
          } catch {
            errors++;
          }
          if (record) latencies.push(performance.now() - start);
        }
      }),
    );
  };
  await run(performance.now() + warmupMs, false);
  errors = 0;
  const started = performance.now();
  await run(started + durationMs, true);
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

export function formatResult(label: string, r: LoadResult): string {
  return `${label.padEnd(44)} ${r.perSecond.toFixed(0).padStart(7)} req/s   p50 ${r.p50Ms.toFixed(2).padStart(7)} ms   p99 ${r.p99Ms.toFixed(2).padStart(7)} ms   errors ${r.errors}`;
}

/** `load` in a child process with a fixed body: the server in this process keeps its CPU and memory to itself. */
export function loadInProcess(origin: string, req: LoadRequest, options: { connections?: number; durationMs?: number; warmupMs?: number } = {}): Promise<LoadResult> {
  const { body, ...rest } = req;
  const child = fork(fileURLToPath(new URL("./load-process.ts", import.meta.url)), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  child.send({ origin, req: rest, bodyText: body?.(), options });
  return new Promise((resolve, reject) => {
    child.once("message", (result: LoadResult) => resolve(result));
    child.once("error", reject);
    child.once("exit", (code) => code !== 0 && reject(new Error(`the load generator exited with ${code}`)));
  });
}
