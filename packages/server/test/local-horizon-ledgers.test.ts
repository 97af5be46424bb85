import { Account, Asset, Horizon, Keypair, Memo, Operation, TransactionBuilder } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";

let horizon: LocalHorizon;
let server: Horizon.Server;
beforeAll(async () => {
  horizon = await startLocalHorizon();
  server = new Horizon.Server(horizon.url, { allowHttp: true });
});
afterAll(() => horizon.close());

const ledgerOf = (pagingToken: string) => Number(BigInt(pagingToken) >> 32n);

type Joined = Horizon.ServerApi.PaymentOperationRecord & { transaction_attr: Horizon.HorizonApi.TransactionResponse };

describe("generatePayments", () => {
  it("records real signed payments, grouped into ledgers, with the failed ones only under include_failed", async () => {
    const merchant = Keypair.random().publicKey();
    const generated = await horizon.generatePayments(merchant, 1000, {
      amount: "2.5",
      memo: (i) => Memo.text(`pay_${i}`),
      successful: (i) => i % 10 !== 9,
      perLedger: 100,
    });
    expect(generated.count).toBe(1000);

    const seen: Joined[] = [];
    let page = await server.payments().forAccount(merchant).join("transactions").includeFailed(true).limit(200).call();
    while (page.records.length > 0) {
      seen.push(...(page.records as Joined[]));
      page = await page.next();
    }
    expect(seen).toHaveLength(1000);
    expect(seen[0]!.paging_token).toBe(generated.firstPagingToken);
    expect(seen.at(-1)!.paging_token).toBe(generated.lastPagingToken);
    expect(seen.map((r) => r.transaction_attr.memo)).toEqual(Array.from({ length: 1000 }, (_, i) => `pay_${i}`));
    expect(seen.filter((r) => !r.transaction_successful).map((r) => r.transaction_attr.memo)).toEqual(
      Array.from({ length: 100 }, (_, i) => `pay_${i * 10 + 9}`),
    );
    expect(new Set(seen.map((r) => ledgerOf(r.paging_token))).size).toBe(10);
    expect(seen.every((r) => r.from === generated.from && r.to === merchant && r.amount === "2.5000000")).toBe(true);

    // Every envelope is genuine: it parses, hashes to the record's hash and carries the sender's signature,
    // checked here with the SDK's own (pure-JS) verifier rather than node:crypto.
    const sender = Keypair.fromPublicKey(generated.from);
    const sequences = new Set<string>();
    for (const record of seen) {
      const tx = TransactionBuilder.fromXDR(record.transaction_attr.envelope_xdr, horizon.networkPassphrase);
      expect(tx.hash().toString("hex")).toBe(record.transaction_hash);
      expect(sender.verify(tx.hash(), tx.signatures[0]!.signature())).toBe(true);
      sequences.add(record.transaction_attr.source_account_sequence);
    }
    expect(sequences.size).toBe(1000);

    const withoutFailed = await server.payments().forAccount(merchant).limit(200).order("desc").call();
    expect(withoutFailed.records.every((r) => r.transaction_successful)).toBe(true);
    // 900 successful payments of 2.5.
    expect(horizon.balance(merchant)).toBe("2250.0000000");
    expect(horizon.balance(generated.from)).toBe("250.0000000");
  });

  it("pages deep into 50 000 payments by cursor", async () => {
    const payer = await horizon.newAccount("100000");
    const merchant = Keypair.random().publicKey();
    const generated = await horizon.generatePayments(merchant, 50_000, { from: payer, amount: "0.0000001", memo: (i) => Memo.id(String(i)) });
    expect(generated.from).toBe(payer.publicKey());

    const last = await server.payments().forAccount(merchant).join("transactions").order("desc").limit(3).call();
    expect(last.records.map((r) => (r as Joined).transaction_attr.memo)).toEqual(["49999", "49998", "49997"]);
    expect(last.records[0]!.paging_token).toBe(generated.lastPagingToken);
    const middle = await server.payments().forAccount(merchant).join("transactions").cursor(last.records[2]!.paging_token).order("desc").limit(2).call();
    expect(middle.records.map((r) => (r as Joined).transaction_attr.memo)).toEqual(["49996", "49995"]);
    expect(horizon.balance(merchant)).toBe("0.0050000");
  });
});

describe("ledgerCloseMs", () => {
  it("groups submissions into the open ledger and publishes them when it closes", async () => {
    // A long interval: the test closes the ledger itself, so nothing depends on timing.
    const timed = await startLocalHorizon({ ledgerCloseMs: 3_600_000 });
    try {
      const [alice, bob] = [Keypair.random(), Keypair.random()];
      const funding = Promise.all([timed.fund(alice.publicKey(), "10"), timed.fund(bob.publicKey(), "10")]);
      timed.closeLedger();
      const [fundA, fundB] = await funding;
      expect(fundA.ledger).toBe(fundB.ledger);
      expect(BigInt(fundB.paging_token) - BigInt(fundA.paging_token)).toBe(1n << 12n);

      // A new account's sequence number is its creation ledger << 32.
      const txA = new TransactionBuilder(new Account(alice.publicKey(), (BigInt(fundA.ledger) << 32n).toString()), {
        fee: "100",
        networkPassphrase: timed.networkPassphrase,
      })
        .addOperation(Operation.payment({ destination: bob.publicKey(), asset: Asset.native(), amount: "1" }))
        .setTimeout(0)
        .build();
      txA.sign(alice);
      const pending = timed.submit(txA);
      const before = await fetch(`${timed.url}/transactions/${txA.hash().toString("hex")}`);
      expect(before.status).toBe(404);
      timed.closeLedger();
      const record = await pending;
      expect(record.ledger).toBe(fundA.ledger + 1);
      expect((await fetch(`${timed.url}/transactions/${record.hash}`)).status).toBe(200);
    } finally {
      await timed.close();
    }
  });
});
