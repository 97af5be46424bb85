import {
  Account,
  Asset,
  Horizon,
  Keypair,
  Memo,
  MuxedAccount,
  NotFoundError,
  Operation,
  TimeoutInfinite,
  type Transaction,
  TransactionBuilder,
  type xdr,
} from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalHorizonError, type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";

let horizon: LocalHorizon;
let server: Horizon.Server;

beforeAll(async () => {
  horizon = await startLocalHorizon();
  server = new Horizon.Server(horizon.url, { allowHttp: true });
});
afterAll(() => horizon.close());

/** A transaction from `source` at its current sequence number (read through the SDK's loadAccount). */
async function buildTx(source: Keypair, ops: xdr.Operation[], memo?: Memo): Promise<Transaction> {
  const account = await server.loadAccount(source.publicKey());
  const builder = new TransactionBuilder(account, { fee: "100", networkPassphrase: horizon.networkPassphrase }).setTimeout(60);
  for (const op of ops) builder.addOperation(op);
  if (memo) builder.addMemo(memo);
  const tx = builder.build();
  tx.sign(source);
  return tx;
}

/** Horizon's error body from whatever the SDK rejected with. */
function problemOf(error: unknown): { status: number; extras: { result_codes: { transaction: string; operations?: string[] } } } {
  const e = error as { response?: { data?: unknown } | unknown };
  const response = e.response as { data?: unknown } | undefined;
  return (response && typeof response === "object" && "data" in response ? response.data : response) as ReturnType<typeof problemOf>;
}

