/** Every event type Lumenpay emits; endpoints subscribe to a subset or to "*". */
export const EVENT_TYPES = [
  "payment.created",
  "payment.partially_paid",
  "payment.confirmed",
  "payment.expired",
  "payment.canceled",
  "payment.late_payment_received",
  "payment.unmatched_received",
  "endpoint.disabled",
  "webhook.test",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Version of the event envelope and of the objects inside it. */
export const API_VERSION = "2026-11-01";

export interface EventEnvelope<T = unknown> {
  id: string;
  type: EventType;
  created_at: string;
  api_version: string;
  /** Per-payment counter: a receiver keeps the highest it has seen and drops older updates. */
  sequence?: number;
  data: { object: T };
}

/**
 * The known types a pattern names: a type, or with `group.*` every type of that group (`payment.*`);
 * none when it names no known type. Resolved against this version's list on each use.
 */
export function typesMatching(pattern: string): EventType[] {
  if (!pattern.endsWith(".*")) return EVENT_TYPES.filter((type) => type === pattern);
  const group = pattern.slice(0, -1);
  return EVENT_TYPES.filter((type) => type.startsWith(group));
}
