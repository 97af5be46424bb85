import client from "prom-client";
import type { Pool } from "../db/pool.js";

/** Every metric the process exports, on a registry of its own (no prom-client global state). */
export interface Metrics {
  registry: client.Registry;
  httpRequestDuration: client.Histogram<"method" | "route" | "status_class">;
  paymentsCreated: client.Counter<"asset">;
  paymentCreateBatchSize: client.Histogram;
  paymentsConfirmed: client.Counter<"asset">;
  paymentConfirmationLatency: client.Histogram;
  paymentsUnmatched: client.Counter<"reason">;
}

/** A snapshot of the PostgreSQL pool, shared by the scrape-time gauges and the pool monitor's log lines. */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
  /** Busy connections as a percentage of `max`. */
  utilizationPercent: number;
}

export function poolStats(pool: Pool): PoolStats {
  const max = pool.options.max ?? 10;
  return {
    total: pool.totalCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
    max,
    utilizationPercent: ((pool.totalCount - pool.idleCount) / max) * 100,
  };
}

export function createMetrics(pool: Pool): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });

  // Pool gauges are computed at scrape time so they can never be stale.
  const poolGauge = (name: string, help: string, read: (s: PoolStats) => number) =>
    new client.Gauge({ name, help, registers: [registry], collect() { this.set(read(poolStats(pool))); } });
  poolGauge("pg_pool_total_connections", "Connections open in the PostgreSQL pool.", (s) => s.total);
  poolGauge("pg_pool_idle_connections", "Idle connections in the PostgreSQL pool.", (s) => s.idle);
  poolGauge("pg_pool_waiting_requests", "Queries waiting for a pool connection.", (s) => s.waiting);
  poolGauge("pg_pool_utilization_percent", "Busy connections as a percentage of the pool maximum.", (s) => s.utilizationPercent);

  return {
    registry,
    httpRequestDuration: new client.Histogram({
      name: "http_request_duration_seconds",
      help: "HTTP request duration by route and status class.",
      labelNames: ["method", "route", "status_class"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    paymentsCreated: new client.Counter({
      name: "payments_created_total",
      help: "Payments created, by asset (XLM or CODE:ISSUER).",
      labelNames: ["asset"],
      registers: [registry],
    }),
    paymentCreateBatchSize: new client.Histogram({
      name: "payment_create_batch_size",
      help: "Payments created by API requests without an Idempotency-Key that were written in one statement.",
      buckets: [1, 2, 4, 8, 16, 32, 64, 100],
      registers: [registry],
    }),
    paymentsConfirmed: new client.Counter({
      name: "payments_confirmed_total",
      help: "Payments confirmed by on-chain operations, by asset (XLM or CODE:ISSUER).",
      labelNames: ["asset"],
      registers: [registry],
    }),
    paymentConfirmationLatency: new client.Histogram({
      name: "payment_confirmation_latency_seconds",
      help: "Time from a payment's creation to its confirmation.",
      buckets: [5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 24 * 3600, 7 * 24 * 3600],
      registers: [registry],
    }),
    paymentsUnmatched: new client.Counter({
      name: "payments_unmatched_total",
      help: "Incoming operations that settled no payment, by reason (no_memo, unknown_memo, wrong_asset, before_payment, after_monitoring_window).",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}
