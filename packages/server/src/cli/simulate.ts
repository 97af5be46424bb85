import { Asset as StellarAsset, Horizon, Keypair, Memo as StellarMemo, Operation, TransactionBuilder } from "@stellar/stellar-sdk";
import type { Db } from "../db/pool.js";
import { HttpError } from "../http/errors.js";
import { isId } from "../ids.js";
import { muxedAddress } from "../payments/service.js";
import { getPayment, type Payment } from "../payments/store.js";
import { formatAmount, parseAmount } from "../stellar/amount.js";
import { type Asset, assetLabel, assetOut, parseAsset } from "../stellar/assets.js";
import { FRIENDBOT_LUMENS } from "../stellar/local-horizon/index.js";
import { stringValue, UsageError, type Command, type Values } from "./args.js";
import { withDatabase } from "./database.js";
import { findLocalHorizon } from "./network.js";

const FRIENDBOT_STROOPS = parseAmount(FRIENDBOT_LUMENS, "amount");

function amountOption(values: Values): bigint | undefined {
  const text = stringValue(values, "amount");
  if (text === undefined) return undefined;
  try {
    return parseAmount(text, "amount");
  } catch {
    throw new UsageError(`--amount must be a positive amount with at most 7 decimals, e.g. 4.5 (got "${text}")`);
  }
}

function assetOption(values: Values): Asset | undefined {
  const text = stringValue(values, "asset");
  if (text === undefined) return undefined;
  if (text.toUpperCase() === "XLM") return { code: "XLM", issuer: null };
  const [code, issuer, ...rest] = text.split(":");
  try {
    if (!code || !issuer || rest.length > 0) throw new Error("not CODE:ISSUER");
    return parseAsset({ code, issuer }, "asset");
  } catch {
    throw new UsageError(`--asset must be XLM or CODE:ISSUER with a G… issuer (got "${text}")`);
  }
}

/** Any merchant's payment: the CLI acts for the operator of the server, not for one merchant. */
async function findPayment(db: Db, id: string): Promise<Payment | undefined> {
  if (!isId("pay", id)) return undefined;
  const { rows } = await db.query<{ merchant_id: string }>("select merchant_id from payments where id = $1", [id]);
  return rows[0] && getPayment(db, rows[0].merchant_id, id);
}

type Problem = { title?: string; extras?: { result_codes?: unknown; reason?: string } };

/**
 * Horizon's result codes (or reason) when the SDK rejected with a problem body, so the message says why.
 * Submissions keep the body in `response.data`, call builders in `response`.
 */
function explain(step: string, error: unknown): Error {
  const response = (error as { response?: Problem | { data?: Problem } }).response;
  const data = response && "data" in response ? response.data : (response as Problem | undefined);
  const detail = data?.extras?.result_codes ?? data?.extras?.reason ?? data?.title;
  return new Error(`${step} failed: ${detail === undefined ? (error as Error).message : JSON.stringify(detail)}`);
}

async function mint(horizonUrl: string, account: string, asset: Asset, stroops: bigint): Promise<void> {
  const res = await fetch(`${horizonUrl}/_local/mint`, {
    method: "POST",
    body: new URLSearchParams({ addr: account, asset: assetLabel(asset), amount: formatAmount(stroops) }),
  });
  if (!res.ok) throw explain(`minting ${assetLabel(asset)} for the payer`, { response: { data: await res.json().catch(() => undefined) } });
}

export const simulatePay: Command = {
  name: "simulate pay",
  summary: "Pay a payment on the local network (`lumenpay start --network local`) from a new account the faucet funds.",
  synopsis: "pay_… [--amount N] [--asset XLM|CODE:ISSUER] [--json]",
  optionHelp: [
    "  --amount N               amount to send (default: the payment's amount)",
    "  --asset XLM|CODE:ISSUER  asset to send (default: the payment's asset)",
    '  --json                   print {"transaction_hash": …, "ledger": …, "payment": {…}, …}',
  ],
  options: { amount: { type: "string" }, asset: { type: "string" }, json: { type: "boolean" } },
  positionals: { count: 1, name: "pay_…" },
  async run(ctx) {
    const id = ctx.positionals[0]!;
    const amountOverride = amountOption(ctx.values);
    const assetOverride = assetOption(ctx.values);
    const horizon = await findLocalHorizon(ctx.config.dataDir);
    const payment = await withDatabase(ctx.config, (pool) => findPayment(pool, id));
    if (!payment) throw new HttpError(404, "resource_not_found", `No payment ${id}.`);

    const stroops = amountOverride ?? payment.amountStroops;
    const asset = assetOverride ?? payment.asset;
    const amount = formatAmount(stroops);
    const destination = payment.muxedId === null ? payment.destination : muxedAddress(payment.destination, payment.muxedId);
    const server = new Horizon.Server(horizon.url, { allowHttp: true });
    const payer = Keypair.random();
    await server.friendbot(payer.publicKey()).call().catch((error: unknown) => {
      throw explain("funding the payer with the local friendbot", error);
    });
    const fee = await server.fetchBaseFee();
    // Friendbot's lumens pay the fee and any smaller XLM payment; anything else is minted.
    if (asset.issuer !== null || stroops + BigInt(fee) > FRIENDBOT_STROOPS) await mint(horizon.url, payer.publicKey(), asset, stroops);

    const builder = new TransactionBuilder(await server.loadAccount(payer.publicKey()), { fee: String(fee), networkPassphrase: horizon.networkPassphrase })
      .addOperation(Operation.payment({ destination, asset: asset.issuer === null ? StellarAsset.native() : new StellarAsset(asset.code, asset.issuer), amount }))
      .setTimeout(60);
    if (payment.memo) builder.addMemo(new StellarMemo(payment.memo.type, payment.memo.value));
    const tx = builder.build();
    tx.sign(payer);
    const submitted = await server.submitTransaction(tx).catch((error: unknown) => {
      throw explain("submitting the payment", error);
    });

    const memo = payment.memo ? `memo ${payment.memo.type} ${payment.memo.value}` : "no memo";
    if (ctx.values.json) {
      return ctx.print(
        JSON.stringify({
          transaction_hash: submitted.hash,
          ledger: submitted.ledger,
          payment: { id: payment.id, status: payment.status },
          from: payer.publicKey(),
          to: destination,
          amount,
          asset: assetOut(asset),
          memo_type: payment.memo?.type ?? null,
          memo: payment.memo?.value ?? null,
        }),
      );
    }
    ctx.print(`Submitted transaction ${submitted.hash} (ledger ${submitted.ledger}) to the local network.`);
    ctx.print(`  paid       ${amount} ${assetLabel(asset)}`);
    ctx.print(`  to         ${destination} (${memo})`);
    ctx.print(`  from       ${payer.publicKey()} (a new account funded by the local friendbot)`);
    ctx.print(`  payment    ${payment.id}, ${payment.status} before this transaction`);
  },
};
