import { badRequest } from "../http/errors.js";
import { systemClock } from "../clock.js";
import { apiKeyOut, createMerchant, merchantOut } from "../merchants/service.js";
import { listApiKeys, listMerchants, type Merchant } from "../merchants/store.js";
import { assetLabel, type AssetIn } from "../stellar/assets.js";
import { requiredString, stringList, stringValue, UsageError, type Command } from "./args.js";
import { withDatabase } from "./database.js";
import { keyStatus, printSecret } from "./keys.js";

/** `XLM` or `CODE:ISSUER`, as on the command line; the service validates code and issuer. */
function assetArg(text: string, index: number): AssetIn {
  if (text.toUpperCase() === "XLM") return "XLM";
  const [code, issuer, ...rest] = text.split(":");
  if (!code || !issuer || rest.length > 0) {
    throw badRequest("invalid_asset", `"${text}" is not XLM or CODE:ISSUER.`, `accepted_assets.${index}`);
  }
  return { code, issuer };
}

/** The home domain and its status; while it is pending, the TXT record that proves it. */
function printHomeDomain(print: (line: string) => void, merchant: Merchant): void {
  const { home_domain: domain, home_domain_verification: verification } = merchantOut(merchant);
  if (!domain || !verification) return;
  print(`  home domain  ${domain} (${verification.status})`);
  if (verification.status === "pending") {
    const { name, value } = verification.record;
    print(`               serves stellar.toml once proven: create the TXT record ${name} "${value}",`);
    print("               then call POST /v1/merchant/home_domain/verify with the merchant's API key");
  }
}

export const merchantsCreate: Command = {
  name: "merchants create",
  summary: "Create a merchant and its first API key (the key is printed once).",
  synopsis: "--name NAME --email EMAIL --account G… [--account G…] [--home-domain HOST] [--asset XLM|CODE:ISSUER …] [--json]",
  optionHelp: [
    "  --name NAME              display name (required)",
    "  --email EMAIL            contact address (required)",
    "  --account G…             Stellar account receiving payments (required; repeat for several)",
    "  --home-domain HOST       domain whose stellar.toml Lumenpay serves for this merchant: verified at once,",
    "                           as you vouch for it (localhost in production stays pending); never this server's host",
    "  --asset XLM|CODE:ISSUER  accepted asset (repeat for several; default XLM)",
    '  --json                   print {"merchant": {…}, "api_key": "sk_…"}',
  ],
  options: {
    name: { type: "string" },
    email: { type: "string" },
    account: { type: "string", multiple: true },
    "home-domain": { type: "string" },
    asset: { type: "string", multiple: true },
    json: { type: "boolean" },
  },
  async run(ctx) {
    const name = requiredString(ctx.values, "name");
    const email = requiredString(ctx.values, "email");
    const accounts = stringList(ctx.values, "account");
    if (accounts.length === 0) throw new UsageError("--account is required (a Stellar account, G…)");
    const assets = stringList(ctx.values, "asset");
    const homeDomain = stringValue(ctx.values, "home-domain");
    const { merchant, secret } = await withDatabase(ctx.config, (pool) =>
      createMerchant(pool, {
        name,
        email,
        accounts,
        ...(homeDomain === undefined ? {} : { home_domain: homeDomain }),
        ...(assets.length === 0 ? {} : { accepted_assets: assets.map(assetArg) }),
      }, systemClock.now(), ctx.config),
    );
    if (ctx.values.json) return ctx.print(JSON.stringify({ merchant: merchantOut(merchant), api_key: secret }));
    ctx.print(`Created merchant ${merchant.id} (${merchant.name} <${merchant.email}>)`);
    ctx.print(`  accounts     ${merchant.accounts.join(", ")}`);
    ctx.print(`  assets       ${merchant.acceptedAssets.map(assetLabel).join(", ")}`);
    printHomeDomain(ctx.print, merchant);
    printSecret(ctx.print, secret);
  },
};

export const merchantsList: Command = {
  name: "merchants list",
  summary: "List merchants with their accounts and API keys (ids and prefixes, never secrets).",
  synopsis: "[--json]",
  optionHelp: ['  --json                   print {"merchants": [{…, "api_keys": [{…}]}]}'],
  options: { json: { type: "boolean" } },
  async run(ctx) {
    const merchants = await withDatabase(ctx.config, async (pool) =>
      Promise.all((await listMerchants(pool)).map(async (merchant) => ({ merchant, keys: await listApiKeys(pool, merchant.id) }))),
    );
    if (ctx.values.json) {
      const out = merchants.map(({ merchant, keys }) => ({ ...merchantOut(merchant), api_keys: keys.map(apiKeyOut) }));
      return ctx.print(JSON.stringify({ merchants: out }));
    }
    if (merchants.length === 0) {
      return ctx.print("No merchants yet. Create one with: lumenpay merchants create --name … --email … --account G…");
    }
    const now = systemClock.now();
    for (const { merchant, keys } of merchants) {
      ctx.print(`${merchant.id}  ${merchant.name} <${merchant.email}>`);
      ctx.print(`  accounts     ${merchant.accounts.join(", ")}`);
      ctx.print(`  assets       ${merchant.acceptedAssets.map(assetLabel).join(", ")}`);
      printHomeDomain(ctx.print, merchant);
      keys.forEach((key, i) => ctx.print(`  ${i === 0 ? "api keys" : "        "}     ${key.id}  ${key.prefix}…  ${keyStatus(key, now)}`));
      ctx.print("");
    }
  },
};
