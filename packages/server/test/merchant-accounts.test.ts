import { Keypair, Networks, Transaction } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHALLENGE_TTL_S } from "../src/merchants/account-proof.js";
import { buildTestApp, randomAccount, seedMerchant, TestClock, type TestApp } from "./support/app.js";
import { runCli } from "./support/process.js";

/** One owner per Stellar account, and proof of control with a signed challenge. */

const clock = new TestClock(new Date());
let open: TestApp;
let strict: TestApp;
beforeAll(async () => {
  [open, strict] = await Promise.all([buildTestApp({ clock }), buildTestApp({ clock, env: { REQUIRE_ACCOUNT_PROOF: "true" } })]);
});
afterAll(async () => {
  await Promise.all([open?.close(), strict?.close()]);
});

type Merchant = Awaited<ReturnType<typeof seedMerchant>>;
const patch = (t: TestApp, m: Merchant, payload: object) => t.app.inject({ method: "PATCH", url: "/v1/merchant", headers: m.auth, payload });
const accountsOf = async (t: TestApp, m: Merchant): Promise<string[]> =>
  (await t.app.inject({ method: "GET", url: "/v1/merchant", headers: m.auth })).json().accounts;
const challenge = (t: TestApp, m: Merchant, account: string) =>
  t.app.inject({ method: "POST", url: "/v1/merchant/accounts/challenge", headers: m.auth, payload: { account } });
const attach = (t: TestApp, m: Merchant, transaction: string) =>
  t.app.inject({ method: "POST", url: "/v1/merchant/accounts", headers: m.auth, payload: { transaction } });

/** The challenge XDR signed by `signer`, for the network `passphrase` names. */
function signed(xdr: string, signer: Keypair, passphrase: string = Networks.TESTNET): string {
  const tx = new Transaction(xdr, passphrase);
  tx.sign(signer);
  return tx.toXDR();
}

describe("one owner per account", () => {
  it("refuses another merchant's account with 409 account_in_use and leaves both merchants as they were", async () => {
    const a = await seedMerchant(open);
    const b = await seedMerchant(open);
    const [accountA] = a.merchant.accounts;
    const res = await patch(open, b, { name: "B2", accounts: [b.merchant.accounts[0], accountA] });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ code: "account_in_use", param: "accounts.1" });
    expect(await accountsOf(open, b)).toEqual(b.merchant.accounts);
    expect((await open.app.inject({ method: "GET", url: "/v1/merchant", headers: b.auth })).json().name).toBe("Acme");

    // A keeps its memos: B could not take them by claiming the account.
    const pay = await open.app.inject({ method: "POST", url: "/v1/payments", headers: a.auth, payload: { amount: "1", asset: "XLM", memo_type: "text", memo: "order-1" } });
    expect(pay.statusCode).toBe(201);
    expect(pay.json().destination).toBe(accountA);
  });

  it("lets exactly one of two merchants claiming the same new account at once have it", async () => {
    const [a, b] = [await seedMerchant(open), await seedMerchant(open)];
    const contested = randomAccount();
    const results = await Promise.all([a, b].map((m) => patch(open, m, { accounts: [...m.merchant.accounts, contested] })));
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    const owners = [await accountsOf(open, a), await accountsOf(open, b)].filter((accounts) => accounts.includes(contested));
    expect(owners).toHaveLength(1);
  });

  it("keeps the order of accounts, lets a merchant drop one, and refuses to drop one with open payments", async () => {
    const extra = randomAccount();
    const m = await seedMerchant(open);
    const [first] = m.merchant.accounts;
    expect((await patch(open, m, { accounts: [extra, first] })).json().accounts).toEqual([extra, first]);
    const payment = (await open.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "1", asset: "XLM" } })).json();
    expect(payment.destination).toBe(extra);

    const refused = await patch(open, m, { accounts: [first] });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe("account_has_open_payments");
    await open.app.inject({ method: "POST", url: `/v1/payments/${payment.id}/cancel`, headers: m.auth });
    expect((await patch(open, m, { accounts: [first] })).json().accounts).toEqual([first]);
    // Released, the account can go to another merchant.
    const other = await seedMerchant(open);
    expect((await patch(open, other, { accounts: [extra] })).statusCode).toBe(200);
  });

  it("says account_in_use through the CLI too, exit code 1", async () => {
    const a = await seedMerchant(open);
    const cli = await runCli(["merchants", "create", "--name", "Thief", "--email", "t@example.test", "--account", a.merchant.accounts[0]!], {
      DATABASE_URL: open.db.url,
    });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("--account:");
    expect(cli.stderr).toContain("(account_in_use)");
    const { rows } = await open.db.pool.query("select count(*)::int as n from merchants where name = 'Thief'");
    expect(rows[0].n).toBe(0);
  });
});

