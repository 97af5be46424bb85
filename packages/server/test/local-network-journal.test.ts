import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Asset, Horizon, Keypair, Memo, Operation, TransactionBuilder } from "@stellar/stellar-sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JournalError, type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";

let dir: string;
const running: LocalHorizon[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-journal-"));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((h) => h.close()));
  await rm(dir, { recursive: true, force: true });
});

async function start(options: Parameters<typeof startLocalHorizon>[0] = {}): Promise<LocalHorizon> {
  const horizon = await startLocalHorizon({ journalDir: dir, ...options });
  running.push(horizon);
  return horizon;
}

async function stop(horizon: LocalHorizon): Promise<void> {
  running.splice(running.indexOf(horizon), 1);
  await horizon.close();
}

/** Every payment record (failed ones included) and its transaction, as served, with this server's URL taken out. */
async function snapshot(horizon: LocalHorizon): Promise<string> {
  const server = new Horizon.Server(horizon.url, { allowHttp: true });
  const records: unknown[] = [];
  let page = await server.payments().includeFailed(true).join("transactions").limit(200).call();
  while (page.records.length > 0) {
    records.push(...page.records.map(({ _links, ...record }) => record));
    page = await page.next();
  }
  return JSON.stringify(records).replaceAll(horizon.url, "<horizon>");
}

