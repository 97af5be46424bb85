import client from "prom-client";
import type { Pool } from "../db/pool.js";

export interface WebhookMetrics {
  deliveries: client.Counter<"outcome">;
  deliveryDuration: client.Histogram;
  eventToDelivery: client.Histogram;
  endpointsDisabled: client.Counter;
  /** Attempts that failed before any request could be sent, by reason. */
  deliveryErrors: client.Counter<"reason">;
}

/** Webhook metrics on the process registry; queue gauges are read from the database at scrape time. */
export function createWebhookMetrics(registry: client.Registry, pool: Pool): WebhookMetrics {
  new client.Gauge({
    name: "webhook_queue_depth",
    help: "Deliveries waiting to be sent (due now or scheduled for a retry).",
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ n: string }>("select count(*) as n from webhook_deliveries where status = 'pending'");
      this.set(Number(rows[0]?.n ?? 0));
    },
  });
  new client.Gauge({
    name: "webhook_queue_oldest_age_seconds",
    help: "Age of the oldest delivery that is due and not yet delivered.",
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ age: number | null }>(
        `select extract(epoch from now() - min(event_created_at))::float8 as age
         from webhook_deliveries where status = 'pending' and next_attempt_at <= now()`,
      );
      this.set(Math.max(0, rows[0]?.age ?? 0));
    },
  });
  return {
    deliveries: new client.Counter({
      name: "webhook_deliveries_total",
      help: "Delivery attempts by outcome (succeeded, retry_scheduled, failed, lease_lost).",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    deliveryDuration: new client.Histogram({
      name: "webhook_delivery_duration_seconds",
      help: "Duration of one delivery attempt (request sent to response read).",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
      registers: [registry],
    }),
    eventToDelivery: new client.Histogram({
      name: "webhook_event_to_delivery_seconds",
      help: "From event commit to a 2xx from the endpoint.",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400],
      registers: [registry],
    }),
    endpointsDisabled: new client.Counter({
      name: "webhook_endpoints_disabled_total",
      help: "Endpoints disabled automatically (410 Gone or continuous failure).",
      registers: [registry],
    }),
    deliveryErrors: new client.Counter({
      name: "webhook_delivery_errors_total",
      help: "Delivery attempts that failed before any request was sent, by reason (preparation_failed: e.g. a secret that cannot be decrypted).",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}
