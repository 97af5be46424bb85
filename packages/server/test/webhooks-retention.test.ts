import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keypair } from "@stellar/stellar-sdk";
import { transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { newId } from "../src/ids.js";
import { createMerchant } from "../src/merchants/service.js";
import { insertEndpoint } from "../src/webhooks/endpoints-store.js";
import { purgeOldAttempts } from "../src/webhooks/maintenance.js";
import { generateSecret } from "../src/webhooks/secrets.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

describe("attempt log retention", () => {
  it("purges attempts older than the retention period, in batches, and keeps the rest", async () => {
    const now = new Date("2026-04-01T00:00:00Z");
    const { merchant } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [Keypair.random().publicKey()] }, new Date());
    await insertEndpoint(db.pool, { id: newId("we"), merchantId: merchant.id, url: "https://example.com/", description: null, enabledEvents: ["*"], disabled: false, secret: generateSecret(), now });
    const event = await transaction(db.pool, (tx) => recordEvent(tx, { merchantId: merchant.id, type: "payment.created", object: {}, now }));
    const { rows } = await db.pool.query<{ id: string }>("select id from webhook_deliveries where event_id = $1", [event.id]);
    // 12 000 old attempts (more than one purge batch) and 3 recent ones.
    await db.pool.query(
      `insert into webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code)
       select $1, n, $2::timestamptz - interval '31 days', 10, 500 from generate_series(1, 12000) n
       union all select $1, n, $2::timestamptz - interval '29 days', 10, 500 from generate_series(12001, 12003) n`,
      [rows[0]!.id, now],
    );
    const purged = await purgeOldAttempts(db.pool, now, 30, new AbortController().signal);
    expect(purged).toBe(12_000);
    const left = await db.pool.query<{ n: number }>("select count(*)::int as n from webhook_attempts where delivery_id = $1", [rows[0]!.id]);
    expect(left.rows[0]!.n).toBe(3);
    const delivery = await db.pool.query("select count(*)::int as n from webhook_deliveries where id = $1", [rows[0]!.id]);
    expect(delivery.rows[0].n).toBe(1);
  });
});
