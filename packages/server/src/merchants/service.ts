import { StrKey } from "@stellar/stellar-sdk";
import type { Db, Pool } from "../db/pool.js";
import { transaction } from "../db/pool.js";
import { badRequest, HttpError } from "../http/errors.js";
import { hashToken, newId, randomToken } from "../ids.js";
import { assetLabel, assetOut, parseAsset, type AssetIn, type AssetOut } from "../stellar/assets.js";
import {
  homeDomainVerificationOut,
  nextHomeDomain,
  pendingHomeDomain,
  refusingTakenHomeDomain,
  saveHomeDomain,
  type HomeDomainRules,
  type HomeDomainVerificationOut,
} from "./home-domain.js";
import * as store from "./store.js";
import { ORG_FIELDS, type ApiKey, type Merchant, type MerchantProfile, type Org } from "./store.js";

/** Merchant fields as the API and the CLI accept them. */
export interface MerchantIn {
  name: string;
  email: string;
  accounts: string[];
  home_domain?: string | null;
  org?: Org;
  accepted_assets?: AssetIn[];
}
export type MerchantPatch = Partial<MerchantIn>;

export interface MerchantOut {
  id: string;
  object: "merchant";
  name: string;
  email: string;
  accounts: string[];
  home_domain: string | null;
  /** null without a home_domain; the domain serves stellar.toml only once `status` is verified. */
  home_domain_verification: HomeDomainVerificationOut | null;
  org: Org;
  accepted_assets: AssetOut[];
  created_at: string;
  updated_at: string;
}

export function merchantOut(m: Merchant): MerchantOut {
  return {
    id: m.id,
    object: "merchant",
    name: m.name,
    email: m.email,
    accounts: m.accounts,
    home_domain: m.homeDomain?.name ?? null,
    home_domain_verification: homeDomainVerificationOut(m.homeDomain),
    org: m.org,
    accepted_assets: m.acceptedAssets.map(assetOut),
    created_at: m.createdAt.toISOString(),
    updated_at: m.updatedAt.toISOString(),
  };
}

export const MAX_ACCOUNTS = 20;
export const MAX_ACCEPTED_ASSETS = 50;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** The email check merchants and dashboard users share. */
export const isEmail = (value: string) => EMAIL.test(value) && value.length <= 254;
// RFC 1123 labels; a bare `localhost` is accepted for development; an optional port.
const HOME_DOMAIN = /^(localhost|(?=.{1,253}(:|$))([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})(:\d{1,5})?$/;
const MAX_TEXT = 1000;

/** Control characters other than tab and newlines: they have no place in published SEP-1 text. */
function hasControlCharacters(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return true;
  }
  return false;
}

/** Merchant fields, validated; `homeDomain` is the domain asked for, not yet a claim. */
export type MerchantFields = MerchantProfile & { accounts: string[]; homeDomain: string | null };

/** Checks every field and normalises it; throws an HttpError naming the first bad field. */
export function validateMerchant(input: MerchantIn): MerchantFields {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 200) throw badRequest("invalid_name", "Name must be 1–200 characters.", "name");
  const email = input.email.trim();
  if (!isEmail(email)) throw badRequest("invalid_email", "Email address is not valid.", "email");

  if (input.accounts.length === 0 || input.accounts.length > MAX_ACCOUNTS) {
    throw badRequest("invalid_accounts", `Give between 1 and ${MAX_ACCOUNTS} Stellar accounts.`, "accounts");
  }
  input.accounts.forEach((account, i) => {
    if (!StrKey.isValidEd25519PublicKey(account)) {
      throw badRequest("invalid_account", "Each account must be a valid Stellar account (G…).", `accounts.${i}`);
    }
  });
  const accounts = [...new Set(input.accounts)];

  let homeDomain: string | null = null;
  if (input.home_domain !== undefined && input.home_domain !== null) {
    homeDomain = input.home_domain.trim().toLowerCase();
    const port = Number(homeDomain.split(":")[1] ?? 1);
    if (!HOME_DOMAIN.test(homeDomain) || port < 1 || port > 65535) {
      throw badRequest("invalid_home_domain", "home_domain must be a host name with an optional port, e.g. pay.example.com.", "home_domain");
    }
  }

  const org: Org = {};
  for (const [field, value] of Object.entries(input.org ?? {})) {
    if (!(ORG_FIELDS as readonly string[]).includes(field)) {
      throw badRequest("invalid_org", `Unknown organisation field "${field}".`, `org.${field}`);
    }
    if (typeof value !== "string" || value.length > MAX_TEXT || hasControlCharacters(value)) {
      throw badRequest("invalid_org", `org.${field} must be text of at most ${MAX_TEXT} characters.`, `org.${field}`);
    }
    if ((field === "url" || field === "logo") && !/^https?:\/\/\S+$/.test(value)) {
      throw badRequest("invalid_org", `org.${field} must be an http(s) URL.`, `org.${field}`);
    }
    if ((field === "official_email" || field === "support_email") && !EMAIL.test(value)) {
      throw badRequest("invalid_org", `org.${field} must be an email address.`, `org.${field}`);
    }
    org[field as keyof Org] = value;
  }

  // Bounded before any work, so a huge array costs nothing.
  const given = input.accepted_assets ?? ["XLM"];
  if (given.length > MAX_ACCEPTED_ASSETS) throw badRequest("invalid_accepted_assets", `At most ${MAX_ACCEPTED_ASSETS} accepted assets.`, "accepted_assets");
  const acceptedAssets = [...new Map(given.map((a, i) => parseAsset(a, `accepted_assets.${i}`)).map((a) => [assetLabel(a), a])).values()];

  return { name, email, accounts, homeDomain, org, acceptedAssets };
}

