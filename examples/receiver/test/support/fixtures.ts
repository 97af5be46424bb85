import { randomBytes, randomUUID } from "node:crypto";
import { API_VERSION, signDelivery, type EventOf, type EventType, type Payment } from "@lumenpay/webhooks";

export const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
export const OTHER_SECRET = `whsec_${randomBytes(24).toString("base64")}`;

export const newId = (prefix: string) => `${prefix}_${randomUUID().replaceAll("-", "")}`;

type PaymentEventType = Exclude<Extract<EventType, `payment.${string}`>, "payment.unmatched_received">;

/** A `payment.*` event as Lumenpay sends it; only what a test cares about is a parameter. */
export function paymentEvent(
  type: PaymentEventType = "payment.confirmed",
  { id = newId("evt"), paymentId = newId("pay"), sequence = 2 }: { id?: string; paymentId?: string; sequence?: number } = {},
): EventOf<PaymentEventType> {
  const now = new Date().toISOString();
  const payment: Payment = {
    id: paymentId,
    object: "payment",
    status: type === "payment.confirmed" ? "confirmed" : "pending",
    amount: "12.5",
    asset: "XLM",
    destination: "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7",
    destination_account: "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7",
    muxed_id: null,
    memo_type: "id",
    memo: "1234",
    amount_received: type === "payment.confirmed" ? "12.5" : "0",
    overpaid: false,
    settlements: [],
    description: null,
    metadata: { order_id: "order-42" },
    success_url: null,
    payment_url: `http://localhost/pay/${paymentId}`,
    sep7_uri: "web+stellar:pay?destination=GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7",
    expires_at: now,
    monitor_for: 86400,
    created_at: now,
    updated_at: now,
    canceled_at: null,
    confirmed_at: type === "payment.confirmed" ? now : null,
    expired_at: null,
  };
  return { id, type, created_at: now, api_version: API_VERSION, sequence, data: { object: payment } } as EventOf<PaymentEventType>;
}

export interface SignedDelivery {
  id: string;
  body: string;
  headers: Record<string, string>;
}

/** Signs `body` (an event or raw text) as Lumenpay does; `timestamp` in unix seconds, default now. */
export function signed(
  body: { id: string } | string,
  { secret = SECRET, timestamp = Math.floor(Date.now() / 1000), id, signingSeed }: { secret?: string; timestamp?: number; id?: string; signingSeed?: Uint8Array } = {},
): SignedDelivery {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const deliveryId = id ?? (typeof body === "string" ? newId("evt") : body.id);
  const headers = signDelivery({ id: deliveryId, timestamp, body: text, secrets: [secret], ...(signingSeed ? { signingSeed } : {}) });
  return { id: deliveryId, body: text, headers: { ...headers, "content-type": "application/json", "user-agent": "Lumenpay-Webhooks/test" } };
}
