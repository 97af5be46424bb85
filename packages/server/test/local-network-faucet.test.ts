import { Asset, Horizon, Keypair, Operation, TransactionBuilder } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";

let horizon: LocalHorizon;
let server: Horizon.Server;
beforeAll(async () => {
  horizon = await startLocalHorizon();
  server = new Horizon.Server(horizon.url, { allowHttp: true });
});
afterAll(() => horizon.close());

type Problem = { status: number; extras: Record<string, unknown> };

/** The Horizon problem the SDK rejected with: call builders keep the body as `response`, submissions as `response.data`. */
async function problemOf(call: Promise<unknown>): Promise<Problem> {
  const error = await call.then(
    () => expect.fail("expected a rejection"),
    (e: unknown) => e as { response: Problem | { data: Problem } },
  );
  return "data" in error.response ? error.response.data : error.response;
}

function mint(fields: Record<string, string>): Promise<Response> {
  return fetch(`${horizon.url}/_local/mint`, { method: "POST", body: new URLSearchParams(fields) });
}

describe("GET /friendbot", () => {
  it("creates the account with 10 000 lumens from the root account, through the SDK's friendbot()", async () => {
    const account = Keypair.random().publicKey();
    const record = (await server.friendbot(account).call()) as unknown as Horizon.HorizonApi.TransactionResponse;
    expect(record).toMatchObject({ successful: true, source_account: horizon.root.publicKey() });
    expect((await server.loadAccount(account)).balances).toEqual([expect.objectContaining({ asset_type: "native", balance: "10000.0000000" })]);
    const ops = await server.operations().forTransaction(record.hash).call();
    expect(ops.records[0]).toMatchObject({ type: "create_account", account, funder: horizon.root.publicKey(), starting_balance: "10000.0000000" });
    const root = (await (await fetch(`${horizon.url}/`)).json()) as { _links: unknown };
    expect(root._links).toMatchObject({ friendbot: { href: `${horizon.url}/friendbot{?addr}`, templated: true } });
  });

  it("fails for an existing account as testnet's does, and rejects a bad address", async () => {
    const account = Keypair.random().publicKey();
    await server.friendbot(account).call();
    const again = await problemOf(server.friendbot(account).call());
    expect(again).toMatchObject({ status: 400, extras: { result_codes: { transaction: "tx_failed", operations: ["op_already_exists"] } } });
    expect(horizon.balance(account)).toBe("10000.0000000");

    const bad = await fetch(`${horizon.url}/friendbot?addr=GNOTANACCOUNT`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ extras: { invalid_field: "addr" } });
  });
});

describe("POST /_local/mint", () => {
  it("credits an issued asset as a payment from its issuer, which the holder can then spend with a signed transaction", async () => {
    const issuer = Keypair.random().publicKey();
    const usdc = new Asset("USDC", issuer);
    const holder = Keypair.random();
    await server.friendbot(holder.publicKey()).call();

    const res = await mint({ addr: holder.publicKey(), asset: `USDC:${issuer}`, amount: "25.5" });
    expect(res.status).toBe(200);
    const record = (await res.json()) as Horizon.HorizonApi.TransactionResponse;
    // Recorded from the issuer (created for the occasion), without a signature: nobody here holds its key.
    expect(record).toMatchObject({ successful: true, source_account: issuer, signatures: [] });
    expect(horizon.balance(issuer)).toBeDefined();
    const [payment] = (await server.operations().forTransaction(record.hash).call()).records;
    expect(payment).toMatchObject({ type: "payment", from: issuer, to: holder.publicKey(), amount: "25.5000000", asset_code: "USDC", asset_issuer: issuer });

    // A second mint of the same asset reuses the issuer account.
    expect((await mint({ addr: holder.publicKey(), asset: `USDC:${issuer}`, amount: "4.5" })).status).toBe(200);
    expect(horizon.balance(holder.publicKey(), usdc)).toBe("30.0000000");

    const merchant = Keypair.random().publicKey();
    const tx = new TransactionBuilder(await server.loadAccount(holder.publicKey()), { fee: "100", networkPassphrase: horizon.networkPassphrase })
      .addOperation(Operation.payment({ destination: merchant, asset: usdc, amount: "30" }))
      .setTimeout(60)
      .build();
    tx.sign(holder);
    expect((await server.submitTransaction(tx)).successful).toBe(true);
    expect(horizon.balance(merchant, usdc)).toBe("30.0000000");
    expect(horizon.balance(holder.publicKey(), usdc)).toBe("0.0000000");
  });

  it("mints lumens as a signed payment from the root account", async () => {
    const holder = Keypair.random().publicKey();
    const res = await mint({ addr: holder, asset: "XLM", amount: "20000" });
    expect(res.status).toBe(200);
    const record = (await res.json()) as Horizon.HorizonApi.TransactionResponse;
    expect(record.source_account).toBe(horizon.root.publicKey());
    expect(record.signatures).toHaveLength(1);
    expect(horizon.balance(holder)).toBe("20000.0000000");
  });

  it("rejects bad fields, naming the field", async () => {
    const holder = Keypair.random().publicKey();
    const issuer = Keypair.random().publicKey();
    const cases: Array<[Record<string, string>, string]> = [
      [{ addr: "G123", asset: "XLM", amount: "1" }, "addr"],
      [{ addr: holder, asset: "USDC", amount: "1" }, "asset"],
      [{ addr: holder, asset: `USDC:${issuer}:x`, amount: "1" }, "asset"],
      [{ addr: holder, asset: "XLM", amount: "0" }, "amount"],
      [{ addr: holder, asset: "XLM", amount: "1.12345678" }, "amount"],
      [{ addr: issuer, asset: `USDC:${issuer}`, amount: "1" }, "addr"],
    ];
    for (const [fields, field] of cases) {
      const res = await mint(fields);
      expect(res.status, JSON.stringify(fields)).toBe(400);
      expect(await res.json()).toMatchObject({ extras: { invalid_field: field } });
    }
    expect(horizon.balance(holder)).toBeUndefined();
  });
});
