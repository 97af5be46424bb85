import type { Config } from "../config.js";
import type { Db } from "../db/pool.js";
import { deliverToEndpoint, insertEvent } from "../events/outbox.js";
import { EVENT_TYPES } from "../events/types.js";
import { badRequest, HttpError, notFound } from "../http/errors.js";
import { timestampParam } from "../http/inputs.js";
import { newId } from "../ids.js";
import { deliveryOut, getDelivery, insertRecovery, requeueDelivery, type DeliveryOut } from "./deliveries-store.js";
import {
  countEndpoints,
  endpointOut,
  insertEndpoint,
  lockEndpoint,
  lockMerchantEndpoints,
  parkPendingDeliveries,
  rotateEndpointSecret,
  updateEndpoint,
  type EndpointRow,
} from "./endpoints-store.js";
import {
  MAX_ENDPOINTS_PER_MERCHANT,
  type EndpointIn,
  type EndpointPatch,
  type EndpointSecretOut,
  type EndpointTestOut,
} from "./endpoint-schemas.js";
import { generateSecret, type SecretBox } from "./secrets.js";
import { validateWebhookUrl } from "./ssrf.js";

/**
 * What a merchant can do to its webhook endpoints and deliveries, for the API routes and the dashboard
 * alike. Checks of the input (`validate…`) run before any transaction; the writes take the caller's
 * transaction and lock rows in the order queue.ts describes (an endpoint before its deliveries).
 */

/** Where endpoints may point: the SSRF policy's switches from the configuration. */
export type UrlPolicy = Pick<Config["webhooks"], "allowHttp" | "allowedCidrs">;

/** Normalized (the URL as it will be requested), or 400 with the SSRF policy's code. */
function checkUrl(url: string, policy: UrlPolicy): string {
  const result = validateWebhookUrl(url, policy);
  if (!result.ok) throw badRequest(result.code, `url: ${result.message}.`, "url");
  return result.url.href;
}

function checkEvents(events: string[]): string[] {
  const unique = [...new Set(events)];
  if (unique.includes("*") && unique.length > 1) {
    throw badRequest("invalid_event_type", '"*" already means every event type; give it alone.', "enabled_events");
  }
  const unknown = unique.find((type) => type !== "*" && !(EVENT_TYPES as readonly string[]).includes(type));
  if (unknown !== undefined) {
    throw badRequest("invalid_event_type", `Unknown event type "${unknown}"; use one of ${EVENT_TYPES.join(", ")} or "*".`, "enabled_events");
  }
  return unique;
}

function checkDescription(description: string | null | undefined): void {
  // PostgreSQL text cannot store U+0000; refuse it here rather than fail with a 500.
  if (description?.includes("\u0000")) throw badRequest("invalid_request", "description must not contain NUL characters.", "description");
}

/** An endpoint to create, checked and normalized. */
export interface NewEndpoint {
  url: string;
  description: string | null;
  enabledEvents: string[];
  disabled: boolean;
}

export function validateEndpointIn(input: EndpointIn, policy: UrlPolicy): NewEndpoint {
  const url = checkUrl(input.url, policy);
  const enabledEvents = checkEvents(input.enabled_events);
  checkDescription(input.description);
  return { url, description: input.description ?? null, enabledEvents, disabled: input.disabled ?? false };
}

/** Creates an endpoint with a new secret, in `tx`; 400 `too_many_endpoints` past the per-merchant limit. */
export async function createEndpoint(tx: Db, merchantId: string, e: NewEndpoint, { box, now }: { box: SecretBox; now: Date }): Promise<EndpointRow> {
  await lockMerchantEndpoints(tx, merchantId);
  if ((await countEndpoints(tx, merchantId)) >= MAX_ENDPOINTS_PER_MERCHANT) {
    throw badRequest("too_many_endpoints", `A merchant can have at most ${MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints; delete one first.`);
  }
  return insertEndpoint(tx, { id: newId("we"), merchantId, ...e, secret: box.seal(generateSecret()), now });
}

/** A patch, checked and normalized; undefined fields stay as they are. */
export type CheckedPatch = Omit<EndpointPatch, "enabled_events"> & { enabledEvents?: string[] };

export function validateEndpointPatch(patch: EndpointPatch, policy: UrlPolicy): CheckedPatch {
  const url = patch.url === undefined ? undefined : checkUrl(patch.url, policy);
  const enabledEvents = patch.enabled_events === undefined ? undefined : checkEvents(patch.enabled_events);
  checkDescription(patch.description);
  return { url, description: patch.description, enabledEvents, disabled: patch.disabled };
}

