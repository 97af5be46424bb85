import { readFileSync } from "node:fs";
import { Asset, Keypair, Memo, Networks, scValToNative, TransactionBuilder, xdr } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeTransaction } from "../src/stellar/local-horizon/decode.js";
import { type LocalHorizon, startLocalHorizon, type TransactionRecord } from "../src/stellar/local-horizon/index.js";
import { createEventBuilder } from "../src/stellar/local-rpc/events.js";
import { shape, without } from "./support/shapes.js";

// Published Stellar RPC examples (see fixtures/rpc-examples/README.md): they pin the shapes we answer with.
type Json = Record<string, unknown>;
interface Example {
  method: string;
  params: Json;
  result: Json;
}
const FIXTURES = new URL("./fixtures/rpc-examples/", import.meta.url);
const example = (name: string) => JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8")) as Example;

const TESTNET_NATIVE_CONTRACT = "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC";
const toidOf = (id: string) => BigInt(id.split("-")[0]!);
const decode = (base64: string) => scValToNative(xdr.ScVal.fromXDR(base64, "base64")) as unknown;

let local: LocalHorizon;
let paid: TransactionRecord;
let failed: TransactionRecord;
beforeAll(async () => {
  local = await startLocalHorizon({ rpcPort: 0 });
  const payer = await local.newAccount("100");
  paid = await local.pay({ from: payer, to: Keypair.random().publicKey(), amount: "5", memo: Memo.text("order-1") });
  failed = await local.pay({ from: payer, to: Keypair.random().publicKey(), amount: "1", successful: false });
});
afterAll(() => local.close());

/** Calls the local RPC as the examples did; fails on a JSON-RPC error. */
async function call(method: string, params: Json = {}): Promise<Json> {
  const res = await fetch(local.rpcUrl!, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: Json; error?: unknown };
  expect(body.error).toBeUndefined();
  return body.result!;
}

describe("the fixtures are what they claim", () => {
  const transactions = [
    ["get-transaction-success.json", example("get-transaction-success.json").result],
    ["get-transaction-failed.json", example("get-transaction-failed.json").result],
    ...(example("get-transactions.json").result.transactions as Json[]).map((tx, i) => [`get-transactions.json #${i}`, tx] as const),
  ] as const;

  it.each(transactions)("%s: the envelope hashes to txHash on testnet", (_name, tx) => {
    const hash = (passphrase: string) => TransactionBuilder.fromXDR(tx.envelopeXdr as string, passphrase).hash().toString("hex");
    expect([hash(Networks.TESTNET), hash(Networks.PUBLIC)]).toEqual([tx.txHash, expect.not.stringMatching(tx.txHash as string)]);
  });

  it.each(["get-events-native-transfers.json", "get-events-any.json"])("%s: testnet's lumen contract, TOID ids that hold ledger, transaction and operation", (name) => {
    for (const event of example(name).result.events as Json[]) {
      expect(event.contractId).toBe(TESTNET_NATIVE_CONTRACT);
      const toid = toidOf(event.id as string);
      expect([Number(toid >> 32n), Number((toid >> 12n) & 0xfffffn), Number(toid & 0xfffn)]).toEqual([event.ledger, event.transactionIndex, event.operationIndex]);
    }
  });

  it("testnet's lumen contract is the SDK's, and getTransactions' cursor is its last transaction with operation 1", () => {
    expect(Asset.native().contractId(Networks.TESTNET)).toBe(TESTNET_NATIVE_CONTRACT);
    const { transactions, cursor } = example("get-transactions.json").result as { transactions: Json[]; cursor: string };
    const last = transactions.at(-1)!;
    expect(BigInt(cursor)).toBe((BigInt(last.ledger as number) << 32n) | (BigInt(last.applicationOrder as number) << 12n) | 1n);
  });
});

describe("our events are the published ones, byte for byte", () => {
  it("rebuilds the failed payment's fee event from its envelope", () => {
    const { result } = example("get-transaction-failed.json");
    const tx = decodeTransaction(result.envelopeXdr as string, Networks.TESTNET);
    const row = { id: 0n, ledger: { sequence: result.ledger as number, closedAt: new Date() }, tx, successful: false, feeCharged: 100n, resultXdr: "", resultMetaXdr: "", ops: [] };
    const events = createEventBuilder(Networks.TESTNET)(row);
    const fee = new xdr.TransactionEvent({ stage: xdr.TransactionEventStage.transactionEventStageBeforeAllTxes(), event: events.fee });
    expect([fee.toXDR("base64")]).toEqual((result.events as Json).transactionEventsXdr);
    expect(events.operations).toEqual([]);
  });

  it("encodes a transfer's symbol and asset as the published filter and event do", async () => {
    const [published] = example("get-events-native-transfers.json").result.events as Json[];
    const ours = (await call("getEvents", { startLedger: 1, filters: [{ topics: [["AAAADwAAAAh0cmFuc2Zlcg==", "*", "*", "**"]] }] })).events as Json[];
    const topic = ours.find((event) => event.txHash === paid.hash)!.topic as string[];
    expect([topic[0], topic[3]]).toEqual([(published!.topic as string[])[0], (published!.topic as string[])[3]]);
    expect(decode(topic[0]!)).toBe("transfer");
  });
});

describe("our responses have the published shapes", () => {
  it("getHealth, getLatestLedger, and getNetwork (which names no friendbot)", async () => {
    expect(shape(await call("getHealth"))).toEqual(shape(example("get-health.json").result));
    expect(shape(await call("getLatestLedger"))).toEqual(shape(example("get-latest-ledger.json").result));
    expect(shape(await call("getNetwork"))).toEqual(shape(without(example("get-network-testnet.json").result, "friendbotUrl")));
  });

  it("getEvents, answering the published requests (on our ledgers and our lumen contract)", async () => {
    const nativeContract = Asset.native().contractId(local.networkPassphrase);
    for (const name of ["get-events-native-transfers.json", "get-events-any.json"]) {
      const { params, result } = example(name);
      const filters = ((params.filters ?? []) as Json[]).map((filter) => ({ ...filter, contractIds: [nativeContract] }));
      const ours = await call("getEvents", { ...params, startLedger: 1, filters });
      expect((ours.events as Json[]).length).toBe(2);
      expect(shape(ours)).toEqual(shape(result));
    }
  });

  it("getTransaction: a success (classic: no diagnostic events), a failure and an unknown hash", async () => {
    expect(shape(await call("getTransaction", { hash: paid.hash }))).toEqual(shape(without(example("get-transaction-success.json").result, "diagnosticEventsXdr")));
    expect(shape(await call("getTransaction", { hash: failed.hash }))).toEqual(shape(example("get-transaction-failed.json").result));
    expect(shape(await call("getTransaction", { hash: "ab".repeat(32) }))).toEqual(shape(example("get-transaction-not-found.json").result));
  });

  it("getTransactions: the page, and a successful transaction in it", async () => {
    const { params, result } = example("get-transactions.json");
    const ours = await call("getTransactions", { ...params, startLedger: paid.ledger, pagination: { limit: 1 } });
    expect(shape({ ...ours, transactions: [] })).toEqual(shape({ ...result, transactions: [] }));
    const published = (result.transactions as Json[]).find((tx) => tx.status === "SUCCESS")!;
    expect(shape((ours.transactions as Json[])[0])).toEqual(shape(without(published, "diagnosticEventsXdr")));
  });
});