/** sha256 is enough for keys with ~238 bits of entropy; a slow KDF would only slow every request. */

async function issueApiKey(db: Db, merchantId: string, expiresAt: Date | null): Promise<{ key: ApiKey; secret: string }> {
  const secret = `sk_${randomToken(40)}`;
  const key = await store.insertApiKey(db, {
    id: newId("key"),
    merchantId,
    hash: hashToken(secret),
    prefix: secret.slice(0, 10),
    expiresAt,
  });
  return { key, secret };
}

/** 409 for an account another merchant owns: payments to it could not be told apart. */
export function accountInUse(account: string, param: string): HttpError {
  return new HttpError(409, "account_in_use", `${account} is attached to another merchant; an account can belong to one merchant only.`, param);
}

/** Makes `accounts` the merchant's, in `tx`; 409 `account_in_use` naming the first one another merchant owns. */
export async function attachAccounts(tx: Db, merchantId: string, accounts: string[], now: Date): Promise<void> {
  const taken = await store.setMerchantAccounts(tx, merchantId, accounts, now);
  if (taken.length > 0) throw accountInUse(taken[0]!, `accounts.${accounts.indexOf(taken[0]!)}`);
}

/**
 * Runs `write` on merchant `id` in a transaction that announces the change (for cached stellar.toml files and keys),
 * turning a home domain verified by another merchant meanwhile into its 409.
 */
const writeMerchant = <T>(pool: Pool, id: string, write: (tx: Db) => Promise<T>): Promise<T> =>
  refusingTakenHomeDomain(() =>
    transaction(pool, async (tx) => {
      const result = await write(tx);
      await store.notifyMerchantChanged(tx, id);
      return result;
    }),
  );

/**
 * Creates a merchant with its accounts and first API key; the key's secret is returned once and never
 * stored. Used by the operator's CLI, which attaches accounts without proof of control. Its home domain is
 * the operator's word too, verified at once, given the platform's `homeDomainRules` (the CLI passes its
 * configuration: this server's own host is refused, localhost is proven only outside production); without
 * them it is left pending, as one set through the API.
 */
export async function createMerchant(pool: Pool, input: MerchantIn, now: Date, homeDomainRules?: HomeDomainRules) {
  const { accounts, homeDomain, ...profile } = validateMerchant(input);
  const claim = homeDomainRules ? nextHomeDomain(null, homeDomain, { rules: homeDomainRules, byOperator: true, now }) : pendingHomeDomain(homeDomain);
  const id = newId("mer");
  return writeMerchant(pool, id, async (tx) => {
    await store.insertMerchant(tx, id, profile, now);
    if (claim) await saveHomeDomain(tx, id, claim);
    await attachAccounts(tx, id, accounts, now);
    const { key, secret } = await issueApiKey(tx, id, null);
    return { merchant: (await store.getMerchant(tx, id))!, key, secret };
  });
}

/**
 * Applies a PATCH: only the fields given change. Accounts removed must have no open payment (they would
 * never be confirmed); accounts added need proof of control when `requireAccountProof` is set. A new
 * home domain starts pending (see home-domain.ts).
 */
