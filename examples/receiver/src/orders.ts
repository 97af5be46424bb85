/**
 * Where the example handlers record what a payment means for the merchant's order. Replace
 * `MemoryOrderStore` with your database: the handlers only need `apply`.
 */

export type OrderState = "awaiting_payment" | "partially_paid" | "paid" | "expired" | "canceled" | "late_payment_review";

export interface OrderUpdate {
  paymentId: string;
  /** The merchant's own reference, if the payment was created with `metadata.order_id`. */
  orderId: string | undefined;
  state: OrderState;
  /** Decimal string, as Lumenpay sends it. */
  amountReceived: string;
  /** The payment's event counter; deliveries can arrive out of order. */
  sequence: number | undefined;
  eventId: string;
}

export interface OrderStore {
  /**
   * Records the update unless a newer one (higher sequence) for the same payment is already
   * recorded; true if it was applied. Resolve only once the update is durable: the webhook is
   * acknowledged right after, and never redelivered.
   */
  apply(update: OrderUpdate, signal: AbortSignal): Promise<boolean>;
}

/** This process's memory: fine for a demo and tests, lost on restart. */
export class MemoryOrderStore implements OrderStore {
  readonly #byPayment = new Map<string, OrderUpdate>();
  /** Every applied update in order, so tests and demos can see what happened. */
  readonly history: OrderUpdate[] = [];

  get(paymentId: string): OrderUpdate | undefined {
    return this.#byPayment.get(paymentId);
  }

  async apply(update: OrderUpdate): Promise<boolean> {
    const current = this.#byPayment.get(update.paymentId);
    if (current?.sequence !== undefined && update.sequence !== undefined && update.sequence <= current.sequence) return false;
    this.#byPayment.set(update.paymentId, update);
    this.history.push(update);
    return true;
  }
}
