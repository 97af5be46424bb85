import { systemClock } from "../clock.js";
import { apiKeyOut, createApiKey, revokeApiKey, rotateApiKey } from "../merchants/service.js";
import type { ApiKey } from "../merchants/store.js";
import { integerValue, requiredString, UsageError, type Command, type CommandContext } from "./args.js";
import { withDatabase } from "./database.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/** Prints a new secret with the warning that it cannot be shown again. */
export function printSecret(print: CommandContext["print"], secret: string): void {
  print("");
  print(`  ${secret}`);
  print("");
  print("This API key is shown only once: store it now. Lumenpay keeps only its hash and cannot show it again.");
}

export function keyStatus(key: ApiKey, now: Date): string {
  if (key.revokedAt) return `revoked ${key.revokedAt.toISOString()}`;
  if (key.expiresAt && key.expiresAt <= now) return `expired ${key.expiresAt.toISOString()}`;
  if (key.expiresAt) return `active, expires ${key.expiresAt.toISOString()}`;
  return "active";
}

function keyId(ctx: CommandContext): string {
  const id = ctx.positionals[0];
  if (!id) throw new UsageError("give the id of the key (key_…)");
  return id;
}

export const keysCreate: Command = {
  name: "keys create",
  summary: "Issue another API key for a merchant (its secret is printed once).",
  synopsis: "--merchant mer_… [--expires-in-days N] [--json]",
  optionHelp: [
    "  --merchant mer_…         the merchant the key belongs to (required)",
    "  --expires-in-days N      the key stops working after N days (default: never)",
    '  --json                   print {"key": {…}, "api_key": "sk_…"}',
  ],
  options: {
    merchant: { type: "string" },
    "expires-in-days": { type: "string" },
    json: { type: "boolean" },
  },
  async run(ctx) {
    const merchantId = requiredString(ctx.values, "merchant");
    const days = integerValue(ctx.values, "expires-in-days", { min: 1, max: 3650 });
    const expiresAt = days === undefined ? null : new Date(systemClock.now().getTime() + days * DAY_MS);
    const { key, secret } = await withDatabase(ctx.config, (pool) => createApiKey(pool, merchantId, expiresAt));
    if (ctx.values.json) return ctx.print(JSON.stringify({ key: apiKeyOut(key), api_key: secret }));
    ctx.print(`Created API key ${key.id} for ${merchantId} (${key.expiresAt ? `expires ${key.expiresAt.toISOString()}` : "no expiry"}).`);
    printSecret(ctx.print, secret);
  },
};

export const keysRevoke: Command = {
  name: "keys revoke",
  summary: "Revoke an API key at once: requests using it are rejected from now on.",
  synopsis: "key_… [--json]",
  optionHelp: ['  --json                   print {"key": {…}}'],
  options: { json: { type: "boolean" } },
  positionals: { count: 1, name: "key_…" },
  async run(ctx) {
    const id = keyId(ctx);
    const key = await withDatabase(ctx.config, (pool) => revokeApiKey(pool, id, systemClock.now()));
    if (ctx.values.json) return ctx.print(JSON.stringify({ key: apiKeyOut(key) }));
    ctx.print(`Revoked API key ${key.id} (${key.prefix}…) of ${key.merchantId}.`);
  },
};

export const keysRotate: Command = {
  name: "keys rotate",
  summary: "Issue a replacement API key; the old one keeps working for a grace period, then expires.",
  synopsis: "key_… [--grace-hours N] [--json]",
  optionHelp: [
    "  --grace-hours N          how long the old key keeps working (default: API_KEY_ROTATION_GRACE_HOURS, 24)",
    '  --json                   print {"key": {…}, "api_key": "sk_…", "previous_key": {…}}',
  ],
  options: { "grace-hours": { type: "string" }, json: { type: "boolean" } },
  positionals: { count: 1, name: "key_…" },
  async run(ctx) {
    const id = keyId(ctx);
    const graceHours = integerValue(ctx.values, "grace-hours", { min: 0, max: 24 * 365 }) ?? ctx.config.api.keyRotationGraceHours;
    const { old, key, secret } = await withDatabase(ctx.config, (pool) => rotateApiKey(pool, id, graceHours, systemClock.now()));
    if (ctx.values.json) {
      return ctx.print(JSON.stringify({ key: apiKeyOut(key), api_key: secret, previous_key: apiKeyOut(old) }));
    }
    ctx.print(`Rotated ${old.id}: ${key.id} replaces it; ${old.id} keeps working until ${old.expiresAt?.toISOString()}.`);
    printSecret(ctx.print, secret);
  },
};
