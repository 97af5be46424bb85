import type { Db } from "../db/pool.js";
import type { Asset } from "../stellar/assets.js";

/** SEP-1 `[DOCUMENTATION]` fields a merchant may set, in the wire's snake_case. */
export const ORG_FIELDS = [
  "name",
  "dba",
  "url",
  "logo",
  "description",
  "physical_address",
  "phone_number",
  "official_email",
  "support_email",
  "twitter",
  "github",
  "keybase",
] as const;
export type OrgField = (typeof ORG_FIELDS)[number];
export type Org = Partial<Record<OrgField, string>>;

export interface Merchant {
  id: string;
  name: string;
  email: string;
  accounts: string[];
  homeDomain: string | null;
  org: Org;
  acceptedAssets: Asset[];
  createdAt: Date;
  updatedAt: Date;
}

interface MerchantRow {
  id: string;
  name: string;
  email: string;
  accounts: string[];
  home_domain: string | null;
  org: Org;
  accepted_assets: Asset[];
  created_at: Date;
  updated_at: Date;
}

const toMerchant = (r: MerchantRow): Merchant => ({
  id: r.id,
  name: r.name,
  email: r.email,
  accounts: r.accounts,
  homeDomain: r.home_domain,
  org: r.org,
  acceptedAssets: r.accepted_assets,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export type MerchantFields = Omit<Merchant, "id" | "createdAt" | "updatedAt">;

export async function insertMerchant(db: Db, id: string, m: MerchantFields): Promise<Merchant> {
  const { rows } = await db.query<MerchantRow>(
    `insert into merchants (id, name, email, accounts, home_domain, org, accepted_assets)
     values ($1, $2, $3, $4, $5, $6, $7) returning *`,
    [id, m.name, m.email, m.accounts, m.homeDomain, JSON.stringify(m.org), JSON.stringify(m.acceptedAssets)],
  );
  return toMerchant(rows[0]!);
}

export async function getMerchant(db: Db, id: string): Promise<Merchant | undefined> {
  const { rows } = await db.query<MerchantRow>("select * from merchants where id = $1", [id]);
  return rows[0] && toMerchant(rows[0]);
}

export async function getMerchantByHomeDomain(db: Db, homeDomain: string): Promise<Merchant | undefined> {
  const { rows } = await db.query<MerchantRow>("select * from merchants where home_domain = $1", [homeDomain]);
  return rows[0] && toMerchant(rows[0]);
}

export async function listMerchants(db: Db): Promise<Merchant[]> {
  const { rows } = await db.query<MerchantRow>("select * from merchants order by created_at, id");
  return rows.map(toMerchant);
}

export async function updateMerchant(db: Db, id: string, m: MerchantFields): Promise<Merchant> {
  const { rows } = await db.query<MerchantRow>(
    `update merchants set name = $2, email = $3, accounts = $4, home_domain = $5, org = $6,
       accepted_assets = $7, updated_at = now()
     where id = $1 returning *`,
    [id, m.name, m.email, m.accounts, m.homeDomain, JSON.stringify(m.org), JSON.stringify(m.acceptedAssets)],
  );
  return toMerchant(rows[0]!);
}

export interface ApiKey {
  id: string;
  merchantId: string;
  prefix: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

interface ApiKeyRow {
  id: string;
  merchant_id: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const toApiKey = (r: ApiKeyRow): ApiKey => ({
  id: r.id,
  merchantId: r.merchant_id,
  prefix: r.prefix,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at,
});

export async function insertApiKey(
  db: Db,
  key: { id: string; merchantId: string; hash: Buffer; prefix: string; expiresAt: Date | null },
): Promise<ApiKey> {
  const { rows } = await db.query<ApiKeyRow>(
    `insert into api_keys (id, merchant_id, hash, prefix, expires_at) values ($1, $2, $3, $4, $5)
     returning id, merchant_id, prefix, created_at, expires_at, revoked_at, last_used_at`,
    [key.id, key.merchantId, key.hash, key.prefix, key.expiresAt],
  );
  return toApiKey(rows[0]!);
}

/** The usable key with this hash and its merchant, in one round trip (every API request asks this). */
export async function findMerchantByApiKey(db: Db, hash: Buffer, now: Date): Promise<{ key: ApiKey; merchant: Merchant } | undefined> {
  const { rows } = await db.query<MerchantRow & { key_id: string; key_prefix: string; key_created_at: Date; key_expires_at: Date | null; key_last_used_at: Date | null }>(
    `select m.*, k.id as key_id, k.prefix as key_prefix, k.created_at as key_created_at,
            k.expires_at as key_expires_at, k.last_used_at as key_last_used_at
     from api_keys k join merchants m on m.id = k.merchant_id
     where k.hash = $1 and k.revoked_at is null and (k.expires_at is null or k.expires_at > $2)`,
    [hash, now],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    merchant: toMerchant(r),
    key: {
      id: r.key_id,
      merchantId: r.id,
      prefix: r.key_prefix,
      createdAt: r.key_created_at,
      expiresAt: r.key_expires_at,
      revokedAt: null,
      lastUsedAt: r.key_last_used_at,
    },
  };
}

export async function touchApiKey(db: Db, id: string, now: Date): Promise<void> {
  await db.query("update api_keys set last_used_at = $2 where id = $1", [id, now]);
}

export async function getApiKey(db: Db, id: string): Promise<ApiKey | undefined> {
  const { rows } = await db.query<ApiKeyRow>(
    "select id, merchant_id, prefix, created_at, expires_at, revoked_at, last_used_at from api_keys where id = $1",
    [id],
  );
  return rows[0] && toApiKey(rows[0]);
}

export async function listApiKeys(db: Db, merchantId: string): Promise<ApiKey[]> {
  const { rows } = await db.query<ApiKeyRow>(
    `select id, merchant_id, prefix, created_at, expires_at, revoked_at, last_used_at
     from api_keys where merchant_id = $1 order by created_at, id`,
    [merchantId],
  );
  return rows.map(toApiKey);
}

export async function revokeApiKey(db: Db, id: string, now: Date): Promise<ApiKey | undefined> {
  const { rows } = await db.query<ApiKeyRow>(
    `update api_keys set revoked_at = coalesce(revoked_at, $2) where id = $1
     returning id, merchant_id, prefix, created_at, expires_at, revoked_at, last_used_at`,
    [id, now],
  );
  return rows[0] && toApiKey(rows[0]);
}

/** Shortens a key's life to `until` (never lengthens it): how rotation leaves a grace period. */
export async function expireApiKeyBy(db: Db, id: string, until: Date): Promise<ApiKey | undefined> {
  const { rows } = await db.query<ApiKeyRow>(
    `update api_keys set expires_at = least(coalesce(expires_at, $2), $2) where id = $1
     returning id, merchant_id, prefix, created_at, expires_at, revoked_at, last_used_at`,
    [id, until],
  );
  return rows[0] && toApiKey(rows[0]);
}
