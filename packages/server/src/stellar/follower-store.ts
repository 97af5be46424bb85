import type { Db } from "../db/pool.js";

/** An account the ledger follower watches, with what of its history is not to be applied again. */
export interface FollowedAccount {
  account: string;
  /** Operations closed before it are none of the merchant's. */
  since: Date;
  /** Operations at or before this TOID were applied by Horizon ingestion. */
  afterOperation: bigint;
  /** The last ledger applied for it while it catches up on its own; null once the follower covers it. */
  catchUpLedger: number | null;
}

/** The follower's position: every ledger up to it is applied for the accounts it covers. Undefined before its first start. */
export async function readFollower(db: Db, networkPassphrase: string, { forUpdate = false } = {}): Promise<number | undefined> {
  const { rows } = await db.query<{ ledger: number }>(
    `select ledger from ledger_followers where network_passphrase = $1${forUpdate ? " for update" : ""}`,
    [networkPassphrase],
  );
  return rows[0]?.ledger;
}

/** Creates the follower at `ledger` unless it exists; returns the position in effect. */
export async function initFollower(db: Db, networkPassphrase: string, ledger: number, now: Date): Promise<number> {
  await db.query(
    `insert into ledger_followers (network_passphrase, ledger, updated_at) values ($1, $2, $3) on conflict (network_passphrase) do nothing`,
    [networkPassphrase, ledger, now],
  );
  return (await readFollower(db, networkPassphrase))!;
}

/** Moves the follower to `ledger`; never backwards. */
export async function advanceFollower(db: Db, networkPassphrase: string, ledger: number, now: Date): Promise<void> {
  await db.query(`update ledger_followers set ledger = greatest(ledger, $2), updated_at = $3 where network_passphrase = $1`, [networkPassphrase, ledger, now]);
}

export async function listFollowedAccounts(db: Db, networkPassphrase: string): Promise<FollowedAccount[]> {
  const { rows } = await db.query<{ account: string; since: Date; after_operation: string; catch_up_ledger: number | null }>(
    "select account, since, after_operation, catch_up_ledger from followed_accounts where network_passphrase = $1 order by account",
    [networkPassphrase],
  );
  return rows.map((r) => ({ account: r.account, since: r.since, afterOperation: BigInt(r.after_operation), catchUpLedger: r.catch_up_ledger }));
}

/** Adds accounts (those already watched stay as they are), in one statement. */
export async function insertFollowedAccounts(db: Db, networkPassphrase: string, accounts: FollowedAccount[]): Promise<void> {
  if (accounts.length === 0) return;
  await db.query(
    `insert into followed_accounts (network_passphrase, account, since, after_operation, catch_up_ledger)
     select $1, * from unnest($2::text[], $3::timestamptz[], $4::int8[], $5::int4[])
     on conflict (network_passphrase, account) do nothing`,
    [
      networkPassphrase,
      accounts.map((a) => a.account),
      accounts.map((a) => a.since),
      accounts.map((a) => a.afterOperation.toString()),
      accounts.map((a) => a.catchUpLedger),
    ],
  );
}

export async function deleteFollowedAccounts(db: Db, networkPassphrase: string, accounts: string[]): Promise<void> {
  if (accounts.length === 0) return;
  await db.query("delete from followed_accounts where network_passphrase = $1 and account = any ($2::text[])", [networkPassphrase, accounts]);
}

/**
 * Moves catching-up accounts to `ledger`, or hands them to the follower (null) once they reach it.
 * Returns the accounts whose catch-up was where the caller thought (`from`): the row lock serialises
 * instances, as the follower's row does for the follower.
 */
export async function advanceCatchUp(db: Db, networkPassphrase: string, accounts: string[], from: number, ledger: number | null): Promise<string[]> {
  const { rows } = await db.query<{ account: string }>(
    `update followed_accounts set catch_up_ledger = $4
     where network_passphrase = $1 and account = any ($2::text[]) and catch_up_ledger = $3
     returning account`,
    [networkPassphrase, accounts, from, ledger],
  );
  return rows.map((r) => r.account);
}

/** Where Horizon ingestion left each of `accounts` (a TOID), for a switch from Horizon to RPC. */
export async function horizonCursors(db: Db, networkPassphrase: string, accounts: string[]): Promise<Map<string, bigint>> {
  const { rows } = await db.query<{ account: string; paging_token: string }>(
    "select account, paging_token from stellar_cursors where network_passphrase = $1 and account = any ($2::text[])",
    [networkPassphrase, accounts],
  );
  return new Map(rows.map((r) => [r.account, BigInt(r.paging_token)]));
}
