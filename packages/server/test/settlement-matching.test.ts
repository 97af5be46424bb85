import { Account, Asset, Keypair, Memo, MuxedAccount, Operation, TransactionBuilder, type xdr } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import type { HorizonPaymentRecord } from "../src/stellar/incoming.js";
import { useChainApp, type ChainMerchant } from "./support/chain.js";

const chain = useChainApp("2026-05-01T10:00:00.000Z");
const { apply, recordOf, merchant, createPayment, getPayment } = chain;

/** Builds, signs and submits one operation through the SDK; returns the transaction hash. */
async function submit(source: Keypair, op: xdr.Operation, memo?: Memo): Promise<string> {
  const builder = new TransactionBuilder(await chain.server.loadAccount(source.publicKey()), { fee: "100", networkPassphrase: chain.horizon.networkPassphrase });
  builder.addOperation(op).setTimeout(60);
  if (memo) builder.addMemo(memo);
  const tx = builder.build();
  tx.sign(source);
  return (await chain.server.submitTransaction(tx)).hash;
}

/** Pays `amount` XLM to `to` with `memo` and applies the resulting Horizon record. */
const payAndApply = async (m: ChainMerchant, to: string, amount: string, memo?: Memo) => apply(await chain.pay(m, amount, memo, to));

describe("matching by memo", () => {
  it("matches a multi-byte text memo by its bytes, and not a look-alike with other bytes", async () => {
    const m = await merchant();
    const text = "café ✅ 支付";
    const p = await createPayment(m, { amount: "1", asset: "XLM", memo_type: "text", memo: text });
    // The same word with a decomposed "é" (e + U+0301) renders alike but is different bytes.
    const lookAlike = await payAndApply(m, m.account, "1", Memo.text("cafe\u0301 ✅ 支付"));
    expect(lookAlike).toEqual({ kind: "unmatched", merchantId: m.merchant.id, reason: "unknown_memo" });
    expect((await getPayment(m, p.id)).status).toBe("pending");

    const outcome = await payAndApply(m, m.account, "1", Memo.text(text));
    expect(outcome).toMatchObject({ kind: "applied", paymentId: p.id, merchantId: m.merchant.id, status: "confirmed", eventType: "payment.confirmed", late: false });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "confirmed", amount_received: "1" });
  });

  it("matches the largest id memo", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "2", asset: "XLM", memo_type: "id", memo: "18446744073709551615" });
    expect(await payAndApply(m, m.account, "2", Memo.id("18446744073709551614"))).toEqual({ kind: "unmatched", merchantId: m.merchant.id, reason: "unknown_memo" });
    expect(await payAndApply(m, m.account, "2", Memo.id("18446744073709551615"))).toMatchObject({ kind: "applied", paymentId: p.id, status: "confirmed" });
  });

  it("matches a hash memo (base64 on Horizon, hex in Lumenpay) by bytes", async () => {
    const m = await merchant();
    const bytes = Buffer.from("f00d".repeat(16), "hex");
    const p = await createPayment(m, { amount: "3", asset: "XLM", memo_type: "hash", memo: bytes.toString("hex").toUpperCase() });
    // A text memo spelling the hex digits is other bytes (and too long); one differing byte is another hash.
    const other = Buffer.from(bytes);
    other[31] = 0x0e;
    expect(await payAndApply(m, m.account, "3", Memo.hash(other))).toEqual({ kind: "unmatched", merchantId: m.merchant.id, reason: "unknown_memo" });
    expect(await payAndApply(m, m.account, "3", Memo.hash(bytes))).toMatchObject({ kind: "applied", paymentId: p.id, status: "confirmed" });
  });

  it("matches a return memo carrying the payment's hash bytes", async () => {
    const m = await merchant();
    const hex = "0123456789abcdef".repeat(4);
    const p = await createPayment(m, { amount: "3", asset: "XLM", memo_type: "hash", memo: hex });
    expect(await payAndApply(m, m.account, "3", Memo.return(hex))).toMatchObject({ kind: "applied", paymentId: p.id, status: "confirmed" });
  });

  it("records a payment without memo or muxed id as unmatched, and ignores one to another account with the right memo", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "1", asset: "XLM" });
    expect(await payAndApply(m, m.account, "1")).toEqual({ kind: "unmatched", merchantId: m.merchant.id, reason: "no_memo" });
    const elsewhere = await chain.horizon.newAccount("1");
    const { hash } = await chain.horizon.pay({ from: chain.payer, to: elsewhere.publicKey(), amount: "1", memo: Memo.id(p.memo) });
    expect(await apply(await recordOf(elsewhere.publicKey(), hash))).toEqual({ kind: "ignored", reason: "not_ours" });
    expect((await getPayment(m, p.id)).status).toBe("pending");
  });
});

