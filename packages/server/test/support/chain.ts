import { Horizon, type Keypair, type Memo } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, expect } from "vitest";
import { transaction } from "../../src/db/pool.js";
import type { MerchantIn } from "../../src/merchants/service.js";
import { applyPaymentRecord, type SettlementContext } from "../../src/payments/settlement.js";
import type { HorizonPaymentRecord } from "../../src/stellar/incoming.js";
import { startLocalHorizon, type LocalHorizon } from "../../src/stellar/local-horizon/index.js";
import { buildTestApp, seedMerchant, TestClock, type TestApp } from "./app.js";

/** A merchant with an API key and a funded account of its own on the local network. */
export type ChainMerchant = Awaited<ReturnType<typeof seedMerchant>> & { account: string };

/** One row of `events`, as the settlement tests read them. */
export interface EventRow {
  id: string;
  type: string;
  sequence: number;
  body: string;
}

/**
 * A whole app on a local Horizon network, its clock starting at `startIso`, with a payer holding
 * 100 000 XLM. Registers the `beforeAll` that starts them and the `afterAll` that closes them.
 *
 * The functions can be destructured at once; `t`, `horizon`, `server` and `payer` exist only
 * once `beforeAll` has run, so read them through the returned object inside tests.
 * `paymentDefaults` go into every body `createPayment` posts, under the test's own fields; `rpc` serves
 * the network's Stellar RPC too.
 */
export function useChainApp(startIso: string, { paymentDefaults = {}, rpc = false }: { paymentDefaults?: Record<string, unknown>; rpc?: boolean } = {}) {
  const clock = new TestClock(new Date(startIso));
  let t: TestApp | undefined;
  let horizon: LocalHorizon | undefined;
  let server: Horizon.Server | undefined;
  let payer: Keypair | undefined;

  beforeAll(async () => {
    // Ledgers close at the test clock's time, as the network's clock and ours agree in production.
    horizon = await startLocalHorizon({ clock: () => clock.now(), ...(rpc && { rpcPort: 0 }) });
    server = new Horizon.Server(horizon.url, { allowHttp: true });
    t = await buildTestApp({
      clock,
      env: { STELLAR_NETWORK: "custom", STELLAR_NETWORK_PASSPHRASE: horizon.networkPassphrase, HORIZON_URL: horizon.url },
    });
    payer = await horizon.newAccount("100000");
  });
  afterAll(async () => {
    await t?.close();
    await horizon?.close();
  });

  const started = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) throw new Error(`${name} exists only once beforeAll has run`);
    return value;
  };
  const app = () => started(t, "t");
  const network = () => started(horizon, "horizon");
  const sdk = () => started(server, "server");

  const links = () => ({ publicBaseUrl: app().config.publicBaseUrl, networkPassphrase: network().networkPassphrase });
  /** What ingestion of `account` passes to applyPaymentRecord. */
  const ctx = (account: string): SettlementContext => ({ now: clock.now(), networkPassphrase: network().networkPassphrase, links: links(), account });

  /** The record Horizon lists for transaction `hash` among `account`'s payments, joined, as the SDK returns it. */
  async function recordOf(account: string, hash: string): Promise<HorizonPaymentRecord> {
    const page = await sdk().payments().forAccount(account).join("transactions").includeFailed(true).order("desc").limit(200).call();
    const record = page.records.find((r) => r.transaction_hash === hash);
    if (!record) throw new Error(`Horizon lists no payment of ${hash} for ${account}`);
    return record as unknown as HorizonPaymentRecord;
  }

  return {
    clock,
    get t() {
      return app();
    },
    get horizon() {
      return network();
    },
    get server() {
      return sdk();
    },
    get payer() {
      return started(payer, "payer");
    },
    links,
    ctx,
    /** Applies `record` in a transaction of its own, as ingestion of the account it pays does. */
    apply: (record: HorizonPaymentRecord) => transaction(app().db.pool, (tx) => applyPaymentRecord(tx, record, ctx((record.to ?? record.account)!))),
    recordOf,

    /** Pays `amount` XLM from the payer to `to` (by default `m`'s account); returns the record on `m`'s account, not yet applied. */
    async pay(m: ChainMerchant, amount: string, memo?: Memo, to = m.account): Promise<HorizonPaymentRecord> {
      const { hash } = await network().pay({ from: started(payer, "payer"), to, amount, memo });
      return recordOf(m.account, hash);
    },

    /** A merchant whose only account is a fresh one, funded with 1 XLM. */
    async merchant(input: Partial<MerchantIn> = {}): Promise<ChainMerchant> {
      const account = (await network().newAccount("1")).publicKey();
      return { ...(await seedMerchant(app(), { accounts: [account], ...input })), account };
    },

    /** POST /v1/payments with `paymentDefaults` under `body`; expects 201 and returns the payment. */
    async createPayment(m: ChainMerchant, body: Record<string, unknown> = {}) {
      const res = await app().app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { ...paymentDefaults, ...body } });
      expect(res.statusCode, res.body).toBe(201);
      return res.json();
    },
    getPayment: async (m: ChainMerchant, id: string) => (await app().app.inject({ method: "GET", url: `/v1/payments/${id}`, headers: m.auth })).json(),
    eventsOf: async (paymentId: string) =>
      (await app().db.pool.query<EventRow>("select id, type, sequence, body from events where payment_id = $1 order by sequence", [paymentId])).rows,
  };
}
