import { readFileSync } from "node:fs";
import { Asset, Horizon, Keypair, Memo, Networks, Operation, TransactionBuilder } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeTransaction } from "../src/stellar/local-horizon/decode.js";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { type Json, transactionJson } from "../src/stellar/local-horizon/records.js";
import { shape, without } from "./support/shapes.js";

// Real Horizon responses (see fixtures/horizon-examples/README.md; a copy of shared/horizon-examples,
// kept in the repository so the suite runs from any clone): they pin the shapes we render.
const FIXTURES = new URL("./fixtures/horizon-examples/", import.meta.url);
const fixture = (name: string) => JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8")) as Json;

let horizon: LocalHorizon;
let server: Horizon.Server;
beforeAll(async () => {
  horizon = await startLocalHorizon();
  server = new Horizon.Server(horizon.url, { allowHttp: true });
});
afterAll(() => horizon.close());

const getJson = async (path: string) => (await (await fetch(`${horizon.url}${path}`)).json()) as Json;
const records = (page: Json) => (page._embedded as { records: Json[] }).records;

describe("the fixtures are what they claim", () => {
  const transactions: Array<[string, Json]> = [
    ...["transaction-memo-text.json", "transaction-memo-text-utf8.json", "transaction-memo-hash.json", "transaction-memo-none.json", "transaction-submit-response.json"].map(
      (name): [string, Json] => [name, fixture(name)],
    ),
    ...records(fixture("account-transactions-page.json")).map((record, i): [string, Json] => [`account-transactions-page.json #${i}`, record]),
  ];

  it.each(transactions)("%s: the envelope hashes to `hash` under exactly one network", (name, record) => {
    const matches = [Networks.PUBLIC, Networks.TESTNET].filter(
      (passphrase) => TransactionBuilder.fromXDR(record.envelope_xdr as string, passphrase).hash().toString("hex") === record.hash,
    );
    expect(matches).toEqual([name === "transaction-submit-response.json" ? Networks.TESTNET : Networks.PUBLIC]);
  });

  it.each(transactions)("%s: our rendering of its envelope matches Horizon's fields", (name, record) => {
    const passphrase = name === "transaction-submit-response.json" ? Networks.TESTNET : Networks.PUBLIC;
    const tx = decodeTransaction(record.envelope_xdr as string, passphrase);
    const ours = transactionJson(
      {
        id: BigInt(record.paging_token as string),
        ledger: { sequence: record.ledger as number, closedAt: new Date(record.created_at as string) },
        tx,
        successful: true,
        feeCharged: BigInt(record.fee_charged as string | number),
        resultXdr: record.result_xdr as string,
        resultMetaXdr: record.result_meta_xdr as string,
        ops: [],
      },
      "https://horizon-testnet.stellar.org",
    );
    const compared = ["id", "hash", "paging_token", "ledger", "created_at", "memo_type", "memo", "memo_bytes", "source_account", "source_account_sequence"];
    compared.push("fee_account", "operation_count", "envelope_xdr", "signatures", "preconditions");
    for (const key of compared) {
      if (key in record) expect([key, ours[key]]).toEqual([key, record[key]]);
      // Keys the example lacks because of its Horizon version are not checked; a memo we add where Horizon has none is.
      else if (key === "memo" || key === "memo_bytes") expect(ours).not.toHaveProperty(key);
    }
    // Every link the example has, same href (the oldest example lacks the `transaction` link).
    expect(ours._links).toMatchObject(record._links as Json);
    // The oldest example has numeric fees; the value must still agree.
    expect(ours.max_fee).toBe(String(record.max_fee));
  });
});

