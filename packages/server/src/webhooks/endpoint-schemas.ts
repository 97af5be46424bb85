import { idParams } from "../http/inputs.js";
import { EVENT_TYPES } from "../events/types.js";
import type { EndpointOut } from "./endpoints-store.js";

/** Request and response types and schemas of `/v1/webhook_endpoints` (the routes are in endpoint-routes.ts). */

/** Enough for one endpoint per environment or service; more usually means endpoints are leaking. */
export const MAX_ENDPOINTS_PER_MERCHANT = 16;
export const MAX_GRACE_PERIOD_HOURS = 720;

export interface EndpointIn {
  url: string;
  description?: string;
  enabled_events: string[];
  disabled?: boolean;
}

export interface EndpointPatch {
  url?: string;
  description?: string | null;
  enabled_events?: string[];
  disabled?: boolean;
}

export type EndpointWithSecretOut = EndpointOut & { secret: string };

export interface EndpointSecretOut {
  secret: string;
  /** Still signs deliveries (next to `secret`) until `previous_secret_expires_at`; null when no rotation grace period runs. */
  previous_secret: string | null;
  previous_secret_expires_at: string | null;
}

export interface EndpointTestOut {
  object: "webhook_test";
  event_id: string;
  delivery_id: string;
}

const urlSchema = {
  type: "string",
  maxLength: 2048,
  description: "https URL that receives the events; no credentials, no private or loopback address.",
  example: "https://example.com/webhooks/lumenpay",
} as const;
const enabledEventsSchema = {
  type: "array",
  minItems: 1,
  maxItems: EVENT_TYPES.length,
  items: { type: "string", maxLength: 100 },
  description: `Event types to send: any of ${EVENT_TYPES.join(", ")}; or ["*"] for all, including types added later.`,
} as const;

export const endpointInSchema = {
  type: "object",
  additionalProperties: false,
  required: ["url", "enabled_events"],
  properties: {
    url: urlSchema,
    description: { type: "string", maxLength: 1000 },
    enabled_events: enabledEventsSchema,
    disabled: { type: "boolean", default: false, description: "Create it switched off: events are stored for it but not sent." },
  },
} as const;

export const endpointPatchSchema = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    url: urlSchema,
    description: { type: ["string", "null"], maxLength: 1000 },
    enabled_events: enabledEventsSchema,
    disabled: {
      type: "boolean",
      description: "true parks queued deliveries; false re-enables (recover what was missed with POST …/recover).",
    },
  },
} as const;

const endpointOutProperties = {
  id: { type: "string", example: "we_2mVq8Xr4Tk1Lp9Bz6Ns0Yd" },
  object: { type: "string", enum: ["webhook_endpoint"] },
  url: { type: "string" },
  description: { type: ["string", "null"] },
  enabled_events: { type: "array", items: { type: "string" } },
  disabled: { type: "boolean" },
  disabled_reason: { type: ["string", "null"], description: "Why it was disabled, by you or automatically." },
  previous_secret_expires_at: {
    type: ["string", "null"],
    format: "date-time",
    description: "Until then deliveries are also signed with the previous secret.",
  },
  created_at: { type: "string", format: "date-time" },
  updated_at: { type: "string", format: "date-time" },
} as const;
const endpointOutRequired = Object.keys(endpointOutProperties);

export const endpointOutSchema = { type: "object", required: endpointOutRequired, properties: endpointOutProperties } as const;

const secretProperty = { type: "string", description: "whsec_…: verifies the HMAC signatures of deliveries. Keep it secret." } as const;

export const endpointWithSecretSchema = {
  type: "object",
  required: [...endpointOutRequired, "secret"],
  properties: { ...endpointOutProperties, secret: secretProperty },
} as const;

export const endpointSecretSchema = {
  type: "object",
  required: ["secret", "previous_secret", "previous_secret_expires_at"],
  properties: {
    secret: secretProperty,
    previous_secret: { type: ["string", "null"], description: "Signs too while the rotation grace period runs." },
    previous_secret_expires_at: { type: ["string", "null"], format: "date-time" },
  },
} as const;

export const deletedSchema = {
  type: "object",
  required: ["id", "object", "deleted"],
  properties: { id: { type: "string" }, object: { type: "string", enum: ["webhook_endpoint"] }, deleted: { type: "boolean", enum: [true] } },
} as const;

export const rotateSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    grace_period_hours: {
      type: "integer",
      minimum: 0,
      maximum: MAX_GRACE_PERIOD_HOURS,
      description: "How long the old secret keeps signing too (default: WEBHOOK_SECRET_ROTATION_GRACE_HOURS); 0 retires it now.",
    },
  },
} as const;

export const testOutSchema = {
  type: "object",
  required: ["object", "event_id", "delivery_id"],
  properties: {
    object: { type: "string", enum: ["webhook_test"] },
    event_id: { type: "string", description: "The `webhook.test` event (see GET /v1/events/{id})." },
    delivery_id: { type: "string", description: "Its delivery (see GET /v1/deliveries/{id})." },
  },
} as const;

export const endpointParamsSchema = idParams("we");