describe("muxed destinations", () => {
  it("creates a muxed payment: an M address to pay, no memo, the M address in SEP-7", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "4", asset: "XLM", muxed: true });
    expect(p).toMatchObject({ destination_account: m.account, memo_type: null, memo: null, muxed_id: expect.stringMatching(/^[1-9]\d{0,19}$/) });
    const muxed = MuxedAccount.fromAddress(p.destination, "0");
    expect(p.destination).toMatch(/^M/);
    expect([muxed.baseAccount().accountId(), muxed.id()]).toEqual([m.account, p.muxed_id]);
    const sep7 = Object.fromEntries(new URLSearchParams(p.sep7_uri.slice("web+stellar:pay?".length)));
    expect(sep7).toMatchObject({ destination: p.destination, amount: "4" });
    expect(sep7).not.toHaveProperty("memo");
    expect(sep7).not.toHaveProperty("memo_type");

    const refused = await chain.t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "4", asset: "XLM", muxed: true, memo_type: "id", memo: "5" } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error).toMatchObject({ code: "invalid_memo", param: "memo" });
  });

  it("matches a payment to the M address by its muxed id, even with an unrelated memo", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "4", asset: "XLM", muxed: true });
    const otherId = new MuxedAccount(new Account(m.account, "0"), (BigInt(p.muxed_id) ^ 1n).toString()).accountId();
    expect(await payAndApply(m, otherId, "4")).toEqual({ kind: "unmatched", merchantId: m.merchant.id, reason: "unknown_memo" });
    const outcome = await payAndApply(m, p.destination, "4", Memo.text("thanks"));
    expect(outcome).toMatchObject({ kind: "applied", paymentId: p.id, status: "confirmed" });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "confirmed", amount_received: "4", destination: p.destination });
  });

  it("never hands out the same muxed id twice on one account", async () => {
    const m = await merchant();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await createPayment(m, { amount: "1", asset: "XLM", muxed: true })).muxed_id);
    expect(ids.size).toBe(5);
    const dup = await chain.t.db.pool
      .query("update payments set muxed_id = $1 where merchant_id = $2 and muxed_id <> $1", [[...ids][0], m.merchant.id])
      .catch((e: { code?: string }) => e.code);
    expect(dup).toBe("23505");
  });
});