describe("a journaled local Horizon", () => {
  it("serves identical records after a restart, and continues the chain after them", async () => {
    const first = await start({ ledgerCloseMs: 20 });
    const server = new Horizon.Server(first.url, { allowHttp: true });
    const alice = await first.newAccount("1000");
    const merchant = Keypair.random().publicKey();
    await first.pay({ from: alice, to: merchant, amount: "12.5", memo: Memo.id("42") });
    await first.pay({ from: alice, to: merchant, amount: "1", memo: Memo.text("forced"), successful: false });
    // A failure of its own (the second operation overdraws): replay must keep its own result codes.
    const overdraw = new TransactionBuilder(await server.loadAccount(alice.publicKey()), { fee: "200", networkPassphrase: first.networkPassphrase })
      .addOperation(Operation.payment({ destination: merchant, asset: Asset.native(), amount: "1" }))
      .addOperation(Operation.payment({ destination: merchant, asset: Asset.native(), amount: "5000" }))
      .setTimeout(30)
      .build();
    overdraw.sign(alice);
    await expect(server.submitTransaction(overdraw)).rejects.toThrow();
    const inner = new TransactionBuilder(await server.loadAccount(alice.publicKey()), { fee: "100", networkPassphrase: first.networkPassphrase })
      .addOperation(Operation.payment({ destination: merchant, asset: Asset.native(), amount: "2" }))
      .setTimeout(30)
      .build();
    inner.sign(alice);
    const bump = TransactionBuilder.buildFeeBumpTransaction(first.root, "200", inner, first.networkPassphrase);
    bump.sign(first.root);
    await server.submitTransaction(bump);
    // Issued assets, minted without a signature, and bulk payments signed outside the SDK.
    const issuer = Keypair.random().publicKey();
    expect((await fetch(`${first.url}/_local/mint`, { method: "POST", body: new URLSearchParams({ addr: alice.publicKey(), asset: `EUR:${issuer}`, amount: "9" }) })).status).toBe(200);
    await first.pay({ from: alice, to: merchant, amount: "9", asset: new Asset("EUR", issuer) });
    const bulk = await first.generatePayments(merchant, 250, { memo: (i) => Memo.text(`bulk-${i}`), successful: (i) => i % 7 !== 0, perLedger: 50 });
    const before = await snapshot(first);
    const lastToken = bulk.lastPagingToken;
    await stop(first);

    const second = await start({ ledgerCloseMs: 20 });
    expect(await snapshot(second)).toBe(before);
    expect(second.balance(merchant)).toBe(first.balance(merchant));
    expect(second.balance(alice.publicKey(), new Asset("EUR", issuer))).toBe("0.0000000");
    expect(second.balance(merchant, new Asset("EUR", issuer))).toBe("9.0000000");
    const overdrawn = await new Horizon.Server(second.url, { allowHttp: true }).transactions().transaction(overdraw.hash().toString("hex")).call();
    expect(overdrawn.successful).toBe(false);

    // Sequence numbers carried over: alice signs her next payment at the sequence the chain expects.
    const next = await second.pay({ from: alice, to: merchant, amount: "3" });
    const [op] = (await new Horizon.Server(second.url, { allowHttp: true }).operations().forTransaction(next.hash).call()).records;
    expect(BigInt(op!.paging_token)).toBeGreaterThan(BigInt(lastToken));
  });

  it("replays a transaction whose ledger closed after its max_time, as it was accepted before", async () => {
    let now = new Date("2030-01-01T00:00:00Z");
    const seconds = () => Math.floor(now.getTime() / 1000);
    // No ledger timer firing during the test: ledgers close when the test says.
    const first = await start({ clock: () => now, ledgerCloseMs: 3_600_000 });
    const funding = first.newAccount("100");
    first.closeLedger();
    const payer = await funding;
    const tx = new TransactionBuilder(await new Horizon.Server(first.url, { allowHttp: true }).loadAccount(payer.publicKey()), {
      fee: "100",
      networkPassphrase: first.networkPassphrase,
      timebounds: { minTime: seconds() - 10, maxTime: seconds() + 5 },
    })
      .addOperation(Operation.payment({ destination: Keypair.random().publicKey(), asset: Asset.native(), amount: "1" }))
      .build();
    tx.sign(payer);
    const submitted = first.submit(tx);
    now = new Date(now.getTime() + 60_000);
    first.closeLedger();
    const record = await submitted;
    expect(Date.parse(record.created_at) / 1000).toBeGreaterThan(seconds() - 1);
    await stop(first);

    const second = await start({ clock: () => now, ledgerCloseMs: 3_600_000 });
    const replayed = (await (await fetch(`${second.url}/transactions/${record.hash}`)).json()) as typeof record;
    expect(replayed).toMatchObject({ paging_token: record.paging_token, created_at: record.created_at, successful: true });
  });

  it("writes one line per ledger with transactions, none for empty ledgers", async () => {
    const horizon = await start({ ledgerCloseMs: 10 });
    const payer = await horizon.newAccount("100");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const record = await horizon.pay({ from: payer, to: Keypair.random().publicKey(), amount: "1" });
    const lines = (await readFile(path.join(dir, "ledger.jsonl"), "utf8")).trim().split("\n").map((line) => JSON.parse(line));
    expect(lines.map((l) => l.txs.length)).toEqual([1, 1]);
    expect(lines[1]).toEqual({
      ledger: record.ledger,
      closed_at: expect.any(String),
      txs: [{ envelope: record.envelope_xdr, successful: true }],
    });
    // Dozens of empty ledgers closed in between.
    expect(record.ledger - lines[0].ledger).toBeGreaterThan(5);
  });

  it("drops a last line cut short by a crash and keeps the rest", async () => {
    const first = await start();
    const payer = await first.newAccount("100");
    const kept = await first.pay({ from: payer, to: Keypair.random().publicKey(), amount: "1" });
    await stop(first);
    const file = path.join(dir, "ledger.jsonl");
    const intact = await readFile(file, "utf8");
    await appendFile(file, '{"ledger":99,"closed_at":"2026-01-01T00:00:0');

    const second = await start();
    expect(await (await fetch(`${second.url}/transactions/${kept.hash}`)).json()).toMatchObject({ paging_token: kept.paging_token });
    expect(await readFile(file, "utf8")).toBe(intact);
    await second.pay({ from: payer, to: Keypair.random().publicKey(), amount: "1" });
    expect((await readFile(file, "utf8")).trim().split("\n")).toHaveLength(intact.trim().split("\n").length + 1);
  });

  it("refuses a journal that does not replay, naming the place, and releases it", async () => {
    const file = path.join(dir, "ledger.jsonl");
    await writeFile(file, '{"ledger":2,"closed_at":"2026-01-01T00:00:00Z","txs":[]}\nnot json\n');
    await expect(start()).rejects.toThrow(new JournalError(`${file}:2 is not JSON`));
    await expect(stat(path.join(dir, "owner"))).rejects.toMatchObject({ code: "ENOENT" });

    // Written for another network: under this passphrase the envelopes name accounts that do not exist.
    const other = await startLocalHorizon({ networkPassphrase: "Some Other Network", journalDir: path.join(dir, "other") });
    await other.newAccount("5");
    await other.close();
    await writeFile(file, await readFile(path.join(dir, "other", "ledger.jsonl")));
    await expect(start()).rejects.toThrow(/transaction 1 of ledger 2 no longer applies/);

    await writeFile(file, "");
    const fresh = await start();
    expect(fresh.balance(fresh.root.publicKey())).toBeDefined();
  });
});
