import { Horizon, NotFoundError, StrKey } from "@stellar/stellar-sdk";
import type { Config } from "../config.js";
import { accountOwner, getMerchant, type Merchant } from "../merchants/store.js";
import { type Asset, assetLabel, assetOut } from "../stellar/assets.js";
import { assetArgument, stringList, UsageError, type Command } from "./args.js";
import { withDatabase } from "./database.js";
import { findLocalHorizon } from "./network.js";

/** SEP-29: an account whose data entry `config.memo_required` holds "1" asks wallets to refuse payments without a memo. */
const MEMO_REQUIRED_ENTRY = "config.memo_required";
const XLM: Asset = { code: "XLM", issuer: null };

/** The assets to check and where they came from. */
interface AssetsToCheck {
  assets: Asset[];
  /** The merchant whose accepted assets they are, when no --asset was given. */
  merchantId: string | null;
  /** Why only XLM is checked, when it is. */
  note: string | null;
}

/** The outcome of every check on one account. */
interface AccountChecks extends Omit<AssetsToCheck, "assets"> {
  account: string;
  horizonUrl: string;
  exists: boolean;
  trustLines: { asset: Asset; ok: boolean }[];
  memoRequired: boolean;
}

/** HORIZON_URL (or --horizon-url), else the local network of the data directory with STELLAR_NETWORK=local, else the network's. */
async function horizonToAsk(config: Config): Promise<string> {
  return config.localHorizon.inProcess ? (await findLocalHorizon(config.dataDir)).url : config.stellar.horizonUrl;
}

/** The account as Horizon serves it; undefined when it does not exist. */
async function loadAccount(url: string, account: string): Promise<Horizon.AccountResponse | undefined> {
  const server = new Horizon.Server(url, { allowHttp: url.startsWith("http:") });
  try {
    return await server.loadAccount(account);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw new Error(`loading ${account} from ${url} failed: ${(error as Error).message}`);
  }
}

/** The accepted assets of the merchant owning `account`; XLM alone, with a note saying why, when there is none to read. */
async function merchantAssets(config: Config, account: string): Promise<AssetsToCheck> {
  const only = (why: string): AssetsToCheck => ({ assets: [XLM], merchantId: null, note: `${why}, so only XLM is checked; pass --asset for others` });
  let merchant: Merchant | undefined;
  try {
    merchant = await withDatabase(config, async (pool) => {
      const owner = await accountOwner(pool, account);
      return owner === undefined ? undefined : getMerchant(pool, owner);
    });
  } catch (error) {
    return only(`the database could not be read (${(error as Error).message || String(error)})`);
  }
  return merchant ? { assets: merchant.acceptedAssets, merchantId: merchant.id, note: null } : only("no merchant owns this account");
}

function hasTrustLine(account: Horizon.AccountResponse, asset: Asset): boolean {
  // Lumens need none, and an issuer holds its own asset without one.
  if (asset.issuer === null || asset.issuer === account.accountId()) return true;
  return account.balances.some((line) => "asset_code" in line && line.asset_code === asset.code && line.asset_issuer === asset.issuer);
}

function requiresMemo(account: Horizon.AccountResponse): boolean {
  const value = account.data_attr[MEMO_REQUIRED_ENTRY];
  return value !== undefined && Buffer.from(value, "base64").toString("utf8") === "1";
}

function runChecks(account: string, horizonUrl: string, loaded: Horizon.AccountResponse | undefined, checked: AssetsToCheck): AccountChecks {
  return {
    account,
    horizonUrl,
    exists: loaded !== undefined,
    trustLines: checked.assets.map((asset) => ({ asset, ok: loaded !== undefined && hasTrustLine(loaded, asset) })),
    memoRequired: loaded !== undefined && requiresMemo(loaded),
    merchantId: checked.merchantId,
    note: checked.note,
  };
}