describe("assets and operation types", () => {
  it("records USDC from another issuer as unmatched (wrong asset) and counts USDC from the payment's issuer", async () => {
    const issuer = await chain.horizon.newAccount("10");
    const fake = await chain.horizon.newAccount("10");
    const usdc = new Asset("USDC", issuer.publicKey());
    const fakeUsdc = new Asset("USDC", fake.publicKey());
    await chain.horizon.pay({ from: issuer, to: chain.payer.publicKey(), amount: "100", asset: usdc });
    await chain.horizon.pay({ from: fake, to: chain.payer.publicKey(), amount: "100", asset: fakeUsdc });
    const m = await merchant({ accepted_assets: [{ code: "USDC", issuer: issuer.publicKey() }] });
    const p = await createPayment(m, { amount: "5", asset: { code: "USDC", issuer: issuer.publicKey() } });

    for (const asset of [fakeUsdc, Asset.native()]) {
      const { hash } = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "5", asset, memo: Memo.id(p.memo) });
      expect(await apply(await recordOf(m.account, hash))).toEqual({ kind: "unmatched", merchantId: m.merchant.id, reason: "wrong_asset" });
    }
    expect(await getPayment(m, p.id)).toMatchObject({ status: "pending", amount_received: "0", settlements: [] });

    const { hash } = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "5", asset: usdc, memo: Memo.id(p.memo) });
    expect(await apply(await recordOf(m.account, hash))).toMatchObject({ kind: "applied", status: "confirmed", asset: `USDC:${issuer.publicKey()}` });
    const paid = await getPayment(m, p.id);
    expect(paid.settlements).toEqual([expect.objectContaining({ transaction_hash: hash, amount: "5", asset: { code: "USDC", issuer: issuer.publicKey() } })]);
  });

  it("counts what a path payment delivered: strict-send by its received amount, strict-receive by its destination amount", async () => {
    const issuer = await chain.horizon.newAccount("10");
    const usdc = new Asset("USDC", issuer.publicKey());
    const m = await merchant({ accepted_assets: [{ code: "USDC", issuer: issuer.publicKey() }] });
    const asset = { code: "USDC", issuer: issuer.publicKey() };
    const send = await createPayment(m, { amount: "10", asset });
    const receive = await createPayment(m, { amount: "7", asset });

    // XLM in, USDC out: the source side (XLM, send amount, destination minimum) must not count.
    const sendHash = await submit(
      chain.payer,
      Operation.pathPaymentStrictSend({ sendAsset: Asset.native(), sendAmount: "10", destination: m.account, destAsset: usdc, destMin: "9", path: [] }),
      Memo.id(send.memo),
    );
    const sendRecord = await recordOf(m.account, sendHash);
    expect(sendRecord).toMatchObject({ type: "path_payment_strict_send", amount: "10.0000000", destination_min: "9.0000000", source_asset_type: "native" });
    expect(await apply(sendRecord)).toMatchObject({ kind: "applied", paymentId: send.id, status: "confirmed" });
    expect(await getPayment(m, send.id)).toMatchObject({ amount_received: "10", overpaid: false });

    const receiveHash = await submit(
      chain.payer,
      Operation.pathPaymentStrictReceive({ sendAsset: Asset.native(), sendMax: "20", destination: m.account, destAsset: usdc, destAmount: "7", path: [] }),
      Memo.id(receive.memo),
    );
    expect(await apply(await recordOf(m.account, receiveHash))).toMatchObject({ kind: "applied", paymentId: receive.id, status: "confirmed" });
    expect(await getPayment(m, receive.id)).toMatchObject({ amount_received: "7", overpaid: false });
  });

  it("counts an XLM create_account by its starting balance, from the funder", async () => {
    const m = await merchant();
    // A merchant account that does not exist yet: the customer's payment creates it.
    const fresh = Keypair.random().publicKey();
    await chain.t.db.pool.query("update merchant_accounts set account = $1 where merchant_id = $2", [fresh, m.merchant.id]);
    const p = await createPayment(m, { amount: "5", asset: "XLM" });
    const hash = await submit(chain.payer, Operation.createAccount({ destination: fresh, startingBalance: "5" }), Memo.id(p.memo));
    const record = await recordOf(fresh, hash);
    expect(record).toMatchObject({ type: "create_account", account: fresh, starting_balance: "5.0000000" });
    expect(await apply(record)).toMatchObject({ kind: "applied", paymentId: p.id, status: "confirmed" });
    expect((await getPayment(m, p.id)).settlements).toEqual([expect.objectContaining({ from: chain.payer.publicKey(), amount: "5" })]);
  });

  it("ignores a failed transaction, whichever way Horizon reports it", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "1", asset: "XLM" });
    const { hash } = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "1", memo: Memo.id(p.memo), successful: false });
    const record = await recordOf(m.account, hash);
    expect(record.transaction_successful).toBe(false);
    expect(await apply(record)).toEqual({ kind: "ignored", reason: "transaction_failed" });
    // Raw JSON from /transactions/:hash/operations?join=transactions (the verify path) is read the same way.
    const raw = (await (await fetch(`${chain.horizon.url}/transactions/${hash}/operations?join=transactions`)).json()) as { _embedded: { records: HorizonPaymentRecord[] } };
    expect(await apply({ ...raw._embedded.records[0]!, transaction_successful: undefined })).toEqual({ kind: "ignored", reason: "transaction_failed" });
    expect(await getPayment(m, p.id)).toMatchObject({ status: "pending", settlements: [] });
  });

  it("refuses a record without its joined transaction rather than guess the memo", async () => {
    const m = await merchant();
    const p = await createPayment(m, { amount: "1", asset: "XLM" });
    const { hash } = await chain.horizon.pay({ from: chain.payer, to: m.account, amount: "1", memo: Memo.id(p.memo) });
    const page = await chain.server.payments().forAccount(m.account).order("desc").limit(1).call();
    expect(page.records[0]!.transaction_hash).toBe(hash);
    await expect(apply(page.records[0] as unknown as HorizonPaymentRecord)).rejects.toThrow(/join=transactions/);
  });
});
