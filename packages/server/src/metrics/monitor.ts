import type { BaseLogger } from "pino";
import type { Pool } from "../db/pool.js";
import { poolStats } from "./registry.js";

export interface PoolMonitorOptions {
  pool: Pool;
  intervalMs: number;
  log: Pick<BaseLogger, "info" | "warn">;
  /** Aborting it stops the monitor. */
  signal: AbortSignal;
}

/** Logs the pool's statistics every `intervalMs` (POOL_MONITORING_*), at warn level while queries wait for a connection. */
export function startPoolMonitor({ pool, intervalMs, log, signal }: PoolMonitorOptions): void {
  if (signal.aborted) return;
  const timer = setInterval(() => {
    const stats = poolStats(pool);
    if (stats.waiting > 0) log.warn({ pool: stats }, "database pool exhausted: queries are waiting for a connection");
    else log.info({ pool: stats }, "database pool statistics");
  }, intervalMs);
  // Monitoring alone must never keep the process alive.
  timer.unref();
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
