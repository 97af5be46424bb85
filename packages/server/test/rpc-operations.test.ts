import { Account, Asset, Horizon, Keypair, Memo, MemoText, MuxedAccount, Operation, TransactionBuilder, type xdr } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Asset as LumenpayAsset } from "../src/stellar/assets.js";
import { type HorizonPaymentRecord, type IncomingOperation, incomingOperation } from "../src/stellar/incoming.js";
import { type LocalHorizon, startLocalHorizon, type TransactionRecord } from "../src/stellar/local-horizon/index.js";
import { createRpcClient, type EventFilter, type RpcClient, type RpcEvent, type RpcTransaction } from "../src/stellar/rpc-client.js";
import { eventFilters, eventRecipient, fromAssetContract, getEventsCallsNeeded, incomingFromEvent, needsTransaction, sacContractId } from "../src/stellar/rpc-operations.js";

let local: LocalHorizon;
let horizon: Horizon.Server;
let rpc: RpcClient;

const [payer, customer, issuer, merchant, zeroMerchant] = Array.from({ length: 5 }, () => Keypair.random()) as [Keypair, Keypair, Keypair, Keypair, Keypair];
const USD = new Asset("USD", issuer.publicKey());
const xlm: LumenpayAsset = { code: "XLM", issuer: null };
const usd: LumenpayAsset = { code: "USD", issuer: issuer.publicKey() };
const muxed = (account: string, id: string) => new MuxedAccount(new Account(account, "0"), id).accountId();
const MAX_U64 = "18446744073709551615";

/** The transactions of the scenario, by what they are. */
const sent: Record<string, TransactionRecord> = {};

/** Builds, signs (by every signer; the first is the source) and submits; `feeBump` wraps it with that fee source. */
async function submit(signers: Keypair[], ops: xdr.Operation[], { memo, feeBump }: { memo?: Memo; feeBump?: Keypair } = {}): Promise<TransactionRecord> {
  const builder = new TransactionBuilder(await horizon.loadAccount(signers[0]!.publicKey()), { fee: "100", networkPassphrase: local.networkPassphrase });
  ops.forEach((op) => builder.addOperation(op));
  if (memo) builder.addMemo(memo);
  const tx = builder.setTimeout(60).build();
  tx.sign(...signers);
  if (!feeBump) return local.submit(tx);
  const bumped = TransactionBuilder.buildFeeBumpTransaction(feeBump, "200", tx, local.networkPassphrase);
  bumped.sign(feeBump);
  return local.submit(bumped);
}

type Outcome = IncomingOperation | { ignored: string };
interface Seen {
  operationId: string;
  hash: string;
  outcome: Outcome;
}

/** What Horizon ingestion sees: the account's payments (failed ones too), each through incomingOperation. */
async function horizonView(account: string): Promise<Seen[]> {
  const res = await fetch(`${local.url}/accounts/${account}/payments?join=transactions&include_failed=true&limit=200`);
  const { _embedded } = (await res.json()) as { _embedded: { records: HorizonPaymentRecord[] } };
  return _embedded.records.map((record) => ({ operationId: record.id, hash: record.transaction_hash, outcome: incomingOperation(record, account) }));
}