describe("our records have Horizon's shapes", () => {
  it("payments: native, credit, create_account and account_merge, plus an effect and the page links", async () => {
    const issuer = await horizon.newAccount("10");
    const payer = await horizon.newAccount("1000");
    const merchant = Keypair.random();
    await horizon.fund(merchant.publicKey(), "1");
    await horizon.pay({ from: payer, to: merchant.publicKey(), amount: "688.4065454" });
    const usd = new Asset("USD", issuer.publicKey());
    await horizon.pay({ from: issuer, to: merchant.publicKey(), amount: "84.9410878", asset: usd });
    const leaving = await horizon.newAccount("2");
    const merge = new TransactionBuilder(await server.loadAccount(leaving.publicKey()), { fee: "100", networkPassphrase: horizon.networkPassphrase })
      .addOperation(Operation.accountMerge({ destination: merchant.publicKey() }))
      .setTimeout(60)
      .build();
    merge.sign(leaving);
    await horizon.submit(merge);

    const page = await getJson(`/accounts/${merchant.publicKey()}/payments`);
    const [created, native, credit, merged] = records(page);
    expect(shape(created)).toEqual(shape(fixture("create-account.json")));
    expect(shape(native)).toEqual(shape(fixture("payment-native.json")));
    expect(shape(credit)).toEqual(shape(fixture("payment-credit.json")));
    expect(shape(merged)).toEqual(shape(fixture("account-merge.json")));
    expect(credit).toMatchObject({ asset_type: "credit_alphanum4", asset_code: "USD", amount: "84.9410878" });

    const effects = records(await getJson(`/operations/${native!.id as string}/effects`));
    expect(shape(effects[0])).toEqual(shape(fixture("effect-account-credited.json")));
    expect(effects[0]!.id).toBe(`${(native!.id as string).padStart(19, "0")}-0000000001`);

    // Page links: same parameters as Horizon's, next after the last record, prev back from the first.
    const expected = fixture("account-payments-page.json")._links as Record<string, { href: string }>;
    const ours = page._links as Record<string, { href: string }>;
    expect(shape(ours)).toEqual(shape(expected));
    const query = (href: string) => Object.fromEntries(new URL(href).searchParams);
    for (const rel of ["self", "next", "prev"]) {
      expect(Object.keys(query(ours[rel]!.href))).toEqual(Object.keys(query(expected[rel]!.href)));
      expect(new URL(ours[rel]!.href).pathname).toBe(`/accounts/${merchant.publicKey()}/payments`);
    }
    expect(query(ours.self!.href)).toEqual({ cursor: "", limit: "10", order: "asc" });
    expect(query(ours.next!.href)).toEqual({ cursor: merged!.paging_token, limit: "10", order: "asc" });
    expect(query(ours.prev!.href)).toEqual({ cursor: created!.paging_token, limit: "10", order: "desc" });
  });

  it("transactions: text and hash memos, and the submit response", async () => {
    const payer = await horizon.newAccount("10");
    const to = Keypair.random().publicKey();
    const text = await horizon.pay({ from: payer, to, amount: "1", memo: Memo.text("hello universe") });
    const fetched = await getJson(`/transactions/${text.hash}`);
    // `pay` sets no max time; a time-bounded transaction carries both bounds, as in the example.
    const account = await server.loadAccount(payer.publicKey());
    const bounded = new TransactionBuilder(account, { fee: "100", networkPassphrase: horizon.networkPassphrase })
      .addOperation(Operation.payment({ destination: to, asset: Asset.native(), amount: "1" }))
      .addMemo(Memo.text("hello universe"))
      .setTimeout(300)
      .build();
    bounded.sign(payer);
    const res = await fetch(`${horizon.url}/transactions`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `tx=${encodeURIComponent(bounded.toEnvelope().toXDR("base64"))}`,
    });
    expect(res.status).toBe(200);
    const submitted = (await res.json()) as Json;
    expect(shape(submitted)).toEqual(shape(fixture("transaction-memo-text.json")));
    expect(shape(await getJson(`/transactions/${submitted.hash as string}`))).toEqual(shape(fixture("transaction-memo-text.json")));
    // The published submit example predates `preconditions`, though its envelope has time bounds.
    expect(shape(without(submitted, "preconditions"))).toEqual(shape(fixture("transaction-submit-response.json")));
    expect(fetched).not.toHaveProperty("preconditions.timebounds.max_time");

    const hashMemo = await horizon.pay({ from: payer, to, amount: "1", memo: Memo.hash(Buffer.alloc(32, 7)) });
    const hashRecord = await getJson(`/transactions/${hashMemo.hash}`);
    // The hash example is an older Horizon: numeric fees, no fee_account, no preconditions, no `transaction` link.
    const old = fixture("transaction-memo-hash.json");
    const normalised = { ...old, fee_charged: String(old.fee_charged), max_fee: String(old.max_fee) };
    const links = without(hashRecord._links as Json, "transaction");
    expect(shape({ ...without(hashRecord, "fee_account", "preconditions"), _links: links })).toEqual(shape(normalised));
  });

  it("our records' hash is their envelope's hash under our passphrase only", async () => {
    const payer = await horizon.newAccount("10");
    const record = await horizon.pay({ from: payer, to: Keypair.random().publicKey(), amount: "1" });
    const parse = (passphrase: string) => TransactionBuilder.fromXDR(record.envelope_xdr, passphrase).hash().toString("hex");
    expect(parse(horizon.networkPassphrase)).toBe(record.hash);
    expect(parse(Networks.PUBLIC)).not.toBe(record.hash);
    expect(parse(Networks.TESTNET)).not.toBe(record.hash);
  });
});
