import type { paths } from "./schema.js";

/**
 * The client's request and response types, read from the generated `paths` by route, method and
 * status: a route or field the server changes changes them too (after `scripts/generate.ts`).
 */

type Method = "get" | "post" | "patch" | "delete";
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;

/** The JSON body of the `S` response of `M P`. */
type Response<P extends keyof paths, M extends Method, S extends number> = Operation<P, M> extends { responses: infer R }
  ? S extends keyof R
    ? JsonOf<R[S]>
    : never
  : never;
/** The JSON request body of `M P`. */
type Body<P extends keyof paths, M extends Method> = Operation<P, M> extends { requestBody: { content: { "application/json": infer B } } } ? B : never;
/** The query parameters of `GET P`. */
type Query<P extends keyof paths> = NonNullable<Operation<P, "get">["parameters"]["query"]>;

/** A path of the API: `{id}` is the only parameter any route has. */
export type ApiPath = keyof paths;

/** One page of a list; pass `next_cursor` as `cursor` for the next one (the list iterators do). */
export interface Page<T> {
  object: "list";
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/** What every list accepts: the page size, and where to start (`cursor` from a page, or an item id). */
export interface PageParams {
  limit?: number;
  cursor?: string;
  starting_after?: string;
}

export type Payment = Response<"/v1/payments/{id}", "get", 200>;
export type PaymentCreateParams = Body<"/v1/payments", "post">;
export type PaymentListParams = Query<"/v1/payments">;

export type WebhookEndpoint = Response<"/v1/webhook_endpoints/{id}", "get", 200>;
/** The endpoint as created: with its signing `secret` (whsec_…). */
export type WebhookEndpointWithSecret = Response<"/v1/webhook_endpoints", "post", 201>;
export type WebhookEndpointCreateParams = Body<"/v1/webhook_endpoints", "post">;
export type WebhookEndpointUpdateParams = Body<"/v1/webhook_endpoints/{id}", "patch">;
export type WebhookEndpointListParams = Query<"/v1/webhook_endpoints">;
export type DeletedWebhookEndpoint = Response<"/v1/webhook_endpoints/{id}", "delete", 200>;

export type Delivery = Response<"/v1/deliveries/{id}/retry", "post", 202>;
/** A delivery with the log of its attempts, oldest first. */
export type DeliveryWithAttempts = Response<"/v1/deliveries/{id}", "get", 200>;
export type DeliveryListParams = Query<"/v1/webhook_endpoints/{id}/deliveries">;

export type Event = Response<"/v1/events/{id}", "get", 200>;
export type EventListParams = Query<"/v1/events">;

/** The body of every error response: `{ error: { code, message, param? } }`. */
export type ErrorBody = Response<"/v1/payments/{id}", "get", 404>;
