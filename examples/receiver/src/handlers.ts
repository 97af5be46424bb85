import type { EventOf, Router } from "@lumenpay/webhooks";
import type { Logger } from "pino";
import type { OrderState, OrderStore } from "./orders.js";

type PaymentEvent = EventOf<
  "payment.created" | "payment.partially_paid" | "payment.confirmed" | "payment.expired" | "payment.canceled" | "payment.late_payment_received"
>;

/**
 * The example handlers: each records the order's new state *before* the router acknowledges the
 * delivery, so a 200 always means the work is done. A handler that throws gets a 500, and
 * Lumenpay delivers the event again later.
 */
export function registerHandlers(router: Router, { orders, log, timeoutMs }: { orders: OrderStore; log: Logger; timeoutMs: number }): Router {
  async function record(event: PaymentEvent, state: OrderState, signal: AbortSignal): Promise<void> {
    const payment = event.data.object;
    const orderId = payment.metadata.order_id;
    const applied = await orders.apply(
      { paymentId: payment.id, orderId, state, amountReceived: payment.amount_received, sequence: event.sequence, eventId: event.id },
      signal,
    );
    log.info(
      { kind: "order.updated", webhook_id: event.id, event_type: event.type, payment_id: payment.id, order_id: orderId, state, applied },
      applied ? `order for ${payment.id} is now ${state}` : `${event.type} for ${payment.id} is older than the state recorded; ignored`,
    );
  }

  const options = { timeoutMs };
  return (
    router
      .on("payment.created", (event, { signal }) => record(event, "awaiting_payment", signal), options)
      // Less than the amount arrived; the customer may still send the rest before expiry.
      .on("payment.partially_paid", (event, { signal }) => record(event, "partially_paid", signal), options)
      // The full amount is on-chain: fulfil the order here (ship, grant access), then return.
      .on("payment.confirmed", (event, { signal }) => record(event, "paid", signal), options)
      .on("payment.expired", (event, { signal }) => record(event, "expired", signal), options)
      .on("payment.canceled", (event, { signal }) => record(event, "canceled", signal), options)
      // Money arrived after expiry or cancelation: a person decides to refund it or honour the order.
      .on("payment.late_payment_received", (event, { signal }) => record(event, "late_payment_review", signal), options)
      // Money that paid no payment (no memo, an unknown memo, the wrong asset…): a person refunds it to
      // `from` or matches it to an order by hand; GET /v1/unmatched_payments lists them all.
      .on(
        "payment.unmatched_received",
        async (event) => {
          const u = event.data.object;
          log.warn(
            { kind: "payment.unmatched", webhook_id: event.id, unmatched_id: u.id, reason: u.reason, amount: u.amount, asset: u.asset, from: u.from, memo: u.memo, payment_id: u.payment_id },
            `${u.amount} ${u.asset === "XLM" ? "XLM" : u.asset.code} from ${u.from} paid no payment (${u.reason}); refund or reconcile it`,
          );
        },
        options,
      )
  );
}
