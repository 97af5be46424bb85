import { Account, Asset, Horizon, Keypair, Memo, MuxedAccount, nativeToScVal, Networks, Operation, rpc, scValToNative, TransactionBuilder, xdr } from "@stellar/stellar-sdk";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type LocalHorizon, startLocalHorizon, type TransactionRecord } from "../src/stellar/local-horizon/index.js";
import { closedPort } from "./support/process.js";

let local: LocalHorizon;
let server: rpc.Server;
let horizon: Horizon.Server;

const payer = Keypair.random();
const merchant = Keypair.random();
const customer = Keypair.random();
const issuer = Keypair.random();
const usd = new Asset("USD", issuer.publicKey());
const memoHash = Buffer.alloc(32, 7);
const muxedMerchant = new MuxedAccount(new Account(merchant.publicKey(), "0"), "7").accountId();

/** The transactions the scenario records, by what they are. */
const paid: Record<string, TransactionRecord> = {};
let nativeContract: string;
let usdContract: string;

const symbol = (name: string) => xdr.ScVal.scvSymbol(name).toXDR("base64");
const address = (account: string) => nativeToScVal(account, { type: "address" }).toXDR("base64");

/** An event as a test reads it: its contract, topics and value decoded by the SDK, and its transaction. */
const decoded = (event: rpc.Api.EventResponse) => ({
  contractId: event.contractId?.contractId(),
  topic: event.topic.map((topic) => scValToNative(topic) as unknown),
  value: scValToNative(event.value) as unknown,
  txHash: event.txHash,
});

async function pathPayment(from: Keypair, to: string, destAsset: Asset, amount: string): Promise<TransactionRecord> {
  const tx = new TransactionBuilder(await horizon.loadAccount(from.publicKey()), { fee: "100", networkPassphrase: local.networkPassphrase })
    .addOperation(Operation.pathPaymentStrictSend({ sendAsset: Asset.native(), sendAmount: amount, destination: to, destAsset, destMin: amount, path: [] }))
    .setTimeout(60)
    .build();
  tx.sign(from);
  return local.submit(tx);
}

