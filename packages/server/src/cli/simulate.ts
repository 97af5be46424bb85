import { Asset as StellarAsset, Horizon, Keypair, Memo as StellarMemo, Operation, StrKey, TransactionBuilder } from "@stellar/stellar-sdk";
import type { Config } from "../config.js";
import type { Db } from "../db/pool.js";
import { HttpError } from "../http/errors.js";
import { isId } from "../ids.js";
import { muxedAddress } from "../payments/service.js";
import { getPayment, type Payment } from "../payments/store.js";
import { formatAmount, parseAmount } from "../stellar/amount.js";
import { type Asset, assetLabel, assetOut } from "../stellar/assets.js";
import { FRIENDBOT_LUMENS } from "../stellar/local-horizon/index.js";
import { type Memo, MEMO_TYPES, type MemoType, parseMemo } from "../stellar/memo.js";
import { assetArgument, stringValue, UsageError, type Command, type CommandContext, type Values } from "./args.js";
import { withDatabase } from "./database.js";
import { connectHorizon, findLocalHorizon, type HorizonAddress } from "./network.js";

const FRIENDBOT_STROOPS = parseAmount(FRIENDBOT_LUMENS, "amount");
const XLM: Asset = { code: "XLM", issuer: null };

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
  return text === undefined ? undefined : assetArgument(text);
}

/** A G account, or an M address (a muxed account, which needs no memo). */
function destinationOption(values: Values): string | undefined {
  const text = stringValue(values, "destination");
  if (text === undefined || StrKey.isValidEd25519PublicKey(text) || StrKey.isValidMed25519PublicKey(text)) return text;
  throw new UsageError(`--destination must be a Stellar account (G…) or a muxed address (M…) (got "${text}")`);
}

/** `--memo-type` and `--memo`, both or neither, validated and made canonical as a payment's memo is. */
function memoOption(values: Values): Memo | null {
  const type = stringValue(values, "memo-type");
  const value = stringValue(values, "memo");
  if (type === undefined && value === undefined) return null;
  if (type === undefined || value === undefined) throw new UsageError("--memo-type and --memo go together");
  if (!(MEMO_TYPES as readonly string[]).includes(type)) throw new UsageError(`--memo-type must be one of ${MEMO_TYPES.join(", ")} (got "${type}")`);
  try {
    return parseMemo(type as MemoType, value, "memo");
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    throw new UsageError(`--memo: ${error.message}`);
  }
}

/** Any merchant's payment: the CLI acts for the operator of the server, not for one merchant. */
async function findPayment(db: Db, id: string): Promise<Payment | undefined> {
  if (!isId("pay", id)) return undefined;
  const { rows } = await db.query<{ merchant_id: string }>("select merchant_id from payments where id = $1", [id]);
  return rows[0] && getPayment(db, rows[0].merchant_id, id);
}

async function loadPayment(config: Config, id: string): Promise<Payment> {
  const payment = await withDatabase(config, (pool) => findPayment(pool, id));
  if (!payment) throw new HttpError(404, "resource_not_found", `No payment ${id}.`);
  return payment;
}

/** --horizon-url (validated by the configuration as HORIZON_URL, which it overrides), else the data directory's local network. */
const horizonToPayOn = (ctx: CommandContext): Promise<HorizonAddress> =>
  stringValue(ctx.values, "horizon-url") === undefined ? findLocalHorizon(ctx.config.dataDir) : connectHorizon(ctx.config.stellar.horizonUrl);

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

/** What to send: a payment's destination, amount, asset and memo, or those typed with --destination. */
interface Transfer {
  /** A G account, or an M address. */
  to: string;
  stroops: bigint;
  asset: Asset;
  memo: Memo | null;
}

function paymentTransfer(payment: Payment, amount: bigint | undefined, asset: Asset | undefined): Transfer {
  return {
    to: payment.muxedId === null ? payment.destination : muxedAddress(payment.destination, payment.muxedId),
    stroops: amount ?? payment.amountStroops,
    asset: asset ?? payment.asset,
    memo: payment.memo,
  };
}

