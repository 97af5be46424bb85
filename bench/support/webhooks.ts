/** Seeding shared by the webhook benchmarks (delivery, scale): merchants with endpoints, and events. */
import type pg from "pg";
import { Keypair } from "@stellar/stellar-sdk";
import { transaction } from "../../packages/server/src/db/pool.js";
import { recordEvent } from "../../packages/server/src/events/outbox.js";
import { newId } from "../../packages/server/src/ids.js";
import { createMerchant } from "../../packages/server/src/merchants/service.js";
import { insertEndpoint } from "../../packages/server/src/webhooks/endpoints-store.js";
import { generateSecret } from "../../packages/server/src/webhooks/secrets.js";

/** What a payment.created carries, so bodies have a realistic size. */
const paymentObject = (i: number) => ({
  id: newId("pay"),
  object: "payment",
  status: "pending",
  amount: "12.5000000",
  asset: "XLM",
  destination: "GBENCHBENCHBENCHBENCHBENCHBENCHBENCHBENCHBENCHBENCHBENC",
  memo: { type: "text", value: `bench-${i}` },
  description: "Order #1234",
  metadata: { order_id: `ord_${i}` },
  paid_amount: "0",
  expires_at: new Date(Date.now() + 3_600_000).toISOString(),
  created_at: new Date().toISOString(),
});

/** One merchant per endpoint; endpoint i listens on `<origin>/hooks/i` and signs with secrets[i]. */
export async function seedEndpoints(pool: pg.Pool, origin: string, endpoints: number): Promise<{ merchantIds: string[]; secrets: string[] }> {
  const merchantIds: string[] = [];
  const secrets: string[] = [];
  for (let i = 0; i < endpoints; i++) {
    const { merchant } = await createMerchant(pool, { name: `Bench ${i}`, email: `bench${i}@example.test`, accounts: [Keypair.random().publicKey()] }, new Date());
    const secret = generateSecret();
    await insertEndpoint(pool, {
      id: newId("we"),
      merchantId: merchant.id,
      url: `${origin}/hooks/${i}`,
      description: null,
      enabledEvents: ["*"],
      disabled: false,
      secret,
      now: new Date(),
    });
    merchantIds.push(merchant.id);
    secrets.push(secret);
  }
  return { merchantIds, secrets };
}

/**
 * Commits `count` payment.created events (round-robin over the merchants) in one transaction, then
 * calls `wake` (as the API wakes the delivery workers after its commits); returns their ids.
 */
export async function commitEvents(pool: pg.Pool, merchantIds: string[], from: number, count: number, wake?: () => void): Promise<string[]> {
  const { ids, queued } = await transaction(pool, async (tx) => {
    const ids: string[] = [];
    let queued = false;
    for (let i = from; i < from + count; i++) {
      const merchantId = merchantIds[i % merchantIds.length]!;
      const event = await recordEvent(tx, { merchantId, type: "payment.created", object: paymentObject(i), now: new Date() });
      ids.push(event.id);
      queued ||= event.queued;
    }
    return { ids, queued };
  });
  if (queued) wake?.();
  return ids;
}