/** Whether each check passed. */
const outcomes = (c: AccountChecks) => [c.exists, ...c.trustLines.map((line) => line.ok), c.memoRequired];

function checksJson(c: AccountChecks) {
  return {
    account: c.account,
    horizon_url: c.horizonUrl,
    ok: outcomes(c).every(Boolean),
    exists: c.exists,
    trust_lines: c.trustLines.map((line) => ({ asset: assetOut(line.asset), ok: line.ok })),
    memo_required: c.memoRequired,
    merchant_id: c.merchantId,
    note: c.note,
  };
}

/** One ✓ or ✗ line per check, saying what to do about a ✗. */
function checklist(c: AccountChecks): string[] {
  const lines = [`Account ${c.account} on ${c.horizonUrl}${c.merchantId ? ` (merchant ${c.merchantId})` : ""}`];
  if (!c.exists) {
    lines.push("  ✗ the account does not exist: create it with a create_account operation (at least the 1 XLM base reserve,");
    lines.push("    plus 0.5 XLM per trust line and data entry); the other checks need it");
  } else {
    lines.push("  ✓ the account exists");
    for (const { asset, ok } of c.trustLines) {
      const label = assetLabel(asset);
      if (asset.issuer === null) lines.push(`  ✓ ${label}: lumens need no trust line`);
      else if (ok) lines.push(`  ✓ ${label}: trust line in place`);
      else lines.push(`  ✗ ${label}: no trust line; add one with a change_trust operation signed by the account, or payments in ${asset.code} fail`);
    }
    lines.push(
      c.memoRequired
        ? `  ✓ memos required: ${MEMO_REQUIRED_ENTRY}=1 (SEP-29)`
        : `  ✗ memos not required: set the data entry ${MEMO_REQUIRED_ENTRY}=1 (SEP-29) so wallets refuse payments without a memo`,
    );
  }
  if (c.note) lines.push(`  note: ${c.note}`);
  return lines;
}

export const merchantsCheckAccount: Command = {
  name: "merchants check-account",
  summary: "Check that a receiving account exists, trusts the assets it is paid in and requires memos (SEP-29).",
  synopsis: "G… [--asset XLM|CODE:ISSUER …] [--horizon-url URL] [--json]",
  optionHelp: [
    "  --asset XLM|CODE:ISSUER  asset the account must be able to receive (repeat for several;",
    "                           default: the accepted assets of the merchant that owns the account, else XLM)",
    "  --horizon-url URL        Horizon to ask (overrides HORIZON_URL; default: the network's, or with",
    "                           STELLAR_NETWORK=local the local network running from LUMENPAY_DATA_DIR)",
    '  --json                   print {"ok": …, "exists": …, "trust_lines": [{"asset", "ok"}], "memo_required": …, …}',
  ],
  options: { asset: { type: "string", multiple: true }, "horizon-url": { type: "string" }, json: { type: "boolean" } },
  positionals: { count: 1, name: "G…" },
  async run(ctx) {
    const account = ctx.positionals[0]!;
    if (!StrKey.isValidEd25519PublicKey(account)) throw new UsageError(`expected a Stellar account (G…), got "${account}"`);
    const typed = stringList(ctx.values, "asset").map(assetArgument);
    const url = await horizonToAsk(ctx.config);
    const loaded = await loadAccount(url, account);
    const checked = typed.length > 0 ? { assets: typed, merchantId: null, note: null } : await merchantAssets(ctx.config, account);
    const checks = runChecks(account, url, loaded, checked);

    if (ctx.values.json) ctx.print(JSON.stringify(checksJson(checks)));
    else checklist(checks).forEach((line) => ctx.print(line));
    // A failed check is the command's answer, not a crash: exit 1 with one line, as for any runtime failure.
    const passed = outcomes(checks);
    const failed = passed.filter((ok) => !ok).length;
    if (failed > 0) throw new Error(`${failed} of ${passed.length} checks failed`);
  },
};