/** Applies a checked patch in `tx`; turning the endpoint off parks what is queued for it (workers do not check `disabled`). */
export async function patchEndpoint(tx: Db, merchantId: string, id: string, patch: CheckedPatch, now: Date): Promise<EndpointRow> {
  const before = await lockEndpoint(tx, merchantId, id);
  if (!before) throw notFound("webhook endpoint");
  const disabled = patch.disabled ?? before.disabled;
  const row = await updateEndpoint(tx, before.id, {
    url: patch.url ?? before.url,
    description: patch.description === undefined ? before.description : patch.description,
    enabledEvents: patch.enabledEvents ?? before.enabled_events,
    disabled,
    now,
  });
  if (disabled && !before.disabled) await parkPendingDeliveries(tx, before.id);
  return row;
}

/** The secrets that sign the endpoint's deliveries now: the current one and, during a rotation's grace period, the previous one. */
export function endpointSecrets(row: EndpointRow, box: SecretBox, now: Date): EndpointSecretOut {
  const { previous_secret: previous, previous_secret_expires_at: expiresAt } = row;
  const grace = previous !== null && expiresAt !== null && expiresAt > now;
  return {
    secret: box.open(row.secret),
    previous_secret: grace ? box.open(previous) : null,
    previous_secret_expires_at: grace ? expiresAt.toISOString() : null,
  };
}

/** Gives the endpoint a new secret, in `tx`; the previous one keeps signing for `graceHours`. */
export async function rotateSecret(
  tx: Db,
  merchantId: string,
  id: string,
  { graceHours, box, now }: { graceHours: number; box: SecretBox; now: Date },
): Promise<EndpointRow> {
  const row = await lockEndpoint(tx, merchantId, id);
  if (!row) throw notFound("webhook endpoint");
  return rotateEndpointSecret(tx, row.id, box.seal(generateSecret()), new Date(now.getTime() + graceHours * 3_600_000), now);
}

/**
 * Records a `webhook.test` event (its object is the endpoint) and queues it for this endpoint only,
 * in `tx`; the caller wakes the workers once `tx` has committed.
 */
export async function sendTestEvent(tx: Db, merchantId: string, id: string, now: Date): Promise<EndpointTestOut> {
  const endpoint = await lockEndpoint(tx, merchantId, id);
  if (!endpoint) throw notFound("webhook endpoint");
  if (endpoint.disabled) throw new HttpError(409, "endpoint_disabled", "This endpoint is disabled; enable it first.");
  const event = await insertEvent(tx, { merchantId, type: "webhook.test", object: endpointOut(endpoint), now });
  const deliveryId = await deliverToEndpoint(tx, { id: event.id, merchantId, createdAt: now }, endpoint.id);
  return { object: "webhook_test", event_id: event.id, delivery_id: deliveryId };
}

const endpointDisabled = () => new HttpError(409, "endpoint_disabled", "This endpoint is disabled; enable it (PATCH disabled: false) first.");

/**
 * Queues a delivery for an immediate attempt whatever its status, in `tx`; the caller wakes the
 * workers once `tx` has committed. A delivery that had used up its retries gets one more attempt.
 * 409 when its endpoint is deleted or disabled.
 */
export async function retryDelivery(tx: Db, merchantId: string, id: string, now: Date): Promise<DeliveryOut> {
  // Read unlocked, for its endpoint: that row is locked before the delivery's (the lock order in queue.ts).
  const delivery = await getDelivery(tx, merchantId, id);
  if (!delivery) throw notFound("delivery");
  const endpoint = await lockEndpoint(tx, merchantId, delivery.endpoint_id);
  if (!endpoint) throw new HttpError(409, "endpoint_deleted", "The endpoint of this delivery was deleted.");
  if (endpoint.disabled) throw endpointDisabled();
  await requeueDelivery(tx, delivery.id, now);
  return deliveryOut((await getDelivery(tx, merchantId, delivery.id))!);
}

/** A recovery's window [since, until), checked; `until` defaults to now. */
export function recoveryWindow(input: { since: string; until?: string }, now: Date): { since: Date; until: Date } {
  const since = timestampParam(input.since, "since");
  const until = input.until === undefined ? now : timestampParam(input.until, "until");
  if (!(since < until)) throw badRequest("invalid_time_range", "since must be before until (which defaults to now).", "since");
  return { since, until };
}

/** Queues a recovery of the endpoint's failed and parked deliveries in the window, in `tx`; the maintenance loop carries it out. */
export async function startRecovery(tx: Db, merchantId: string, endpointId: string, window: { since: Date; until: Date }, now: Date) {
  const endpoint = await lockEndpoint(tx, merchantId, endpointId);
  if (!endpoint) throw notFound("webhook endpoint");
  // Re-queued deliveries would only be parked again.
  if (endpoint.disabled) throw endpointDisabled();
  return insertRecovery(tx, { id: newId("rcv"), endpointId: endpoint.id, ...window, now });
}