/** What RPC ingestion sees with `requests`, per account credited: each event once, its transaction fetched once. */
async function rpcView(requests: EventFilter[][]): Promise<Map<string, Seen[]>> {
  const events = new Map<string, RpcEvent>();
  for (const filters of requests) {
    for (const event of (await rpc.getEvents({ startLedger: 1, filters, limit: 10_000 })).events) events.set(event.id, event);
  }
  const transactions = new Map<string, Promise<RpcTransaction>>();
  const fetchTransaction = (hash: string) => {
    if (!transactions.has(hash)) transactions.set(hash, rpc.getTransaction(hash).then((tx) => (tx.status === "NOT_FOUND" ? Promise.reject(new Error(hash)) : tx)));
    return transactions.get(hash)!;
  };
  const seen = new Map<string, Seen[]>();
  for (const event of [...events.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (!needsTransaction(event)) continue;
    const account = eventRecipient(event)!;
    const outcome = incomingFromEvent(event, await fetchTransaction(event.txHash), account, local.networkPassphrase);
    const operationId = (BigInt(event.id.split("-")[0]!) + 1n).toString();
    seen.set(account, [...(seen.get(account) ?? []), { operationId, hash: event.txHash, outcome }]);
  }
  return seen;
}

beforeAll(async () => {
  local = await startLocalHorizon({ port: 0, rpcPort: 0 });
  horizon = new Horizon.Server(local.url, { allowHttp: true });
  rpc = createRpcClient({ url: local.rpcUrl! });
  for (const account of [payer, customer, issuer]) await local.fund(account.publicKey(), "1000");
  const m = merchant.publicKey();
  const pay = (to: string, amount: string, memo?: Memo) => local.pay({ from: payer, to, amount, memo });
  sent.created = await submit([payer], [Operation.createAccount({ destination: m, startingBalance: "20" })], { memo: Memo.text("welcome") });
  sent.zero = await submit([payer], [Operation.createAccount({ destination: zeroMerchant.publicKey(), startingBalance: "0" })]);
  sent.id = await pay(m, "1.5", Memo.id(MAX_U64));
  sent.text = await pay(m, "5", Memo.text("order-1"));
  sent.utf8 = await pay(m, "0.0000001", Memo.text("café ☕ 支付"));
  sent.badUtf8 = await pay(m, "2", new Memo(MemoText, Buffer.from([0x6f, 0xff, 0x6b])));
  sent.hash = await pay(m, "2", Memo.hash(Buffer.alloc(32, 7)));
  sent.return = await pay(m, "2", Memo.return(Buffer.alloc(32, 9).toString("hex")));
  sent.plain = await pay(m, "0.5");
  sent.muxed = await pay(muxed(m, MAX_U64), "3");
  sent.muxedMemo = await pay(muxed(m, "7"), "3", Memo.text("not this"));
  sent.mintToCustomer = await local.pay({ from: issuer, to: customer.publicKey(), amount: "100", asset: USD });
  sent.credit = await local.pay({ from: customer, to: m, amount: "2.5", asset: USD, memo: Memo.id("9") });
  // The issuer pays from a muxed operation source in a transaction the payer sends: Horizon's `from` is the issuer's G account.
  sent.mint = await submit([payer, issuer], [Operation.payment({ destination: m, asset: USD, amount: "10", source: muxed(issuer.publicKey(), "3") })], { memo: Memo.text("inv-9") });
  const native = Asset.native();
  sent.strictSend = await submit([payer], [Operation.pathPaymentStrictSend({ sendAsset: native, sendAmount: "6", destination: m, destAsset: USD, destMin: "6", path: [] })]);
  sent.strictReceive = await submit(
    [payer],
    [Operation.pathPaymentStrictReceive({ sendAsset: native, sendMax: "5", destination: muxed(m, "11"), destAsset: USD, destAmount: "4.25", path: [new Asset("EUR", issuer.publicKey())] })],
    { memo: Memo.id("77") },
  );
  sent.nativePath = await submit([payer], [Operation.pathPaymentStrictSend({ sendAsset: native, sendAmount: "1", destination: m, destAsset: native, destMin: "1", path: [] })]);
  // Operations 1 and 2 pay the merchant: their ids count from 1 in Horizon and from 0 in events.
  sent.multi = await submit(
    [payer],
    [
      Operation.payment({ destination: customer.publicKey(), asset: native, amount: "1" }),
      Operation.payment({ destination: m, asset: native, amount: "0.25", source: muxed(payer.publicKey(), "5") }),
      Operation.payment({ destination: muxed(m, "8"), asset: native, amount: "0.75" }),
    ],
    { memo: Memo.hash(Buffer.alloc(32, 1)) },
  );
  sent.feeBump = await submit([payer], [Operation.payment({ destination: m, asset: native, amount: "1.25" })], { memo: Memo.text("bumped"), feeBump: customer });
  const leaving = await local.newAccount("30");
  sent.merge = await submit([leaving], [Operation.accountMerge({ destination: m })]);
  sent.outgoing = await local.pay({ from: merchant, to: customer.publicKey(), amount: "1" });
  sent.burn = await local.pay({ from: merchant, to: issuer.publicKey(), amount: "1", asset: USD });
  sent.failed = await local.pay({ from: payer, to: m, amount: "9", successful: false });
  sent.zeroPaid = await pay(zeroMerchant.publicKey(), "3", Memo.id("1"));
});
afterAll(async () => {
  await rpc?.close();
  await local?.close();
});

describe("incomingFromEvent", () => {
  it("gives Horizon's IncomingOperations, in Horizon's order; RPC lacks only a payment out and a failed transaction", async () => {
    const m = merchant.publicKey();
    const fromHorizon = await horizonView(m);
    const fromRpc = (await rpcView(eventFilters([m, zeroMerchant.publicKey()], [xlm, usd], local.networkPassphrase))).get(m)!;
    // A payment out credits no one watched (a burn when it goes to the issuer); a failed transaction keeps only its fee event.
    const onlyHorizon = fromHorizon.filter((h) => !fromRpc.some((r) => r.operationId === h.operationId));
    expect(onlyHorizon.map((h) => [h.hash, h.outcome])).toEqual([
      [sent.outgoing!.hash, { ignored: "not_incoming" }],
      [sent.burn!.hash, { ignored: "not_incoming" }],
      [sent.failed!.hash, { ignored: "transaction_failed" }],
    ]);
    expect(fromRpc).toStrictEqual(fromHorizon.filter((h) => !onlyHorizon.includes(h)));

    const outcome = (name: string, index = 0) => fromRpc.filter((r) => r.hash === sent[name]!.hash)[index]!.outcome as IncomingOperation;
    expect(fromRpc.filter((r) => "ignored" in r.outcome).map((r) => [r.hash, r.outcome])).toEqual([[sent.merge!.hash, { ignored: "unsupported_operation" }]]);
    expect(fromRpc.filter((r) => !("ignored" in r.outcome))).toHaveLength(18);
    expect(outcome("created")).toMatchObject({ createsAccount: true, from: payer.publicKey(), amountStroops: 200_000_000n, memo: { type: "text", value: "welcome" } });
    expect(outcome("id")).toMatchObject({ muxedId: null, memo: { type: "id", value: MAX_U64 }, shownMemo: { type: "id", value: MAX_U64 } });
    expect(outcome("utf8")).toMatchObject({ amountStroops: 1n, memo: { type: "text", value: "café ☕ 支付" } });
    expect(outcome("badUtf8")).toMatchObject({ memo: undefined, shownMemo: { type: "text", value: "o\uFFFDk" } });
    expect(outcome("return")).toMatchObject({ memo: { type: "hash", value: "09".repeat(32) }, shownMemo: { type: "return", value: "09".repeat(32) } });
    expect(outcome("muxed")).toMatchObject({ to: m, muxedId: MAX_U64, memo: null, shownMemo: { type: "none", value: null } });
    expect(outcome("muxedMemo")).toMatchObject({ muxedId: "7", memo: { type: "text", value: "not this" } });
    expect(outcome("mint")).toMatchObject({ from: issuer.publicKey(), asset: usd, amountStroops: 100_000_000n });
    expect(outcome("strictReceive")).toMatchObject({ from: payer.publicKey(), asset: usd, amountStroops: 42_500_000n, muxedId: "11" });
    expect([outcome("multi", 0), outcome("multi", 1)]).toMatchObject([{ from: payer.publicKey(), muxedId: null }, { muxedId: "8" }]);
    expect(BigInt(outcome("multi", 1).operationId) - BigInt(outcome("multi", 0).operationId)).toBe(1n);
    expect(outcome("feeBump")).toMatchObject({ from: payer.publicKey(), memo: { type: "text", value: "bumped" } });
  });

  it("agrees on a zero create_account and a later payment, and with no assets named watches every asset", async () => {
    const z = zeroMerchant.publicKey();
    const fromHorizon = await horizonView(z);
    expect(fromHorizon.map((h) => ("ignored" in h.outcome ? h.outcome.ignored : h.outcome.memo))).toEqual(["zero_amount", { type: "id", value: "1" }]);
    const named = await rpcView(eventFilters([merchant.publicKey(), z], [xlm, usd], local.networkPassphrase));
    expect(named.get(z)).toStrictEqual(fromHorizon);
    // Without contract ids the filters match every asset contract, and Horizon lists every asset.
    expect(await rpcView(eventFilters([merchant.publicKey(), z], [], local.networkPassphrase))).toStrictEqual(named);
    const nativeOnly = (await rpcView(eventFilters([merchant.publicKey()], [xlm], local.networkPassphrase))).get(merchant.publicKey())!;
    expect(nativeOnly).toStrictEqual(named.get(merchant.publicKey())!.filter((r) => "ignored" in r.outcome || r.outcome.asset.issuer === null));
  });

  it("needs the transaction for credits only, and refuses a transaction of another event", async () => {
    const all = (await rpc.getEvents({ startLedger: 1, filters: [], limit: 10_000 })).events;
    const kinds = (event: RpcEvent) => (needsTransaction(event) ? "fetch" : "skip");
    const ofHash = (name: string) => all.filter((event) => event.txHash === sent[name]!.hash).map(kinds);
    // The fee event, then the payment's transfer (or burn).
    expect(ofHash("text")).toEqual(["skip", "fetch"]);
    expect(ofHash("burn")).toEqual(["skip", "skip"]);
    expect(ofHash("failed")).toEqual(["skip"]);
    const transfer = all.find((event) => event.txHash === sent.text!.hash && needsTransaction(event))!;
    const other = await rpc.getTransaction(sent.plain!.hash);
    if (other.status === "NOT_FOUND") throw new Error("not found");
    expect(() => incomingFromEvent(transfer, other, merchant.publicKey(), local.networkPassphrase)).toThrow(TypeError);
    // The event's transaction, read for another account: not its payment.
    const own = await rpc.getTransaction(sent.text!.hash);
    if (own.status === "NOT_FOUND") throw new Error("not found");
    expect(incomingFromEvent(transfer, own, customer.publicKey(), local.networkPassphrase)).toEqual({ ignored: "not_incoming" });
  });

  it("tells an asset contract's event from a look-alike another contract emits", async () => {
    const all = (await rpc.getEvents({ startLedger: 1, filters: [], limit: 10_000 })).events;
    const transfer = all.find((event) => event.txHash === sent.text!.hash && needsTransaction(event))!;
    expect(fromAssetContract(transfer, local.networkPassphrase)).toBe(true);
    // Any contract may emit ["transfer", from, to, "native"]: only the lumens' contract's counts.
    const usdContract = sacContractId({ code: "USD", issuer: issuer.publicKey() }, local.networkPassphrase);
    expect(fromAssetContract({ ...transfer, contractId: usdContract }, local.networkPassphrase)).toBe(false);
    expect(fromAssetContract(transfer, "Another network ; 2026")).toBe(false);
  });
});

describe("eventFilters", () => {
  const accounts = (n: number) => [merchant.publicKey(), zeroMerchant.publicKey(), ...Array.from({ length: n - 2 }, () => Keypair.random().publicKey())];
  const shape = (requests: EventFilter[][]) => requests.map((filters) => filters.map((filter) => filter.topics!.length));

  it.each([
    [1, [xlm, usd], [[2]]],
    [12, [xlm, usd], [[5, 5, 5, 5, 4]]],
    [13, [xlm, usd], [[5, 5, 5, 5, 5], [1]]],
    [100, [xlm, usd], Array(8).fill([5, 5, 5, 5, 5])],
    [25, [xlm], [[5, 5, 5, 5, 5]]],
    [26, [xlm], [[5, 5, 5, 5, 5], [1]]],
  ] as const)("packs %i accounts into requests of at most 5 filters × 5 patterns, each accepted by the RPC", async (n, assets, expected) => {
    const list = n === 1 ? [merchant.publicKey()] : accounts(n);
    const requests = eventFilters(list, assets, local.networkPassphrase);
    expect(shape(requests)).toEqual(expected);
    expect(getEventsCallsNeeded(n, assets)).toBe(requests.length);
    for (const filters of requests) await rpc.getEvents({ startLedger: 1, filters, limit: 1 });
  });

  it("counts ceil(2N/25) calls per group of 5 assets, ceil(N/25) for native alone", () => {
    const assets = (count: number) => [xlm, ...Array.from({ length: count - 1 }, (_, i) => ({ code: `A${i}`, issuer: issuer.publicKey() }))];
    for (const n of [1, 12, 13, 25, 26, 100, 1000]) {
      expect(getEventsCallsNeeded(n, [xlm, usd])).toBe(Math.ceil((2 * n) / 25));
      expect(getEventsCallsNeeded(n, [])).toBe(Math.ceil((2 * n) / 25));
      expect(getEventsCallsNeeded(n, [xlm])).toBe(Math.ceil(n / 25));
      expect(getEventsCallsNeeded(n, assets(6))).toBe(2 * Math.ceil((2 * n) / 25));
      expect(eventFilters(accounts(Math.max(n, 2)), assets(6), "p").length).toBe(getEventsCallsNeeded(Math.max(n, 2), assets(6)));
    }
    const [first] = eventFilters([merchant.publicKey()], assets(7), local.networkPassphrase);
    expect(first![0]!.contractIds).toEqual(assets(5).map((asset) => sacContractId(asset, local.networkPassphrase)));
  });

  it("names the contracts the network's events come from", async () => {
    const { events } = await rpc.getEvents({ startLedger: 1, filters: [], limit: 10_000 });
    const contracts = new Set(events.map((event) => event.contractId));
    expect(contracts).toEqual(new Set([sacContractId(xlm, local.networkPassphrase), sacContractId(usd, local.networkPassphrase)]));
  });

  it("makes requests the RPC accepts, which find the same events among 100 accounts as for two", async () => {
    const two = await rpcView(eventFilters([merchant.publicKey(), zeroMerchant.publicKey()], [xlm, usd], local.networkPassphrase));
    const requests = eventFilters(accounts(100), [xlm, usd], local.networkPassphrase);
    expect(requests).toHaveLength(8);
    expect(await rpcView(requests)).toStrictEqual(two);
  });
});
