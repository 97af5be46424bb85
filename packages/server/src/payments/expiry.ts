import { transaction, type Pool } from "../db/pool.js";
import { recordPaymentEvent, type PaymentLinks } from "./service.js";
import * as store from "./store.js";

export const EXPIRY_BATCH_SIZE = 100;

/**
 * Moves open payments past `expires_at` to `expired`, writing `payment.expired`, in batches of
 * `limit`: each batch's status changes and their events commit together, and a crash loses at most
 * the batch in flight (it is retried on the next run). `wake` is called after each batch that
 * queued deliveries has committed. Returns how many payments expired.
 *
 * Partially paid payments expire too: the customer had the same window, and leaving them open
 * would hold their memo forever. What arrived stays in `amount_received` and `settlements`, so the
 * merchant can refund or accept it; anything arriving later is recorded as a late payment.
 */
export async function expireDuePayments(
  db: Pool,
  now: Date,
  links: PaymentLinks,
  { wake, limit = EXPIRY_BATCH_SIZE }: { wake?: () => void; limit?: number } = {},
): Promise<number> {
  let total = 0;
  for (;;) {
    const { expired, queued } = await transaction(db, async (tx) => {
      const payments = await store.expireDue(tx, now, limit);
      let queued = false;
      for (const payment of payments) {
        const event = await recordPaymentEvent(tx, payment, "payment.expired", now, links);
        queued ||= event.queued;
      }
      return { expired: payments.length, queued };
    });
    if (queued) wake?.();
    total += expired;
    if (expired < limit) return total;
  }
}