/** Submits `transfer` signed by a new payer that the faucet funds; resolves to the transaction and the payer. */
async function send(horizon: HorizonAddress, transfer: Transfer): Promise<{ hash: string; ledger: number; from: string }> {
  const { to, stroops, asset, memo } = transfer;
  const server = new Horizon.Server(horizon.url, { allowHttp: true });
  const payer = Keypair.random();
  await server.friendbot(payer.publicKey()).call().catch((error: unknown) => {
    throw explain("funding the payer with the local friendbot", error);
  });
  const fee = await server.fetchBaseFee();
  // Friendbot's lumens pay the fee and any smaller XLM payment; anything else is minted.
  if (asset.issuer !== null || stroops + BigInt(fee) > FRIENDBOT_STROOPS) await mint(horizon.url, payer.publicKey(), asset, stroops);

  const stellarAsset = asset.issuer === null ? StellarAsset.native() : new StellarAsset(asset.code, asset.issuer);
  const builder = new TransactionBuilder(await server.loadAccount(payer.publicKey()), { fee: String(fee), networkPassphrase: horizon.networkPassphrase })
    .addOperation(Operation.payment({ destination: to, asset: stellarAsset, amount: formatAmount(stroops) }))
    .setTimeout(60);
  if (memo) builder.addMemo(new StellarMemo(memo.type, memo.value));
  const tx = builder.build();
  tx.sign(payer);
  const submitted = await server.submitTransaction(tx).catch((error: unknown) => {
    throw explain("submitting the payment", error);
  });
  return { hash: submitted.hash, ledger: submitted.ledger, from: payer.publicKey() };
}

export const simulatePay: Command = {
  name: "simulate pay",
  summary: "Pay a payment, or any account, on the local network from a new account the faucet funds.",
  synopsis: "pay_…|--destination G…|M… [--amount N] [--asset XLM|CODE:ISSUER] [--memo-type text|id|hash --memo VALUE] [--horizon-url URL] [--json]",
  optionHelp: [
    "  pay_…                    the payment to pay (its destination, memo, amount and asset; read from the database)",
    "  --destination G…|M…      pay this account instead, with no database",
    "  --amount N               amount to send (default: the payment's amount; required with --destination)",
    "  --asset XLM|CODE:ISSUER  asset to send (default: the payment's asset; XLM with --destination)",
    "  --memo-type TYPE         text, id or hash: the type of --memo",
    "  --memo VALUE             a memo to send with --destination (default: none)",
    "  --horizon-url URL        the local network's Horizon (default: the one running from LUMENPAY_DATA_DIR)",
    '  --json                   print {"transaction_hash": …, "ledger": …, "payment": {…}|null, …}',
  ],
  options: {
    destination: { type: "string" },
    amount: { type: "string" },
    asset: { type: "string" },
    "memo-type": { type: "string" },
    memo: { type: "string" },
    "horizon-url": { type: "string" },
    json: { type: "boolean" },
  },
  positionals: { count: 1, name: "pay_…", optional: true },
  async run(ctx) {
    const id = ctx.positionals[0];
    const destination = destinationOption(ctx.values);
    if (id !== undefined && destination !== undefined) throw new UsageError("give a payment (pay_…) or --destination, not both");
    if (id === undefined && destination === undefined) throw new UsageError("give a payment (pay_…) or --destination G…|M… --amount N");
    const amount = amountOption(ctx.values);
    const asset = assetOption(ctx.values);
    const memo = memoOption(ctx.values);
    if (id !== undefined && memo) throw new UsageError("--memo-type and --memo go with --destination; a payment has its own memo");
    if (destination !== undefined && amount === undefined) throw new UsageError("--amount is required with --destination");

    const horizon = await horizonToPayOn(ctx);
    const payment = id === undefined ? undefined : await loadPayment(ctx.config, id);
    // Without a payment, --destination and --amount were given (checked above).
    const transfer = payment ? paymentTransfer(payment, amount, asset) : { to: destination!, stroops: amount!, asset: asset ?? XLM, memo };
    const sent = await send(horizon, transfer);

    if (ctx.values.json) {
      return ctx.print(
        JSON.stringify({
          transaction_hash: sent.hash,
          ledger: sent.ledger,
          payment: payment ? { id: payment.id, status: payment.status } : null,
          from: sent.from,
          to: transfer.to,
          amount: formatAmount(transfer.stroops),
          asset: assetOut(transfer.asset),
          memo_type: transfer.memo?.type ?? null,
          memo: transfer.memo?.value ?? null,
        }),
      );
    }
    ctx.print(`Submitted transaction ${sent.hash} (ledger ${sent.ledger}) to the local network at ${horizon.url}.`);
    ctx.print(`  paid       ${formatAmount(transfer.stroops)} ${assetLabel(transfer.asset)}`);
    ctx.print(`  to         ${transfer.to} (${transfer.memo ? `memo ${transfer.memo.type} ${transfer.memo.value}` : "no memo"})`);
    ctx.print(`  from       ${sent.from} (a new account funded by the local friendbot)`);
    if (payment) ctx.print(`  payment    ${payment.id}, ${payment.status} before this transaction`);
  },
};