export async function patchMerchant(
  pool: Pool,
  merchant: Merchant,
  patch: MerchantPatch,
  { requireAccountProof, homeDomainRules, now }: { requireAccountProof: boolean; homeDomainRules: HomeDomainRules; now: Date },
): Promise<Merchant> {
  const current = merchantOut(merchant);
  const { accounts, homeDomain, ...profile } = validateMerchant({
    name: patch.name ?? current.name,
    email: patch.email ?? current.email,
    accounts: patch.accounts ?? current.accounts,
    home_domain: patch.home_domain === undefined ? current.home_domain : patch.home_domain,
    org: patch.org ?? current.org,
    accepted_assets: patch.accepted_assets ?? current.accepted_assets,
  });
  const claim = nextHomeDomain(merchant.homeDomain, homeDomain, { rules: homeDomainRules, byOperator: false, now });
  const added = accounts.filter((a) => !merchant.accounts.includes(a));
  if (requireAccountProof && added.length > 0) {
    throw new HttpError(
      403,
      "account_proof_required",
      `Prove control of ${added[0]} first: sign the transaction from POST /v1/merchant/accounts/challenge and send it to POST /v1/merchant/accounts.`,
      `accounts.${accounts.indexOf(added[0]!)}`,
    );
  }
  const removed = merchant.accounts.filter((a) => !accounts.includes(a));
  return writeMerchant(pool, merchant.id, async (tx) => {
    const busy = await store.accountWithOpenPayments(tx, merchant.id, removed);
    if (busy !== undefined) {
      throw new HttpError(409, "account_has_open_payments", `${busy} still has pending or partially paid payments; cancel them or let them expire first.`, "accounts");
    }
    await store.updateMerchant(tx, merchant.id, profile, now);
    if (claim !== merchant.homeDomain) await saveHomeDomain(tx, merchant.id, claim);
    await attachAccounts(tx, merchant.id, accounts, now);
    return (await store.getMerchant(tx, merchant.id))!;
  });
}

/** `db` may be a transaction, so that a caller can record the key with something else (the dashboard's form id). */
export async function createApiKey(db: Db, merchantId: string, expiresAt: Date | null) {
  if (!(await store.getMerchant(db, merchantId))) throw new HttpError(404, "resource_not_found", `No merchant ${merchantId}.`);
  return issueApiKey(db, merchantId, expiresAt);
}

/** Which keys a caller may act on: the operator's CLI any, the dashboard only its merchant's (`merchantId`). */
export interface KeyScope {
  merchantId?: string;
}

const inScope = (key: ApiKey, scope: KeyScope) => scope.merchantId === undefined || key.merchantId === scope.merchantId;

/** Issues a new key and lets the old one live `graceHours` more, so deployments can switch over. */
export async function rotateApiKey(pool: Pool, keyId: string, graceHours: number, now: Date, scope: KeyScope = {}) {
  return transaction(pool, async (tx) => {
    const old = await store.getApiKey(tx, keyId);
    if (!old || old.revokedAt || !inScope(old, scope)) throw new HttpError(404, "resource_not_found", `No active API key ${keyId}.`);
    const replaced = await store.expireApiKeyBy(tx, keyId, new Date(now.getTime() + graceHours * 3_600_000));
    const { key, secret } = await issueApiKey(tx, old.merchantId, null);
    await store.notifyMerchantChanged(tx, old.merchantId);
    return { old: replaced!, key, secret };
  });
}

/** Revokes a key; the announcement makes every instance forget it at once (each re-reads keys every second anyway). */
export async function revokeApiKey(pool: Pool, keyId: string, now: Date, scope: KeyScope = {}): Promise<ApiKey> {
  return transaction(pool, async (tx) => {
    const found = await store.getApiKey(tx, keyId);
    const key = found && inScope(found, scope) ? await store.revokeApiKey(tx, keyId, now) : undefined;
    if (!key) throw new HttpError(404, "resource_not_found", `No API key ${keyId}.`);
    await store.notifyMerchantChanged(tx, key.merchantId);
    return key;
  });
}

export function apiKeyOut(k: ApiKey) {
  return {
    id: k.id,
    object: "api_key" as const,
    merchant_id: k.merchantId,
    prefix: k.prefix,
    created_at: k.createdAt.toISOString(),
    expires_at: k.expiresAt?.toISOString() ?? null,
    revoked_at: k.revokedAt?.toISOString() ?? null,
    last_used_at: k.lastUsedAt?.toISOString() ?? null,
  };
}
