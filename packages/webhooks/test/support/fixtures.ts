import { randomBytes } from "node:crypto";
import { generateTestHeaders, type DeliveryHeaders, type EventOf, type Payment } from "../../src/index.js";

export const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;
export const newEventId = () => `evt_${randomBytes(11).toString("hex")}`;

export function payment(overrides: Partial<Payment> = {}): Payment {
  return {
    id: "pay_3kTMd9Qe0XvB7yLw2nR5sA",
    object: "payment",
    status: "confirmed",
    amount: "12.5",
    asset: "XLM",
    destination: "GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H",
    destination_account: "GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H",
    muxed_id: null,
    memo_type: "id",
    memo: "1234",
    amount_received: "12.5",
    overpaid: false,
    settlements: [],
    description: null,
    metadata: { order: "A-1" },
    success_url: null,
    payment_url: "http://localhost:4000/pay/pay_3kTMd9Qe0XvB7yLw2nR5sA",
    sep7_uri: "web+stellar:pay?destination=G",
    expires_at: "2026-01-01T01:00:00.000Z",
    monitor_for: 86400,
    created_at: "2026-01-01T00:00:00.000Z",
    updated_at: "2026-01-01T00:05:00.000Z",
    canceled_at: null,
    confirmed_at: "2026-01-01T00:05:00.000Z",
    expired_at: null,
    ...overrides,
  };
}

export function confirmedEvent(id = newEventId()): EventOf<"payment.confirmed"> {
  return {
    id,
    type: "payment.confirmed",
    created_at: "2026-01-01T00:05:00.000Z",
    api_version: "2026-11-01",
    sequence: 2,
    data: { object: payment() },
  };
}

// A body that is not JSON (or has no id) still needs a webhook-id to be signed with.
function eventId(body: string): string {
  try {
    const { id } = JSON.parse(body) as { id?: unknown };
    return typeof id === "string" ? id : newEventId();
  } catch {
    return newEventId();
  }
}

/** A delivery as Lumenpay sends it: the body and its signed headers (webhook-id = event id). */
export function delivery<E extends { id: string }>(
  secret: string,
  event: E | string = JSON.stringify(confirmedEvent()),
  id?: string,
): { body: string; headers: DeliveryHeaders & { "content-type": string } } {
  const body = typeof event === "string" ? event : JSON.stringify(event);
  const webhookId = id ?? (typeof event === "string" ? eventId(event) : event.id);
  return { body, headers: { ...generateTestHeaders({ payload: body, secret, id: webhookId }), "content-type": "application/json" } };
}

/** Resolves after the current microtasks and pending I/O callbacks, without a timing assumption. */
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A promise with its resolve and reject, to hold a handler open until a test lets it go. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
