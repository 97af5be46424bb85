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

/** A merchant's claim on a home domain: its stellar.toml is served there only once `verifiedAt` is set. */
export interface HomeDomain {
  /** Lower-case host name with an optional port, as requests name it in their Host header. */
  name: string;
  /** Random, per merchant and domain: the value of the TXT record that proves control. */
  token: string;
  verifiedAt: Date | null;
}

export interface Merchant {
  id: string;
  name: string;
  email: string;
  /** G… accounts in the merchant's order; each belongs to this merchant alone (merchant_accounts). */
  accounts: string[];
  homeDomain: HomeDomain | null;
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
  home_domain_token: string | null;
  home_domain_verified_at: Date | null;
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
  homeDomain: r.home_domain === null ? null : { name: r.home_domain, token: r.home_domain_token!, verifiedAt: r.home_domain_verified_at },
  org: r.org,
  acceptedAssets: r.accepted_assets,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** The fields of the merchants row that `insertMerchant` and `updateMerchant` write. */
export type MerchantProfile = Pick<Merchant, "name" | "email" | "org" | "acceptedAssets">;

/** A merchant row `m` with its accounts in order. */
const MERCHANT_COLUMNS = `m.*, array(select a.account from merchant_accounts a where a.merchant_id = m.id order by a.position, a.account) as accounts`;

/**
 * Makes `accounts` exactly the merchant's accounts, in this order, and returns the ones another
 * merchant owns (left to that merchant, so the caller refuses the change). Run it in the
 * transaction that writes the merchant: a refusal must roll back everything.
 */
export async function setMerchantAccounts(db: Db, merchantId: string, accounts: string[], now: Date): Promise<string[]> {
  const { rows } = await db.query<{ account: string }>(
    `with removed as (delete from merchant_accounts where merchant_id = $1 and account <> all ($2::text[]))
     insert into merchant_accounts (account, merchant_id, position, created_at)
     select account, $1, position, $3 from unnest($2::text[]) with ordinality as t(account, position)
     on conflict (account) do update set position = excluded.position where merchant_accounts.merchant_id = excluded.merchant_id
     returning account`,
    [merchantId, accounts, now],
  );
  const mine = new Set(rows.map((r) => r.account));
  return accounts.filter((a) => !mine.has(a));
}

/** Records that the merchant proved control of `account` (it must be theirs already). */
export async function markAccountVerified(db: Db, merchantId: string, account: string, now: Date): Promise<void> {
  await db.query("update merchant_accounts set verified_at = $3 where account = $2 and merchant_id = $1", [merchantId, account, now]);
}

export interface AccountChallenge {
  merchantId: string;
  account: string;
  serverKey: string;
  expiresAt: Date;
}

/** Stores a challenge handed out; challenges expired for a day are purged on the way. */
export async function insertAccountChallenge(db: Db, c: AccountChallenge & { nonce: string; now: Date }): Promise<void> {
  await db.query(
    `with purged as (delete from account_challenges where expires_at < $6::timestamptz - interval '1 day')
     insert into account_challenges (nonce, merchant_id, account, server_key, expires_at, created_at) values ($1, $2, $3, $4, $5, $6)`,
    [c.nonce, c.merchantId, c.account, c.serverKey, c.expiresAt, c.now],
  );
}

/** A challenge issued to `merchantId` and not used yet. */
export async function getAccountChallenge(db: Db, merchantId: string, nonce: string): Promise<AccountChallenge | undefined> {
  const { rows } = await db.query<{ merchant_id: string; account: string; server_key: string; expires_at: Date }>(
    "select merchant_id, account, server_key, expires_at from account_challenges where nonce = $1 and merchant_id = $2",
    [nonce, merchantId],
  );
  const r = rows[0];
  return r && { merchantId: r.merchant_id, account: r.account, serverKey: r.server_key, expiresAt: r.expires_at };
}

/** Deletes the challenge; false when it was gone already (used by a concurrent request). */
export async function consumeAccountChallenge(db: Db, nonce: string): Promise<boolean> {
  const { rowCount } = await db.query("delete from account_challenges where nonce = $1", [nonce]);
  return rowCount === 1;
}

/** The merchant that owns `account`, if any. */
export async function accountOwner(db: Db, account: string): Promise<string | undefined> {
  const { rows } = await db.query<{ merchant_id: string }>("select merchant_id from merchant_accounts where account = $1", [account]);
  return rows[0]?.merchant_id;
}

/** One of `accounts` that an open payment of the merchant pays, if any. */
export async function accountWithOpenPayments(db: Db, merchantId: string, accounts: string[]): Promise<string | undefined> {
  if (accounts.length === 0) return undefined;
  const { rows } = await db.query<{ destination: string }>(
    `select destination from payments where merchant_id = $1 and destination = any ($2::text[]) and status in ('pending', 'partially_paid') limit 1`,
    [merchantId, accounts],
  );
  return rows[0]?.destination;
}

/**
 * Inserts the merchant row alone; its accounts follow with `setMerchantAccounts` and its home domain
 * with `setHomeDomain`, in the same transaction.
 */
export async function insertMerchant(db: Db, id: string, m: MerchantProfile, now: Date): Promise<void> {
  await db.query(
    `insert into merchants (id, name, email, org, accepted_assets, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $6)`,
    [id, m.name, m.email, JSON.stringify(m.org), JSON.stringify(m.acceptedAssets), now],
  );
}

export async function getMerchant(db: Db, id: string): Promise<Merchant | undefined> {
  const { rows } = await db.query<MerchantRow>(`select ${MERCHANT_COLUMNS} from merchants m where id = $1`, [id]);
  return rows[0] && toMerchant(rows[0]);
}

/** The merchant that has proven control of `homeDomain`; pending claims do not count. */
export async function getMerchantByVerifiedHomeDomain(db: Db, homeDomain: string): Promise<Merchant | undefined> {
  const { rows } = await db.query<MerchantRow>(
    `select ${MERCHANT_COLUMNS} from merchants m where home_domain = $1 and home_domain_verified_at is not null`,
    [homeDomain],
  );
  return rows[0] && toMerchant(rows[0]);
}

/** Replaces the merchant's home-domain claim (null: none). */
export async function setHomeDomain(db: Db, id: string, claim: HomeDomain | null): Promise<void> {
  await db.query("update merchants set home_domain = $2, home_domain_token = $3, home_domain_verified_at = $4 where id = $1", [
    id,
    claim?.name ?? null,
    claim?.token ?? null,
    claim?.verifiedAt ?? null,
  ]);
}

/** Marks `claim` verified if it is still the merchant's pending claim; false when it changed meanwhile. */
export async function markHomeDomainVerified(db: Db, id: string, claim: HomeDomain, now: Date): Promise<boolean> {
  const { rowCount } = await db.query(
    `update merchants set home_domain_verified_at = $4, updated_at = $4
     where id = $1 and home_domain = $2 and home_domain_token = $3 and home_domain_verified_at is null`,
    [id, claim.name, claim.token, now],
  );
  return rowCount === 1;
}

/**
 * Where a merchant's id is announced when the merchant, what it publishes (its stellar.toml) or its API
 * keys may have changed.
 */
export const MERCHANT_CHANGES_CHANNEL = "lumenpay_merchants";

/**
 * Announces, at commit, that the merchant's published data may have changed, so every instance drops
 * what it cached. Run it in the transaction that writes: a rollback sends nothing.
 */
export async function notifyMerchantChanged(db: Db, merchantId: string): Promise<void> {
  await db.query("select pg_notify($1, $2)", [MERCHANT_CHANGES_CHANNEL, merchantId]);
}

export async function listMerchants(db: Db): Promise<Merchant[]> {
  const { rows } = await db.query<MerchantRow>(`select ${MERCHANT_COLUMNS} from merchants m order by created_at, id`);
  return rows.map(toMerchant);
}

/**
 * Updates the merchant row; accounts change with `setMerchantAccounts` in the same transaction. The home
 * domain changes only through `setHomeDomain`, so a profile update never undoes a verification made meanwhile.
 */
export async function updateMerchant(db: Db, id: string, m: MerchantProfile, now: Date): Promise<void> {
  await db.query(`update merchants set name = $2, email = $3, org = $4, accepted_assets = $5, updated_at = $6 where id = $1`, [
    id,
    m.name,
    m.email,
    JSON.stringify(m.org),
    JSON.stringify(m.acceptedAssets),
    now,
  ]);
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
/** What an API key lookup found: the key, its merchant, and the requests counted in the key's window so far. */
export interface KeyLookup {
  key: ApiKey;
  merchant: Merchant;
  /** Requests in the key's one-minute window, on every instance, as of this lookup (its own `uses` included). */
  windowRequests: number;
  windowStart: Date;
}

/** The start of the one-minute rate-limit window `now` falls in. */
export const usageWindowStart = (now: Date) => new Date(now.getTime() - (now.getTime() % 60_000));

/**
 * The usable key with this hash and its merchant, adding `uses` requests to the key's current one-minute
 * window (shared by every instance) and recording the key's use at minute granularity (a write on every
 * request would contend on one row): one round trip.
 */
export async function findMerchantByApiKey(db: Db, hash: Buffer, now: Date, uses: number): Promise<KeyLookup | undefined> {
  const windowStart = usageWindowStart(now);
  const { rows } = await db.query<
    MerchantRow & { key_id: string; key_prefix: string; key_created_at: Date; key_expires_at: Date | null; key_last_used_at: Date | null; window_requests: number }
  >(
    `with found as (
       select ${MERCHANT_COLUMNS}, k.id as key_id, k.prefix as key_prefix, k.created_at as key_created_at,
              k.expires_at as key_expires_at, k.last_used_at as key_last_used_at
       from api_keys k join merchants m on m.id = k.merchant_id
       where k.hash = $1 and k.revoked_at is null and (k.expires_at is null or k.expires_at > $2)
     ), counted as (
       insert into api_key_usage (key_id, window_start, requests) select key_id, $3, $4 from found
       on conflict (key_id, window_start) do update set requests = api_key_usage.requests + excluded.requests
       returning requests
     ), touched as (
       update api_keys set last_used_at = $2
       where id = (select key_id from found) and (last_used_at is null or last_used_at < $2::timestamptz - interval '1 minute')
     )
     select found.*, (select requests from counted) as window_requests from found`,
    [hash, now, windowStart, uses],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    windowRequests: r.window_requests,
    windowStart,
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

/** Forgets the request counts of windows that ended before `before`. */
export async function purgeApiKeyUsage(db: Db, before: Date): Promise<number> {
  const { rowCount } = await db.query("delete from api_key_usage where window_start < $1", [new Date(before.getTime() - 60_000)]);
  return rowCount ?? 0;
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