describe("proof of control", () => {
  it("requires it to add an account when the operator says so, and attaches a proven one, marked verified", async () => {
    const m = await seedMerchant(strict);
    const owner = Keypair.random();
    const refused = await patch(strict, m, { accounts: [...m.merchant.accounts, owner.publicKey()] });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error).toMatchObject({ code: "account_proof_required", param: "accounts.1" });
    // Reordering and renaming need no proof.
    expect((await patch(strict, m, { name: "Renamed" })).statusCode).toBe(200);

    const issued = await challenge(strict, m, owner.publicKey());
    expect(issued.statusCode, issued.body).toBe(200);
    const body = issued.json();
    expect(body).toMatchObject({ object: "account_challenge", account: owner.publicKey(), network_passphrase: Networks.TESTNET });
    expect(Date.parse(body.expires_at) - clock.now().getTime()).toBe(CHALLENGE_TTL_S * 1000);
    const tx = new Transaction(body.transaction, Networks.TESTNET);
    // Sequence 0 and the server as source: it can never be submitted to the network.
    expect(tx.sequence).toBe("0");
    expect(tx.source).toBe(body.server_key);
    expect(tx.operations[0]).toMatchObject({ type: "manageData", source: owner.publicKey() });

    const attached = await attach(strict, m, signed(body.transaction, owner));
    expect(attached.statusCode, attached.body).toBe(200);
    expect(attached.json().accounts).toEqual([...m.merchant.accounts, owner.publicKey()]);
    const { rows } = await strict.db.pool.query("select verified_at from merchant_accounts where account = $1", [owner.publicKey()]);
    expect(rows[0].verified_at).toEqual(clock.now());

    // A challenge is used once.
    const again = await attach(strict, m, signed(body.transaction, owner));
    expect(again.statusCode).toBe(400);
    expect(again.json().error.code).toBe("invalid_challenge");
  });

  it("refuses a challenge signed by another key, for another network, expired, altered or issued to another merchant", async () => {
    const m = await seedMerchant(strict);
    const other = await seedMerchant(strict);
    const owner = Keypair.random();
    const issue = async () => (await challenge(strict, m, owner.publicKey())).json().transaction as string;
    const refusal = async (res: Awaited<ReturnType<typeof attach>>) => [res.statusCode, res.json().error.code];

    expect(await refusal(await attach(strict, m, signed(await issue(), Keypair.random())))).toEqual([400, "challenge_not_signed"]);
    expect(await refusal(await attach(strict, m, signed(await issue(), owner, Networks.PUBLIC)))).toEqual([400, "challenge_not_signed"]);
    expect(await refusal(await attach(strict, other, signed(await issue(), owner)))).toEqual([400, "invalid_challenge"]);
    expect(await refusal(await attach(strict, m, "AAAA"))).toEqual([400, "invalid_challenge"]);

    // Altered after Lumenpay signed it: the server's signature no longer holds.
    const tampered = new Transaction(await issue(), Networks.TESTNET);
    const envelope = tampered.toEnvelope();
    envelope.v1().tx().fee(999);
    expect(await refusal(await attach(strict, m, signed(envelope.toXDR("base64"), owner)))).toEqual([400, "invalid_challenge"]);

    const late = await issue();
    clock.advance(CHALLENGE_TTL_S * 1000);
    try {
      expect(await refusal(await attach(strict, m, signed(late, owner)))).toEqual([400, "challenge_expired"]);
    } finally {
      clock.advance(-CHALLENGE_TTL_S * 1000);
    }
    expect(await accountsOf(strict, m)).toEqual(m.merchant.accounts);
  });

  it("refuses a challenge for an account another merchant owns", async () => {
    const a = await seedMerchant(strict);
    const b = await seedMerchant(strict);
    const res = await challenge(strict, b, a.merchant.accounts[0]!);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe("account_in_use");
    expect((await challenge(strict, b, "GNOTANACCOUNT")).json().error).toMatchObject({ code: "invalid_account", param: "account" });
  });
});