describe("submitting and reading back through the SDK", () => {
  it("lists a submitted payment with its joined transaction, memo, amount and asset", async () => {
    const alice = await horizon.newAccount("100");
    const bob = await horizon.newAccount("5");
    const tx = await buildTx(alice, [Operation.payment({ destination: bob.publicKey(), asset: Asset.native(), amount: "12.5" })], Memo.text("order-42"));
    const submitted = await server.submitTransaction(tx);
    expect(submitted.hash).toBe(tx.hash().toString("hex"));
    expect(submitted.successful).toBe(true);

    const page = await server.payments().forAccount(bob.publicKey()).join("transactions").order("desc").limit(1).call();
    const payment = page.records[0] as Horizon.ServerApi.PaymentOperationRecord & { transaction_attr: Horizon.HorizonApi.TransactionResponse };
    expect(payment).toMatchObject({ type: "payment", from: alice.publicKey(), to: bob.publicKey(), amount: "12.5000000", asset_type: "native" });
    expect(payment.transaction_hash).toBe(submitted.hash);
    expect(payment.transaction_attr).toMatchObject({ hash: submitted.hash, memo_type: "text", memo: "order-42", successful: true });
    expect((await payment.transaction()).hash).toBe(submitted.hash);

    // Fee and payment left alice; the sequence number moved on.
    expect(horizon.balance(alice.publicKey())).toBe("87.4999900");
    expect(horizon.balance(bob.publicKey())).toBe("17.5000000");
    expect((await server.loadAccount(alice.publicKey())).sequenceNumber()).toBe(tx.sequence);
  });

  it("serves a transaction, its operations and an operation's effects", async () => {
    const alice = await horizon.newAccount("50");
    const bob = Keypair.random().publicKey();
    const tx = await buildTx(alice, [
      Operation.createAccount({ destination: bob, startingBalance: "3" }),
      Operation.payment({ destination: bob, asset: Asset.native(), amount: "1.25" }),
    ]);
    await server.submitTransaction(tx);
    const hash = tx.hash().toString("hex");

    const record = await server.transactions().transaction(hash).call();
    expect(record).toMatchObject({ hash, id: hash, operation_count: 2, source_account: alice.publicKey(), envelope_xdr: tx.toEnvelope().toXDR("base64") });
    expect(BigInt(record.paging_token) & 0xfffn).toBe(0n);

    const ops = await server.operations().forTransaction(hash).call();
    expect(ops.records.map((op) => op.type)).toEqual(["create_account", "payment"]);
    // TOIDs: the transaction's id with the operation index (from 1) in the low 12 bits.
    expect(ops.records.map((op) => BigInt(op.id) - BigInt(record.paging_token))).toEqual([1n, 2n]);

    const effects = await server.effects().forOperation(ops.records[1]!.id).call();
    expect(effects.records.map((e) => [e.type, e.account, (e as unknown as { amount: string }).amount])).toEqual([
      ["account_credited", bob, "1.2500000"],
      ["account_debited", alice.publicKey(), "1.2500000"],
    ]);
    expect(effects.records[0]!.paging_token).toBe(`${ops.records[1]!.id}-1`);
    const created = await server.effects().forOperation(ops.records[0]!.id).call();
    expect(created.records.map((e) => e.type)).toEqual(["account_created", "account_debited", "signer_created"]);
    expect(horizon.balance(bob)).toBe("4.2500000");
  });

  it("serves the root and fee stats the SDK reads", async () => {
    expect(await server.fetchBaseFee()).toBe(100);
    const root = await server.root();
    expect(root.network_passphrase).toBe(horizon.networkPassphrase);
    const record = await horizon.fund(Keypair.random().publicKey(), "1");
    expect((await server.root()).history_latest_ledger).toBe(record.ledger);
  });

  it("answers 404 for unknown resources and 400 for bad query parameters", async () => {
    await expect(server.transactions().transaction("ab".repeat(32)).call()).rejects.toBeInstanceOf(NotFoundError);
    await expect(server.loadAccount(Keypair.random().publicKey())).rejects.toBeInstanceOf(NotFoundError);
    const bad = await fetch(`${horizon.url}/accounts/${horizon.root.publicKey()}/payments?limit=201`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("application/problem+json");
    expect(await bad.json()).toMatchObject({ type: "https://stellar.org/horizon-errors/bad_request", extras: { invalid_field: "limit" } });
    const badCursor = await fetch(`${horizon.url}/payments?cursor=abc`);
    expect(await badCursor.json()).toMatchObject({ extras: { invalid_field: "cursor" } });
  });
});

describe("paging", () => {
  it("pages with cursor, order, limit and next()/prev() through the SDK", async () => {
    const payer = await horizon.newAccount("100");
    const merchant = await horizon.newAccount("1");
    for (let i = 1; i <= 5; i++) await horizon.pay({ from: payer, to: merchant.publicKey(), amount: String(i) });

    const builder = () => server.payments().forAccount(merchant.publicKey());
    const all = await builder().limit(200).call();
    // The create_account that funded it, then five payments.
    expect(all.records.map((r) => r.type)).toEqual(["create_account", "payment", "payment", "payment", "payment", "payment"]);
    const amounts = all.records.slice(1).map((r) => (r as Horizon.ServerApi.PaymentOperationRecord).amount);
    expect(amounts).toEqual(["1.0000000", "2.0000000", "3.0000000", "4.0000000", "5.0000000"]);

    const first = await builder().limit(2).call();
    expect(first.records.map((r) => r.id)).toEqual(all.records.slice(0, 2).map((r) => r.id));
    const second = await first.next();
    expect(second.records.map((r) => r.id)).toEqual(all.records.slice(2, 4).map((r) => r.id));
    const back = await second.prev();
    expect(back.records.map((r) => r.id)).toEqual([all.records[1]!.id, all.records[0]!.id]);

    const desc = await builder().order("desc").limit(3).call();
    expect(desc.records.map((r) => r.id)).toEqual(all.records.slice(3).reverse().map((r) => r.id));
    const afterCursor = await builder().cursor(all.records[3]!.paging_token).call();
    expect(afterCursor.records.map((r) => r.id)).toEqual(all.records.slice(4).map((r) => r.id));
    const beforeCursor = await builder().cursor(all.records[2]!.paging_token).order("desc").call();
    expect(beforeCursor.records.map((r) => r.id)).toEqual([all.records[1]!.id, all.records[0]!.id]);
    expect((await builder().cursor("now").call()).records).toEqual([]);
  });

  it("keeps join and include_failed in the page links", async () => {
    const payer = await horizon.newAccount("10");
    await horizon.pay({ from: payer, to: Keypair.random().publicKey(), amount: "1" });
    const res = await fetch(`${horizon.url}/accounts/${payer.publicKey()}/payments?join=transactions&include_failed=true&limit=1`);
    const page = (await res.json()) as { _links: Record<string, { href: string }>; _embedded: { records: Array<{ paging_token: string; transaction: unknown }> } };
    const next = new URL(page._links.next!.href);
    expect(Object.fromEntries(next.searchParams)).toEqual({
      cursor: page._embedded.records[0]!.paging_token,
      include_failed: "true",
      join: "transactions",
      limit: "1",
      order: "asc",
    });
    expect(page._embedded.records[0]!.transaction).toBeTypeOf("object");
  });
});

describe("rejections", () => {
  it("rejects a bad signature with tx_bad_auth and a stale sequence number with tx_bad_seq", async () => {
    const alice = await horizon.newAccount("10");
    const op = Operation.payment({ destination: horizon.root.publicKey(), asset: Asset.native(), amount: "1" });
    const account = await server.loadAccount(alice.publicKey());
    const forged = new TransactionBuilder(account, { fee: "100", networkPassphrase: horizon.networkPassphrase }).addOperation(op).setTimeout(60).build();
    forged.sign(Keypair.random());
    const error = await server.submitTransaction(forged).catch((e: unknown) => e);
    expect(problemOf(error)).toMatchObject({ status: 400, type: "https://stellar.org/horizon-errors/transaction_failed", extras: { result_codes: { transaction: "tx_bad_auth" } } });

    // Signed for another network: the signature does not verify under this passphrase.
    const sequence = (await server.loadAccount(alice.publicKey())).sequenceNumber();
    const otherNetwork = new TransactionBuilder(new Account(alice.publicKey(), sequence), { fee: "100", networkPassphrase: "Test SDF Network ; September 2015" })
      .addOperation(op)
      .setTimeout(60)
      .build();
    otherNetwork.sign(alice);
    await expect(horizon.submit(otherNetwork)).rejects.toMatchObject({ problem: { extras: { result_codes: { transaction: "tx_bad_auth" } } } });

    const good = await buildTx(alice, [op]);
    await server.submitTransaction(good);
    const replay = await server.submitTransaction(good).catch((e: unknown) => e);
    expect(problemOf(replay).extras.result_codes.transaction).toBe("tx_bad_seq");
    expect(horizon.balance(alice.publicKey())).toBe("8.9999900");
  });

  it("refuses operations it does not model with tx_not_supported", async () => {
    const trader = await horizon.newAccount("10");
    const offer = await buildTx(trader, [
      Operation.manageSellOffer({ selling: Asset.native(), buying: new Asset("USD", horizon.root.publicKey()), amount: "1", price: "1" }),
    ]);
    await expect(horizon.submit(offer)).rejects.toMatchObject({ problem: { extras: { result_codes: { transaction: "tx_not_supported" } } } });
    expect((await server.loadAccount(trader.publicKey())).sequenceNumber()).toBe((BigInt(offer.sequence) - 1n).toString());
  });

  it("rejects an undecodable envelope as transaction_malformed", async () => {
    const res = await fetch(`${horizon.url}/transactions`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "tx=AAAA",
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ type: "https://stellar.org/horizon-errors/transaction_malformed" });
  });

  it("includes an overdrawing transaction as failed, visible only with include_failed", async () => {
    const poor = await horizon.newAccount("2");
    const merchant = await horizon.newAccount("1");
    const tx = await buildTx(poor, [Operation.payment({ destination: merchant.publicKey(), asset: Asset.native(), amount: "5" })]);
    const error = await horizon.submit(tx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalHorizonError);
    expect((error as LocalHorizonError).problem.extras).toMatchObject({ result_codes: { transaction: "tx_failed", operations: ["op_underfunded"] } });

    const hash = tx.hash().toString("hex");
    const record = await server.transactions().transaction(hash).call();
    expect(record.successful).toBe(false);
    // The fee is spent even though the payment failed.
    expect(horizon.balance(poor.publicKey())).toBe("1.9999900");
    const visible = await server.payments().forAccount(merchant.publicKey()).limit(200).call();
    expect(visible.records.some((r) => r.transaction_hash === hash)).toBe(false);
    const withFailed = await server.payments().forAccount(merchant.publicKey()).limit(200).includeFailed(true).call();
    const failed = withFailed.records.find((r) => r.transaction_hash === hash);
    expect(failed).toMatchObject({ transaction_successful: false, amount: "5.0000000" });
    expect((await server.effects().forOperation(failed!.id).call()).records).toEqual([]);
  });

  it("records a forced failure with addSignedTransaction and leaves balances alone", async () => {
    const payer = await horizon.newAccount("10");
    const merchant = await horizon.newAccount("1");
    const tx = await buildTx(payer, [Operation.payment({ destination: merchant.publicKey(), asset: Asset.native(), amount: "3" })], Memo.id("7"));
    const record = await horizon.addSignedTransaction(tx, { successful: false });
    expect(record).toMatchObject({ successful: false, memo: "7", memo_type: "id" });
    expect(horizon.balance(merchant.publicKey())).toBe("1.0000000");
    const ok = await horizon.pay({ from: payer, to: merchant.publicKey(), amount: "2" });
    expect(ok.successful).toBe(true);
    const page = await server.payments().forAccount(merchant.publicKey()).includeFailed(true).limit(200).call();
    expect(page.records.map((r) => r.transaction_successful)).toEqual([true, false, true]);
  });
});