/** A JSON-RPC call by hand, for what the SDK never sends. */
async function rawCall(body: unknown): Promise<{ result?: unknown; error?: { code: number; message: string } }> {
  const res = await fetch(local.rpcUrl!, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
  expect(res.status).toBe(200);
  return (await res.json()) as { result?: unknown; error?: { code: number; message: string } };
}

beforeAll(async () => {
  local = await startLocalHorizon({ rpcPort: 0 });
  server = new rpc.Server(local.rpcUrl!, { allowHttp: true });
  horizon = new Horizon.Server(local.url, { allowHttp: true });
  nativeContract = Asset.native().contractId(local.networkPassphrase);
  usdContract = usd.contractId(local.networkPassphrase);
  for (const account of [payer, customer, issuer]) await local.fund(account.publicKey(), "1000");
  const m = merchant.publicKey();
  paid.text = await local.pay({ from: payer, to: m, amount: "5", memo: Memo.text("order-1") });
  paid.id = await local.pay({ from: payer, to: m, amount: "1.5", memo: Memo.id("42") });
  paid.hash = await local.pay({ from: payer, to: m, amount: "2", memo: Memo.hash(memoHash) });
  paid.muxed = await local.pay({ from: payer, to: muxedMerchant, amount: "3", memo: Memo.text("not this") });
  paid.plain = await local.pay({ from: payer, to: m, amount: "0.5" });
  paid.failed = await local.pay({ from: payer, to: m, amount: "9", successful: false });
  paid.mint = await local.pay({ from: issuer, to: m, amount: "10", asset: usd, memo: Memo.text("inv-9") });
  paid.mintToCustomer = await local.pay({ from: issuer, to: customer.publicKey(), amount: "50", asset: usd });
  paid.credit = await local.pay({ from: customer, to: m, amount: "2.5", asset: usd });
  paid.path = await pathPayment(payer, m, usd, "6");
  paid.burn = await local.pay({ from: merchant, to: issuer.publicKey(), amount: "4", asset: usd });
});
afterAll(() => local.close());

describe("getEvents: CAP-67 events of real payments", () => {
  it("finds every lumen transfer to an account, with its amount and to_muxed_id (muxed id over memo)", async () => {
    const m = merchant.publicKey();
    const { events } = await server.getEvents({
      startLedger: 1,
      filters: [{ type: "contract", contractIds: [nativeContract], topics: [[symbol("transfer"), "*", address(m), "**"]] }],
    });
    const transfer = (amount: bigint, muxedId?: unknown) => ({
      contractId: nativeContract,
      topic: ["transfer", payer.publicKey(), m, "native"],
      value: muxedId === undefined ? amount : { amount, to_muxed_id: muxedId },
    });
    expect(events.map(decoded)).toEqual([
      { ...transfer(50_000_000n, "order-1"), txHash: paid.text!.hash },
      { ...transfer(15_000_000n, 42n), txHash: paid.id!.hash },
      { ...transfer(20_000_000n, memoHash), txHash: paid.hash!.hash },
      { ...transfer(30_000_000n, 7n), txHash: paid.muxed!.hash },
      { ...transfer(5_000_000n), txHash: paid.plain!.hash },
    ]);
    expect(events.every((event) => event.type === "contract" && event.inSuccessfulContractCall)).toBe(true);
    expect(events[0]!.ledger).toBe(paid.text!.ledger);
    expect(events[0]!.ledgerClosedAt).toBe(paid.text!.created_at);
  });

  it("reports the issuer paying as mint, being paid as burn, and a path payment's delivery as a transfer", async () => {
    const m = merchant.publicKey();
    const sep11 = `USD:${issuer.publicKey()}`;
    const received = await server.getEvents({
      startLedger: 1,
      filters: [{ contractIds: [usdContract], topics: [[symbol("transfer"), "*", address(m), "**"], [symbol("mint"), address(m), "**"]] }],
    });
    expect(received.events.map(decoded)).toEqual([
      { contractId: usdContract, topic: ["mint", m, sep11], value: { amount: 100_000_000n, to_muxed_id: "inv-9" }, txHash: paid.mint!.hash },
      { contractId: usdContract, topic: ["transfer", customer.publicKey(), m, sep11], value: 25_000_000n, txHash: paid.credit!.hash },
      { contractId: usdContract, topic: ["transfer", payer.publicKey(), m, sep11], value: 60_000_000n, txHash: paid.path!.hash },
    ]);
    const burned = await server.getEvents({ startLedger: 1, filters: [{ topics: [[symbol("burn"), address(m), "**"]] }] });
    expect(burned.events.map(decoded)).toEqual([{ contractId: usdContract, topic: ["burn", m, sep11], value: 40_000_000n, txHash: paid.burn!.hash }]);
  });

  it("keeps only the fee of a failed transaction, and matches topic lengths as RPC does", async () => {
    const all = await server.getEvents({ startLedger: 1, filters: [], limit: 10_000 });
    const ofFailed = all.events.filter((event) => event.txHash === paid.failed!.hash).map(decoded);
    expect(ofFailed).toEqual([{ contractId: nativeContract, topic: ["fee", payer.publicKey()], value: 100n, txHash: paid.failed!.hash }]);
    expect(all.events.find((event) => event.txHash === paid.failed!.hash)!.inSuccessfulContractCall).toBe(false);

    const m = address(merchant.publicKey());
    const exact = async (topic: string[]) => (await server.getEvents({ startLedger: 1, filters: [{ contractIds: [nativeContract], topics: [topic] }] })).events;
    // A transfer has four topics: three segments match none, four with `*` match what `**` matches.
    expect(await exact([symbol("transfer"), "*", m])).toEqual([]);
    expect((await exact([symbol("transfer"), "*", m, "*"])).map((event) => event.id)).toEqual((await exact([symbol("transfer"), "*", m, "**"])).map((event) => event.id));
  });

  it("pages with the cursor through every event once, and then waits at the latest ledger for new ones", async () => {
    const all = await server.getEvents({ startLedger: 1, filters: [], limit: 10_000 });
    expect(all.events.length).toBeGreaterThan(20);
    const seen: string[] = [];
    let page = await server.getEvents({ startLedger: 1, filters: [], limit: 3 });
    seen.push(...page.events.map((event) => event.id));
    while (page.events.length === 3) {
      page = await server.getEvents({ cursor: page.cursor, filters: [], limit: 3 });
      seen.push(...page.events.map((event) => event.id));
    }
    expect(seen).toEqual(all.events.map((event) => event.id));
    // Ids sort as the events happened: ledger, transaction (0 for fees), operation, index.
    expect([...seen].sort()).toEqual(seen);

    // The cursor of a short page is the end of the latest ledger: valid until a new ledger brings more.
    const idle = await server.getEvents({ cursor: page.cursor, filters: [] });
    expect(idle.events).toEqual([]);
    const next = await local.pay({ from: payer, to: merchant.publicKey(), amount: "1" });
    const fresh = await server.getEvents({ cursor: idle.cursor, filters: [] });
    expect(fresh.events.map(decoded)).toEqual([
      { contractId: nativeContract, topic: ["fee", payer.publicKey()], value: 100n, txHash: next.hash },
      { contractId: nativeContract, topic: ["transfer", payer.publicKey(), merchant.publicKey(), "native"], value: 10_000_000n, txHash: next.hash },
    ]);
  });
});

describe("getTransaction and getTransactions", () => {
  it("finds a paid transaction with its envelope, result, events, ledger and close time", async () => {
    const record = paid.text!;
    const found = await server.getTransaction(record.hash);
    expect(found).toMatchObject({ status: rpc.Api.GetTransactionStatus.SUCCESS, txHash: record.hash, ledger: record.ledger, feeBump: false, applicationOrder: 1 });
    if (found.status !== rpc.Api.GetTransactionStatus.SUCCESS) throw new Error("not found");
    expect(found.envelopeXdr.toXDR("base64")).toBe(record.envelope_xdr);
    expect(found.resultXdr.toXDR("base64")).toBe(record.result_xdr);
    expect(found.createdAt).toBe(String(Date.parse(record.created_at) / 1000));
    const [transfer] = found.events.contractEventsXdr[0]!;
    expect(transfer!.body().v0().topics().map((topic) => scValToNative(topic) as unknown)).toEqual(["transfer", payer.publicKey(), merchant.publicKey(), "native"]);
    expect(found.events.transactionEventsXdr.map((event) => event.stage().name)).toEqual(["transactionEventStageBeforeAllTxes"]);

    expect((await server.getTransaction(paid.failed!.hash)).status).toBe(rpc.Api.GetTransactionStatus.FAILED);
    expect((await server.getTransaction("ab".repeat(32))).status).toBe(rpc.Api.GetTransactionStatus.NOT_FOUND);
  });

  it("pages through every transaction once, in ledger order", async () => {
    const hashes: string[] = [];
    let page = await server.getTransactions({ startLedger: 1, pagination: { limit: 4 } });
    hashes.push(...page.transactions.map((tx) => tx.txHash));
    while (page.transactions.length === 4) {
      page = await server.getTransactions({ pagination: { cursor: page.cursor, limit: 4 } });
      hashes.push(...page.transactions.map((tx) => tx.txHash));
    }
    const expected = Object.values(paid).map((record) => record.hash);
    expect(hashes.filter((hash) => expected.includes(hash))).toEqual(expected);
    expect(new Set(hashes).size).toBe(hashes.length);
    // The funding transactions came first; a later page would start after the latest ledger.
    expect(hashes.length).toBeGreaterThan(expected.length);
    expect((await server.getTransactions({ pagination: { cursor: page.cursor } })).transactions).toEqual([]);
  });
});

describe("getHealth, getLatestLedger and getNetwork", () => {
  it("agree with the chain Horizon serves", async () => {
    const last = await local.pay({ from: payer, to: merchant.publicKey(), amount: "0.1" });
    const root = await horizon.root();
    const health = await server.getHealth();
    expect(health).toEqual({ status: "healthy", latestLedger: root.history_latest_ledger, oldestLedger: 1, ledgerRetentionWindow: root.history_latest_ledger, latestLedgerCloseTime: expect.any(String), oldestLedgerCloseTime: expect.any(String) });

    const latest = await server.getLatestLedger();
    expect(latest.sequence).toBe(root.history_latest_ledger);
    expect(latest.closeTime).toBe(String(Date.parse(root.history_latest_ledger_closed_at) / 1000));
    expect(latest.headerXdr.ledgerSeq()).toBe(latest.sequence);
    expect(latest.id).toMatch(/^[0-9a-f]{64}$/);
    // The latest ledger holds the last transaction recorded, with its result.
    expect(latest.sequence).toBe(last.ledger);
    const meta = latest.metadataXdr.v0();
    expect(meta.txSet().txes().map((envelope) => envelope.toXDR("base64"))).toEqual([last.envelope_xdr]);
    expect(meta.txProcessing().map((tx) => tx.result().result().toXDR("base64"))).toEqual([last.result_xdr]);

    expect(await server.getNetwork()).toEqual({ passphrase: Networks.STANDALONE, protocolVersion: root.current_protocol_version });
  });
});

describe("JSON-RPC errors", () => {
  const transfer = symbol("transfer");
  const request = (method: string, params: unknown) => ({ jsonrpc: "2.0", id: 1, method, params });
  it.each([
    ["an unknown method", -32601, 'no such method "sendTransaction"', request("sendTransaction", {})],
    ["getEvents without a start", -32602, "startLedger must be positive", request("getEvents", { filters: [] })],
    ["a start past the latest ledger", -32600, "startLedger must be within the ledger range: 1 - ", request("getEvents", { startLedger: 1_000_000 })],
    ["six filters", -32602, "maximum 5 filters per request", request("getEvents", { startLedger: 1, filters: Array(6).fill({}) })],
    ["six topic patterns", -32602, "filter 1 invalid: maximum 5 topics per filter", request("getEvents", { startLedger: 1, filters: [{ topics: Array(6).fill([transfer]) }] })],
    ["`**` before the end", -32602, "filter 1 invalid: topic 1 invalid: segment 1 invalid: wildcard '**' is only allowed as the last segment", request("getEvents", { startLedger: 1, filters: [{ topics: [["**", transfer]] }] })],
    ["five segments", -32602, "topic cannot have more than 4 segments", request("getEvents", { startLedger: 1, filters: [{ topics: [Array(5).fill("*")] }] })],
    ["a bad contract id", -32602, "filter 1 invalid: contract ID 1 invalid", request("getEvents", { startLedger: 1, filters: [{ contractIds: ["GABC"] }] })],
    ["a start with a cursor", -32602, "ledger ranges and cursor cannot both be set", request("getEvents", { startLedger: 1, pagination: { cursor: "0000000004294967296-0000000000" } })],
    ["a limit over 10000", -32602, "limit must not exceed 10000", request("getEvents", { startLedger: 1, pagination: { limit: 10_001 } })],
    ["xdrFormat json", -32602, "xdrFormat 'json' is not supported", request("getEvents", { startLedger: 1, xdrFormat: "json" })],
    ["a short hash", -32602, "unexpected hash length (3)", request("getTransaction", { hash: "abc" })],
    ["a getTransactions limit over 200", -32600, "limit must not exceed 200", request("getTransactions", { startLedger: 1, pagination: { limit: 201 } })],
    ["not JSON", -32700, "parse error", "{"],
    ["no jsonrpc version", -32600, "invalid request", { id: 1, method: "getHealth" }],
  ])("refuses %s with code %i", async (_what, code, message, body) => {
    const { error, result } = await rawCall(body);
    expect(result).toBeUndefined();
    expect(error?.code).toBe(code);
    expect(error?.message).toContain(message);
  });

  it("answers a batch in order, the SDK's errors as thrown objects", async () => {
    const answers = (await rawCall([
      { jsonrpc: "2.0", id: "a", method: "getNetwork" },
      { jsonrpc: "2.0", id: "b", method: "nope" },
    ])) as unknown as Array<{ id: string; result?: unknown; error?: { code: number } }>;
    expect(answers.map((answer) => [answer.id, answer.error?.code ?? "ok"])).toEqual([["a", "ok"], ["b", -32601]]);
    await expect(server.getEvents({ startLedger: 1, filters: [{ topics: [["not base64!"]] }] })).rejects.toMatchObject({ code: -32602 });
  });
});

describe("startLocalHorizon({ rpcPort })", () => {
  it("fails to start, releasing Horizon's port, when the RPC's port is taken", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    const horizonPort = await closedPort();
    try {
      await expect(startLocalHorizon({ port: horizonPort, rpcPort: (taken.address() as AddressInfo).port })).rejects.toMatchObject({ code: "EADDRINUSE" });
      // Horizon had bound its port first: it is free again.
      const reuse = createServer().listen(horizonPort, "127.0.0.1");
      await once(reuse, "listening");
      reuse.close();
    } finally {
      taken.close();
    }
  });
});

describe("LOCAL_RPC_PORT", () => {
  it("defaults to the port after the local Horizon's, and to a free one when that is picked", () => {
    expect(loadConfig({}).localRpc).toEqual({ port: 8001 });
    expect(loadConfig({ LOCAL_HORIZON_PORT: "9000" }).localRpc).toEqual({ port: 9001 });
    expect(loadConfig({ LOCAL_HORIZON_PORT: "0" }).localRpc).toEqual({ port: 0 });
    expect(loadConfig({ LOCAL_HORIZON_PORT: "9000", LOCAL_RPC_PORT: "7000" }).localRpc).toEqual({ port: 7000 });
    expect(() => loadConfig({ LOCAL_HORIZON_PORT: "65535" })).toThrow(/LOCAL_RPC_PORT must be set when LOCAL_HORIZON_PORT is 65535/);
    expect(() => loadConfig({ LOCAL_RPC_PORT: "rpc" })).toThrow(/LOCAL_RPC_PORT must be an integer between 0 and 65535/);
  });
});
