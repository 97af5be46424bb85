import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { Keypair, Memo } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { transaction } from "../src/db/pool.js";
import { createMerchant } from "../src/merchants/service.js";
import { expireDuePayments } from "../src/payments/expiry.js";
import { createPayment, inTransaction, type PaymentIn } from "../src/payments/service.js";
import { applyPaymentRecord, type SettlementOutcome } from "../src/payments/settlement.js";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { TestClock } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { startIngestion, storedCursor } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";

/**
 * A TCP gate in front of Horizon: while shut, every connection is dropped at once (Horizon is
 * unreachable); opened, connections go through.
 */
async function tcpGate(target: string): Promise<{ url: string; open(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  let open = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once("close", () => sockets.delete(s)).on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open: () => void (open = true),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const clock = new TestClock(new Date("2026-09-01T09:00:00.000Z"));
let db: TestDatabase;
let horizon: LocalHorizon;
let gate: Awaited<ReturnType<typeof tcpGate>>;
beforeAll(async () => {
  db = await createTestDatabase();
  // Ledgers close at the test clock's time, so the payments below happen minutes apart in a moment.
  horizon = await startLocalHorizon({ clock: () => clock.now() });
  gate = await tcpGate(horizon.url);
});
afterAll(async () => {
  await gate?.close();
  await horizon?.close();
  await db?.drop();
});

describe("a first start while Horizon is unreachable", () => {
  it("once Horizon answers, records every payment made, paid and expired in between by its close time", async () => {
    const config = loadConfig({ STELLAR_NETWORK: "custom", STELLAR_NETWORK_PASSPHRASE: horizon.networkPassphrase, HORIZON_URL: gate.url });
    const links = { publicBaseUrl: config.publicBaseUrl, networkPassphrase: horizon.networkPassphrase };
    const account = Keypair.random().publicKey();
    await horizon.fund(account, "1");
    const payer = await horizon.newAccount("1000");
    clock.advance(5_000);
    const { merchant } = await createMerchant(db.pool, { name: "Shop", email: "shop@example.test", accounts: [account] }, clock.now());

    const outcomes: SettlementOutcome[] = [];
    const ingestion = startIngestion(db, { config, clock, apply: applyPaymentRecord, observe: (o) => outcomes.push(o), horizonUrl: gate.url, watchdogMs: 10_000 });
    try {
      const create = (input: Partial<PaymentIn>) =>
        transaction(db.pool, (tx) => createPayment(inTransaction(tx, false), merchant, { amount: "5", asset: "XLM", expires_in: 60, ...input }, clock.now(), links, config.payments)).then((c) => c.payment);
      const [paidInTime, paidLate, partial] = [await create({}), await create({}), await create({})];
      const memo = (p: { memo: { value: string } | null }) => Memo.id(p.memo!.value);

      clock.advance(30_000);
      await horizon.pay({ from: payer, to: account, amount: "5", memo: memo(paidInTime) });
      await horizon.pay({ from: payer, to: account, amount: "2", memo: memo(partial) });
      clock.advance(40_000);
      await horizon.pay({ from: payer, to: account, amount: "5", memo: memo(paidLate) });
      await horizon.pay({ from: payer, to: account, amount: "1" });
      clock.advance(30_000);
      expect(await expireDuePayments(db.pool, clock.now(), links)).toBe(3);
      // Nothing reached Horizon yet, so no cursor could be stored.
      expect(await storedCursor(db.pool, horizon.networkPassphrase, account)).toBeUndefined();

      gate.open();
      await waitFor(async () => outcomes.length >= 4, "the records made while Horizon was unreachable");
      const { rows } = await db.pool.query<{ id: string; status: string; received: string; late: boolean[] }>(
        `select p.id, p.status, p.amount_received_stroops::text as received, array_agg(s.late order by s.operation_id) as late
         from payments p join payment_settlements s on s.payment_id = p.id where p.merchant_id = $1 group by p.id`,
        [merchant.id],
      );
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(byId.get(paidInTime.id)).toMatchObject({ status: "confirmed", received: "50000000", late: [false] });
      expect(byId.get(paidLate.id)).toMatchObject({ status: "expired", received: "0", late: [true] });
      expect(byId.get(partial.id)).toMatchObject({ status: "expired", received: "20000000", late: [false] });
      expect(outcomes.filter((o) => o.kind === "unmatched")).toEqual([{ kind: "unmatched", merchantId: merchant.id, reason: "no_memo" }]);
      // The reach-back starts a clock slack before the first payment: the account's own funding, before
      // it was attached, comes up and is none of the merchant's business.
      expect(outcomes.filter((o) => o.kind === "ignored")).toEqual([{ kind: "ignored", reason: "not_ours" }]);
      expect(await storedCursor(db.pool, horizon.networkPassphrase, account)).toBeDefined();
    } finally {
      await ingestion.stop();
    }
  });
});