describe("operation and memo rendering", () => {
  it("renders every memo type as Horizon does", async () => {
    const payer = await horizon.newAccount("10");
    const to = Keypair.random().publicKey();
    const hash32 = Buffer.alloc(32, 0xab);
    const cases = [
      { memo: Memo.text("café ✅ 支付"), expected: { memo_type: "text", memo: "café ✅ 支付", memo_bytes: Buffer.from("café ✅ 支付").toString("base64") } },
      { memo: Memo.id("18446744073709551615"), expected: { memo_type: "id", memo: "18446744073709551615" } },
      { memo: Memo.hash(hash32), expected: { memo_type: "hash", memo: hash32.toString("base64") } },
      { memo: Memo.return(Buffer.alloc(32, 1).toString("hex")), expected: { memo_type: "return", memo: Buffer.alloc(32, 1).toString("base64") } },
      { memo: Memo.none(), expected: { memo_type: "none" } },
    ];
    for (const { memo, expected } of cases) {
      const record = await horizon.pay({ from: payer, to, amount: "0.1", memo });
      const fetched = await server.transactions().transaction(record.hash).call();
      expect(fetched).toMatchObject(expected);
      if (memo.type !== "text") expect(fetched).not.toHaveProperty("memo_bytes");
      if (memo.type === "none") expect(fetched).not.toHaveProperty("memo");
    }
  });

  it("renders muxed destinations with the G account, the M address and the id", async () => {
    const payer = await horizon.newAccount("10");
    const merchant = await horizon.newAccount("1");
    const muxed = new MuxedAccount(new Account(merchant.publicKey(), "0"), "9007199254740993");
    const tx = await buildTx(payer, [Operation.payment({ destination: muxed.accountId(), asset: Asset.native(), amount: "1" })]);
    await server.submitTransaction(tx);
    const page = await server.payments().forAccount(merchant.publicKey()).order("desc").limit(1).call();
    expect(page.records[0]).toMatchObject({ to: merchant.publicKey(), to_muxed: muxed.accountId(), to_muxed_id: "9007199254740993" });
    expect(horizon.balance(merchant.publicKey())).toBe("2.0000000");
  });

  it("renders credit payments and strict-send/strict-receive path payments", async () => {
    const issuer = await horizon.newAccount("10");
    const payer = await horizon.newAccount("10");
    const merchant = await horizon.newAccount("10");
    const usd = new Asset("USD", issuer.publicKey());
    const eurt = new Asset("EURTOKEN", issuer.publicKey());
    const trust = await buildTx(merchant, [Operation.changeTrust({ asset: usd, limit: "1000" })]);
    await server.submitTransaction(trust);
    const [trustOp] = (await server.operations().forTransaction(trust.hash().toString("hex")).call()).records;
    expect(trustOp).toMatchObject({ type: "change_trust", type_i: 6, asset_code: "USD", limit: "1000.0000000", trustor: merchant.publicKey(), trustee: issuer.publicKey() });
    const line = (await server.loadAccount(merchant.publicKey())).balances.find((b) => "asset_code" in b && b.asset_code === "USD");
    expect(line).toMatchObject({ balance: "0.0000000", limit: "1000.0000000", asset_issuer: issuer.publicKey() });
    await horizon.pay({ from: issuer, to: payer.publicKey(), amount: "100", asset: usd });
    expect(horizon.balance(payer.publicKey(), usd)).toBe("100.0000000");

    const tx = await buildTx(payer, [
      Operation.pathPaymentStrictSend({ sendAsset: usd, sendAmount: "10", destination: merchant.publicKey(), destAsset: usd, destMin: "9.5", path: [] }),
      Operation.pathPaymentStrictReceive({ sendAsset: usd, sendMax: "20", destination: merchant.publicKey(), destAsset: usd, destAmount: "7", path: [Asset.native(), eurt] }),
    ]);
    await server.submitTransaction(tx);
    const page = await server.payments().forAccount(merchant.publicKey()).order("desc").limit(2).call();
    const [receive, send] = page.records as unknown as Array<Record<string, unknown>>;
    expect(send).toMatchObject({
      type: "path_payment_strict_send",
      type_i: 13,
      amount: "10.0000000",
      source_amount: "10.0000000",
      destination_min: "9.5000000",
      asset_type: "credit_alphanum4",
      asset_code: "USD",
      asset_issuer: issuer.publicKey(),
      source_asset_code: "USD",
      path: [],
    });
    expect(receive).toMatchObject({
      type: "path_payment_strict_receive",
      type_i: 2,
      amount: "7.0000000",
      source_amount: "7.0000000",
      source_max: "20.0000000",
      path: [{ asset_type: "native" }, { asset_type: "credit_alphanum12", asset_code: "EURTOKEN", asset_issuer: issuer.publicKey() }],
    });
    expect(horizon.balance(merchant.publicKey(), usd)).toBe("17.0000000");
    expect(horizon.balance(payer.publicKey(), usd)).toBe("83.0000000");
  });

  it("records account_merge into the receiving account", async () => {
    const leaving = await horizon.newAccount("3");
    const merchant = await horizon.newAccount("1");
    const tx = await buildTx(leaving, [Operation.accountMerge({ destination: merchant.publicKey() })]);
    await server.submitTransaction(tx);
    const page = await server.payments().forAccount(merchant.publicKey()).order("desc").limit(1).call();
    expect(page.records[0]).toMatchObject({ type: "account_merge", type_i: 8, account: leaving.publicKey(), into: merchant.publicKey() });
    expect(horizon.balance(merchant.publicKey())).toBe("3.9999900");
    expect(horizon.balance(leaving.publicKey())).toBeUndefined();
  });

  it("accepts a fee bump, found by its outer and its inner hash", async () => {
    const payer = await horizon.newAccount("5");
    const sponsor = await horizon.newAccount("5");
    const inner = await buildTx(payer, [Operation.payment({ destination: sponsor.publicKey(), asset: Asset.native(), amount: "1" })]);
    const bump = TransactionBuilder.buildFeeBumpTransaction(sponsor, "200", inner, horizon.networkPassphrase);
    bump.sign(sponsor);
    const record = await horizon.submit(bump);
    const outerHash = bump.hash().toString("hex");
    const innerHash = inner.hash().toString("hex");
    expect(record).toMatchObject({ hash: outerHash, fee_account: sponsor.publicKey(), source_account: payer.publicKey(), fee_charged: "200" });
    expect(record).toMatchObject({ inner_transaction: { hash: innerHash }, fee_bump_transaction: { hash: outerHash } });
    expect((await server.transactions().transaction(innerHash).call()).hash).toBe(innerHash);
    expect(horizon.balance(payer.publicKey())).toBe("4.0000000");
    expect(horizon.balance(sponsor.publicKey())).toBe("5.9999800");
  });

  it("checks time bounds against the ledger clock", async () => {
    const payer = await horizon.newAccount("5");
    const account = await server.loadAccount(payer.publicKey());
    const late = new TransactionBuilder(account, { fee: "100", networkPassphrase: horizon.networkPassphrase, timebounds: { minTime: 0, maxTime: 1000 } })
      .addOperation(Operation.bumpSequence({ bumpTo: "1" }))
      .build();
    late.sign(payer);
    await expect(horizon.submit(late)).rejects.toMatchObject({ problem: { extras: { result_codes: { transaction: "tx_too_late" } } } });
    const ok = new TransactionBuilder(await server.loadAccount(payer.publicKey()), { fee: "100", networkPassphrase: horizon.networkPassphrase })
      .addOperation(Operation.manageData({ name: "k", value: "v" }))
      .setTimeout(TimeoutInfinite)
      .build();
    ok.sign(payer);
    await horizon.submit(ok);
    expect((await server.loadAccount(payer.publicKey())).data_attr).toEqual({ k: Buffer.from("v").toString("base64") });
  });
});
