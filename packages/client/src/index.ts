import { HttpClient, type LumenpayOptions, type RequestOptions } from "./http.js";
import { PagedList } from "./pagination.js";
import type {
  ApiPath,
  DeletedWebhookEndpoint,
  Delivery,
  DeliveryListParams,
  DeliveryWithAttempts,
  Event,
  EventListParams,
  Page,
  Payment,
  PaymentCreateParams,
  PaymentListParams,
  WebhookEndpoint,
  WebhookEndpointCreateParams,
  WebhookEndpointListParams,
  WebhookEndpointUpdateParams,
  WebhookEndpointWithSecret,
} from "./types.js";

export { LumenpayError, type ClientErrorCode } from "./errors.js";
export type { LumenpayOptions, RequestOptions } from "./http.js";
export type { PagedList } from "./pagination.js";
export type * from "./types.js";
export type { components, paths } from "./schema.js";

/** `template` with its `{id}` filled in; typed by the generated paths, so a route the server drops stops compiling. */
const path = (template: ApiPath, id?: string): string => (id === undefined ? template : template.replace("{id}", encodeURIComponent(id)));

/** `/v1/payments`: payment requests your customers pay on the Stellar network. */
class Payments {
  constructor(private readonly http: HttpClient) {}

  create(params: PaymentCreateParams, options: RequestOptions = {}): Promise<Payment> {
    return this.http.request({ method: "POST", path: path("/v1/payments"), body: params, idempotencyKey: options.idempotencyKey });
  }

  retrieve(id: string): Promise<Payment> {
    return this.http.request({ method: "GET", path: path("/v1/payments/{id}", id) });
  }

  /** Newest first, across all pages (repeat no filter: the cursor carries on with these). */
  list(params: PaymentListParams = {}): PagedList<Payment, PaymentListParams> {
    return new PagedList((query) => this.http.request<Page<Payment>>({ method: "GET", path: path("/v1/payments"), query }), params);
  }

  /** Only a pending payment can be canceled (409 otherwise). */
  cancel(id: string, options: RequestOptions = {}): Promise<Payment> {
    return this.http.request({ method: "POST", path: path("/v1/payments/{id}/cancel", id), idempotencyKey: options.idempotencyKey });
  }
}

/** `/v1/webhook_endpoints`: where events are sent. */
class WebhookEndpoints {
  constructor(private readonly http: HttpClient) {}

  /** The answer carries the signing `secret` (whsec_…) to verify deliveries with. */
  create(params: WebhookEndpointCreateParams, options: RequestOptions = {}): Promise<WebhookEndpointWithSecret> {
    return this.http.request({ method: "POST", path: path("/v1/webhook_endpoints"), body: params, idempotencyKey: options.idempotencyKey });
  }

  retrieve(id: string): Promise<WebhookEndpoint> {
    return this.http.request({ method: "GET", path: path("/v1/webhook_endpoints/{id}", id) });
  }

  list(params: WebhookEndpointListParams = {}): PagedList<WebhookEndpoint, WebhookEndpointListParams> {
    return new PagedList((query) => this.http.request<Page<WebhookEndpoint>>({ method: "GET", path: path("/v1/webhook_endpoints"), query }), params);
  }

  /** Changes only the fields given; `enabled_events` is replaced as a whole. */
  update(id: string, params: WebhookEndpointUpdateParams): Promise<WebhookEndpoint> {
    return this.http.request({ method: "PATCH", path: path("/v1/webhook_endpoints/{id}", id), body: params });
  }

  delete(id: string): Promise<DeletedWebhookEndpoint> {
    return this.http.request({ method: "DELETE", path: path("/v1/webhook_endpoints/{id}", id) });
  }
}

/** Webhook deliveries: one per event and subscribed endpoint, with the log of its attempts. */
class Deliveries {
  constructor(private readonly http: HttpClient) {}

  /** An endpoint's deliveries, newest first, across all pages. */
  list(endpointId: string, params: DeliveryListParams = {}): PagedList<Delivery, DeliveryListParams> {
    const deliveriesPath = path("/v1/webhook_endpoints/{id}/deliveries", endpointId);
    return new PagedList((query) => this.http.request<Page<Delivery>>({ method: "GET", path: deliveriesPath, query }), params);
  }

  retrieve(id: string): Promise<DeliveryWithAttempts> {
    return this.http.request({ method: "GET", path: path("/v1/deliveries/{id}", id) });
  }

  /** Queues the delivery for an immediate attempt, whatever its status. */
  retry(id: string, options: RequestOptions = {}): Promise<Delivery> {
    return this.http.request({ method: "POST", path: path("/v1/deliveries/{id}/retry", id), idempotencyKey: options.idempotencyKey });
  }
}

/** `/v1/events`: every event sent to your webhooks, to reconcile against. */
class Events {
  constructor(private readonly http: HttpClient) {}

  list(params: EventListParams = {}): PagedList<Event, EventListParams> {
    return new PagedList((query) => this.http.request<Page<Event>>({ method: "GET", path: path("/v1/events"), query }), params);
  }

  retrieve(id: string): Promise<Event> {
    return this.http.request({ method: "GET", path: path("/v1/events/{id}", id) });
  }
}

/**
 * The Lumenpay API. Every call resolves to the response body or rejects with a `LumenpayError`;
 * failures that can pass (no response, 429, 5xx) are retried first, POSTs under one Idempotency-Key.
 */
export class Lumenpay {
  readonly payments: Payments;
  readonly webhookEndpoints: WebhookEndpoints;
  readonly deliveries: Deliveries;
  readonly events: Events;

  constructor(options: LumenpayOptions) {
    const http = new HttpClient(options);
    this.payments = new Payments(http);
    this.webhookEndpoints = new WebhookEndpoints(http);
    this.deliveries = new Deliveries(http);
    this.events = new Events(http);
  }
}
