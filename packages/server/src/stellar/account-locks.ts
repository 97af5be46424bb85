import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import pg from "pg";
import type { Pool } from "../db/pool.js";

/**
 * Which instance ingests which account: at most one at a time. Two ways to hold an account:
 *
 * - session advisory locks on a dedicated connection (a direct one: a transaction pooler hands each
 *   query to another server connection, so a session lock there means nothing) — released by
 *   PostgreSQL the moment the holder's connection dies;
 * - leases in a table (`ingest_leases`), renewed on every poll and taken over once they expire —
 *   for a database reached only through a transaction pooler (PgBouncer, Supabase, Neon).
 *
 * Either way the cursor row lock taken when a batch commits (ingest-account.ts) stays the second
 * guard: an instance that lost its hold without noticing yet cannot apply a record twice.
 */
export interface AccountLocks {
  /** Aborts when held locks may be gone (the lock connection died). */
  readonly lost: AbortSignal;
  /** Tries to take `accounts`; returns those now held. */
  take(accounts: string[]): Promise<string[]>;
  /** Keeps `held` alive; returns the ones no longer held (a lease that expired). */
  renew(held: string[]): Promise<string[]>;
  release(account: string): Promise<void>;
  /** Releases everything this holder has. */
  close(): Promise<void>;
}

/** The advisory lock of one account on one network: 64 bits of a hash, namespaced against other lock users. */
export function ingestLockKey(networkPassphrase: string, account: string): string {
  return createHash("sha256").update(`lumenpay:ingest\n${networkPassphrase}\n${account}`).digest().readBigInt64BE(0).toString();
}

const holderName = () => `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;

/** Session advisory locks on a connection of their own (`connectionString` must not be a transaction pooler). */
export async function advisoryLocks(connectionString: string, networkPassphrase: string): Promise<AccountLocks> {
  const lost = new AbortController();
  const client = new pg.Client({ connectionString, application_name: `lumenpay-ingest ${process.pid}@${hostname()}`.slice(0, 63), keepAlive: true });
  client.on("error", (error) => lost.abort(error));
  client.on("end", () => lost.abort(new Error("the advisory lock connection closed")));
  await client.connect();
  const key = (account: string) => ingestLockKey(networkPassphrase, account);
  return {
    lost: lost.signal,
    async take(accounts) {
      // One round trip for every lock, which doubles as a liveness check of the lock connection.
      const { rows } = await client.query<{ account: string; locked: boolean }>(
        "select account, pg_try_advisory_lock(key) as locked from unnest($1::text[], $2::int8[]) as t(account, key)",
        [accounts, accounts.map(key)],
      );
      return rows.filter((r) => r.locked).map((r) => r.account);
    },
    // Held for as long as the connection lives; `lost` says when it does not.
    renew: async () => [],
    async release(account) {
      await client.query("select pg_advisory_unlock($1::int8)", [key(account)]);
    },
    async close() {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
    },
  };
}

/** Leases in `ingest_leases`, through the pool, valid `ttlMs` from each renewal by the database's clock. */
export function leaseLocks(pool: Pool, networkPassphrase: string, ttlMs: number): AccountLocks {
  const holder = holderName();
  return {
    lost: new AbortController().signal,
    async take(accounts) {
      const { rows } = await pool.query<{ account: string }>(
        `insert into ingest_leases (network_passphrase, account, holder, expires_at)
         select $1, account, $3, now() + $4 * interval '1 millisecond' from unnest($2::text[]) as t(account)
         on conflict (network_passphrase, account) do update set holder = excluded.holder, expires_at = excluded.expires_at
           where ingest_leases.expires_at < now() or ingest_leases.holder = excluded.holder
         returning account`,
        [networkPassphrase, accounts, holder, ttlMs],
      );
      return rows.map((r) => r.account);
    },
    async renew(held) {
      // Only a lease that has not run out is renewed: once it has, another instance may have started.
      const { rows } = await pool.query<{ account: string }>(
        `update ingest_leases set expires_at = now() + $4 * interval '1 millisecond'
         where network_passphrase = $1 and account = any ($2::text[]) and holder = $3 and expires_at > now()
         returning account`,
        [networkPassphrase, held, holder, ttlMs],
      );
      const kept = new Set(rows.map((r) => r.account));
      return held.filter((a) => !kept.has(a));
    },
    async release(account) {
      await pool.query("delete from ingest_leases where network_passphrase = $1 and account = $2 and holder = $3", [networkPassphrase, account, holder]);
    },
    async close() {
      await pool.query("delete from ingest_leases where holder = $1", [holder]);
    },
  };
}
