import type { Db } from "../db/pool.js";

/** Where ingestion of one account stands: the network and the account's G… address. */
export interface CursorKey {
  networkPassphrase: string;
  account: string;
}

/**
 * A Horizon paging token as a number. Tokens are int64 TOIDs: compared as strings "999" would
 * sort after "10000", and as JavaScript numbers they lose precision beyond 2^53.
 */
export function parsePagingToken(token: string): bigint {
  if (!/^\d{1,19}$/.test(token)) throw new TypeError(`not a paging token: "${token}"`);
  return BigInt(token);
}

/** Every account some merchant receives payments on. */
export async function listMerchantAccounts(db: Db): Promise<string[]> {
  const { rows } = await db.query<{ account: string }>("select account from merchant_accounts order by 1");
  return rows.map((r) => r.account);
}

/** The stored cursor. */
export async function readCursor(db: Db, key: CursorKey): Promise<bigint | undefined> {
  const { rows } = await db.query<{ paging_token: string }>(
    "select paging_token from stellar_cursors where network_passphrase = $1 and account = $2",
    [key.networkPassphrase, key.account],
  );
  return rows[0] && BigInt(rows[0].paging_token);
}

/** Stores `token` unless a cursor exists already; returns the cursor in effect. */
export async function initCursor(db: Db, key: CursorKey, token: bigint, now: Date): Promise<bigint> {
  await db.query(
    `insert into stellar_cursors (network_passphrase, account, paging_token, updated_at) values ($1, $2, $3, $4)
     on conflict (network_passphrase, account) do nothing`,
    [key.networkPassphrase, key.account, token.toString(), now],
  );
  return (await readCursor(db, key))!;
}

/**
 * Moves the cursor forward to `token` (a lower token leaves it where it is) and returns where it was,
 * in one statement: its row stays locked until the transaction ends, and an applier waiting for the
 * lock gets the position the holder committed. Undefined when the cursor does not exist.
 */
export async function advanceCursor(db: Db, key: CursorKey, token: bigint, now: Date): Promise<bigint | undefined> {
  const { rows } = await db.query<{ paging_token: string }>(
    `update stellar_cursors c set paging_token = greatest(c.paging_token, $3), updated_at = $4
     from (select paging_token from stellar_cursors where network_passphrase = $1 and account = $2 for update) previous
     where c.network_passphrase = $1 and c.account = $2
     returning previous.paging_token`,
    [key.networkPassphrase, key.account, token.toString(), now],
  );
  return rows[0] && BigInt(rows[0].paging_token);
}

/**
 * How far back a first start must look for each of `accounts`: to when its merchant attached it
 * (what it received before is none of the merchant's business), or to `slackMs` before the oldest
 * payment to it that an operation could still match (open, or inside its monitoring window) if
 * older — an account detached and attached again keeps its payments. Accounts no merchant owns are
 * left out. One statement for any number of accounts.
 */
export async function reachBackSince(db: Db, accounts: string[], now: Date, slackMs: number): Promise<Map<string, Date>> {
  const { rows } = await db.query<{ account: string; at: Date }>(
    `select a.account, least(
       -- Close times have whole seconds: an operation in the second of the attachment may be after it.
       date_trunc('second', a.created_at),
       (select min(p.created_at) from payments p
        where p.destination = a.account
          and (p.status in ('pending', 'partially_paid') or p.expires_at + p.monitor_for_s * interval '1 second' >= $2))
         - $3 * interval '1 millisecond'
     ) as at
     from merchant_accounts a where a.account = any ($1::text[])`,
    [accounts, now, slackMs],
  );
  return new Map(rows.map((r) => [r.account, r.at]));
}
