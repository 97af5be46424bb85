import { setTimeout as sleep } from "node:timers/promises";
import client from "prom-client";
import { backoffMs } from "../backoff.js";
import type { Clock } from "../clock.js";
import { transaction, type Db, type Pool } from "../db/pool.js";
import type { Metrics } from "../metrics/registry.js";
import { CLOCK_SLACK_MS } from "../payments/matching.js";
import type { PaymentLinks } from "../payments/service.js";
import { advisoryLocks, ingestLockKey, leaseLocks } from "./account-locks.js";
import {
  advanceCatchUp,
  advanceFollower,
  deleteFollowedAccounts,
  horizonCursors,
  initFollower,
  insertFollowedAccounts,
  listFollowedAccounts,
  readFollower,
  type FollowedAccount,
} from "./follower-store.js";
import type { IncomingOperation } from "./incoming.js";
import { RECONNECT_BACKOFF, type ApplyContext, type IngestLog } from "./ingest-account.js";
import { listMerchantAccounts, reachBackSince } from "./ingest-store.js";
import { MERCHANT_CHANGES_CHANNEL } from "../merchants/store.js";
import { createNotificationListener } from "../webhooks/listener.js";
import type { LedgerSource, LedgerWindow, Scanned } from "./ledger-source.js";

/** Applies one account's operations, in ledger order, in the transaction that advances the position. */
export type ApplyOperations<T> = (tx: Db, ops: Array<IncomingOperation | { ignored: string }>, ctx: ApplyContext) => Promise<T[]>;

export interface FollowerDeps<T> {
  pool: Pool;
  /** A direct connection string for the follower's advisory lock; without one it is held with a lease. */
  connectionString: string | undefined;
  leaseTtlMs?: number;
  /** Where the chain is read; closed when ingestion stops. */
  source: LedgerSource;
  networkPassphrase: string;
  links: PaymentLinks;
  clock: Clock;
  log: IngestLog;
  metrics: Pick<Metrics, "registry">;
  signal: AbortSignal;
  apply: ApplyOperations<T>;
  observe?: (outcome: T) => void;
  /** How often a follower that has caught up asks for new ledgers; default 1 s. */
  pollMs?: number;
  /** How often merchant accounts are re-read, besides when a merchant's change is announced; default 10 s. */
  pollAccountsMs?: number;
  /** The most ledgers one transaction applies; default 100. */
  maxLedgersPerRange?: number;
}

const DEFAULT_POLL_MS = 1_000;
const DEFAULT_POLL_ACCOUNTS_MS = 10_000;
const DEFAULT_LEASE_TTL_MS = 30_000;
const DEFAULT_MAX_LEDGERS = 100;
/** The lock every instance competes for: one follower per network (an account name no account can have). */
const FOLLOWER_LOCK = "ledger-follower";
export const followerLockKey = (networkPassphrase: string) => ingestLockKey(networkPassphrase, FOLLOWER_LOCK);

interface FollowerMetrics {
  followerLedger: client.Gauge;
  lagSeconds: client.Gauge;
  gapLedgers: client.Gauge;
}

export function createFollowerMetrics(registry: client.Registry): FollowerMetrics {
  return {
    followerLedger: new client.Gauge({ name: "ingest_follower_ledger", help: "The last ledger the ledger follower applied.", registers: [registry] }),
    lagSeconds: new client.Gauge({
      name: "ingest_follower_lag_seconds",
      help: "Seconds from the close of the latest ledger to when the follower last caught up with it.",
      registers: [registry],
    }),
    gapLedgers: new client.Gauge({
      name: "ingest_retention_gap_ledgers",
      help: "Ledgers ingestion still needs that its source no longer keeps (0 when none): run `lumenpay ingest backfill`.",
      registers: [registry],
    }),
  };
}

/** Whether `op` is for ingestion to apply: not from before the merchant had the account, nor applied by Horizon stream ingestion already. */
export const isDue = (op: IncomingOperation | { ignored: string }, watched: Pick<FollowedAccount, "since" | "afterOperation">): boolean =>
  "ignored" in op || (op.closedAt >= watched.since && BigInt(op.operationId) > watched.afterOperation);

/**
 * Ingests every merchant account's payments with one follower per network: whichever instance holds
 * the follower's lock reads each range of ledgers once for every account from `source` (Stellar RPC's
 * events or Horizon's payment lists), applies each account's operations with the same matching code
 * as stream ingestion, and advances the position in the same transaction. An account added later
 * catches up on its own from its start until it reaches the follower, then joins it: an account's
 * ledgers are never applied out of order. A position older than what the source keeps stalls loudly
 * instead of skipping. Resolves once `signal` has aborted.
 */
export function startFollowerIngestion<T>(deps: FollowerDeps<T>): { done: Promise<void> } {
  const { signal, log, networkPassphrase } = deps;
  const follower = new Follower(deps, createFollowerMetrics(deps.metrics.registry));
  const pollAccountsMs = deps.pollAccountsMs ?? DEFAULT_POLL_ACCOUNTS_MS;
  // A merchant's accounts changed (or the listener reconnected, so changes may have been missed):
  // re-read them within a poll rather than at the next account sync. Needs a direct connection.
  const changes =
    deps.connectionString === undefined
      ? undefined
      : createNotificationListener({ connectionString: deps.connectionString, channel: MERCHANT_CHANGES_CHANNEL, log, onNotification: () => follower.accountsChanged() });

  const holdLock = async (onHeld: () => void): Promise<void> => {
    const locks = deps.connectionString
      ? await advisoryLocks(deps.connectionString, networkPassphrase)
      : leaseLocks(deps.pool, networkPassphrase, deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS);
    const lost = AbortSignal.any([signal, locks.lost]);
    try {
      let held = false;
      while (!lost.aborted) {
        held = held ? (await locks.renew([FOLLOWER_LOCK])).length === 0 : (await locks.take([FOLLOWER_LOCK])).length === 1;
        onHeld();
        if (held) await follower.runFor(pollAccountsMs, lost);
        else await sleep(pollAccountsMs, undefined, { signal: lost }).catch(() => undefined);
      }
    } finally {
      await locks.close().catch(() => undefined);
    }
    if (!signal.aborted) throw locks.lost.reason ?? new Error("the follower's lock was lost");
  };

  const done = (async () => {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await holdLock(() => (failures = 0));
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        log.error({ err: error, failures }, "payment ingestion failed; retrying");
        await sleep(backoffMs(failures, RECONNECT_BACKOFF, Math.random), undefined, { signal }).catch(() => undefined);
      }
    }
  })().finally(() => Promise.all([deps.source.close(), changes?.close()]));
  return { done };
}

const SOURCE_NAMES = { rpc: "Stellar RPC", horizon: "Horizon" } as const;

/** The follower's work while this instance holds its lock. */
class Follower<T> {
  private accounts = new Map<string, FollowedAccount>();
  /** The follower's stored position, as this instance (the lock holder) last read or wrote it. */
  private position: number | undefined;
  private gapLogged = 0;
  private accountsStale = false;

  constructor(
    private readonly deps: FollowerDeps<T>,
    private readonly metrics: FollowerMetrics,
  ) {}

  /** Re-reads the accounts, then applies ledgers for `ms` (polling once caught up). Throws on failure. */
  async runFor(ms: number, signal: AbortSignal): Promise<void> {
    // Scheduling runs on the process's time; the clock is for what is written.
    const until = Date.now() + ms;
    let window = await this.deps.source.window();
    await this.syncAccounts(window);
    this.position = await readFollower(this.deps.pool, this.deps.networkPassphrase);
    while (!signal.aborted && Date.now() < until) {
      if (this.accountsStale) {
        this.accountsStale = false;
        await this.syncAccounts(window);
      }
      const progressed = (await this.catchUpStep(window)) || (await this.followStep(window));
      if (!progressed) {
        await sleep(this.deps.pollMs ?? DEFAULT_POLL_MS, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return;
        window = await this.deps.source.window();
      }
    }
  }

  /** Merchant accounts may have changed: they are re-read before the next range. */
  accountsChanged(): void {
    this.accountsStale = true;
  }

  /** Watches new merchant accounts (from where each must start) and forgets detached ones. */
  private async syncAccounts(w: LedgerWindow): Promise<void> {
    const { pool, networkPassphrase, clock } = this.deps;
    const wanted = new Set(await listMerchantAccounts(pool));
    const known = new Map((await listFollowedAccounts(pool, networkPassphrase)).map((a) => [a.account, a]));
    await deleteFollowedAccounts(pool, networkPassphrase, [...known.keys()].filter((a) => !wanted.has(a)));
    const added = [...wanted].filter((a) => !known.has(a));
    const since = added.length > 0 ? await reachBackSince(pool, added, clock.now(), CLOCK_SLACK_MS) : new Map<string, Date>();
    if (since.size > 0) {
      const horizon = await horizonCursors(pool, networkPassphrase, [...since.keys()]);
      const searched = await this.deps.source.ledgersBefore(
        [...since].filter(([account]) => !horizon.has(account)).map(([account, at]) => ({ account, since: at })),
        w,
      );
      // Where each account's scan starts: after what Horizon stream ingestion applied, else from its reach-back.
      const fresh = [...since].map(([account, at]): FollowedAccount & { startAfter: number } => {
        const after = horizon.get(account) ?? 0n;
        const startAfter = after > 0n ? Number(after >> 32n) - 1 : searched.get(account)!;
        return { account, since: at, afterOperation: after, catchUpLedger: startAfter, startAfter };
      });
      const position =
        (await readFollower(pool, networkPassphrase)) ?? (await initFollower(pool, networkPassphrase, Math.min(...fresh.map((a) => a.startAfter)), clock.now()));
      // An account that starts where the follower stands (or later) joins it at once.
      for (const a of fresh) if (a.startAfter >= position) a.catchUpLedger = null;
      await insertFollowedAccounts(pool, networkPassphrase, fresh);
      this.deps.log.info({ accounts: fresh.length }, `watching new accounts through ${SOURCE_NAMES[this.deps.source.name]}`);
    }
    this.accounts = new Map((await listFollowedAccounts(pool, networkPassphrase)).map((a) => [a.account, a]));
  }

  /** Moves the furthest-behind group of catching-up accounts one range forward; false when none is behind. */
  private async catchUpStep(w: LedgerWindow): Promise<boolean> {
    const { position } = this;
    const behind = [...this.accounts.values()].filter((a) => a.catchUpLedger !== null);
    if (position === undefined || behind.length === 0) return false;
    const lowest = Math.min(...behind.map((a) => a.catchUpLedger!));
    const members = behind.filter((a) => a.catchUpLedger === lowest);
    const group = members.map((a) => a.account);
    // Ledgers the source dropped that closed before every member's start hold nothing for them (close
    // times are whole seconds, hence strictly after): a start estimated at the window's edge that the
    // window has since passed is no gap.
    const from = Math.min(...members.map((a) => a.since.getTime())) > w.oldestClose ? Math.max(lowest, w.oldest - 1) : lowest;
    if (this.inGap(from, w)) return false;
    const to = Math.min(position, from + (this.deps.maxLedgersPerRange ?? DEFAULT_MAX_LEDGERS));
    const scanned = await this.scan(group, from + 1, to);
    await this.commit(scanned, async (tx) => {
      const moved = await advanceCatchUp(tx, this.deps.networkPassphrase, group, lowest, to >= position ? null : to);
      if (moved.length !== group.length) throw new Error("another instance moved the accounts' catch-up; starting over");
    });
    for (const account of group) this.accounts.get(account)!.catchUpLedger = to >= position ? null : to;
    return true;
  }

  /** Applies the next range of ledgers for every account the follower covers; false when there is none. */
  private async followStep(w: LedgerWindow): Promise<boolean> {
    const { networkPassphrase, clock } = this.deps;
    const { position } = this;
    if (position === undefined || position >= w.latest || this.inGap(position, w)) return false;
    const to = Math.min(w.latest, position + (this.deps.maxLedgersPerRange ?? DEFAULT_MAX_LEDGERS));
    const covered = [...this.accounts.values()].filter((a) => a.catchUpLedger === null).map((a) => a.account);
    const scanned = covered.length > 0 ? await this.scan(covered, position + 1, to) : new Map();
    await this.commit(scanned, async (tx) => {
      // Locking the row serialises instances: one that lost its lock without noticing waits, then finds the position moved.
      if ((await readFollower(tx, networkPassphrase, { forUpdate: true })) !== position) throw new Error("another instance moved the follower; starting over");
      await advanceFollower(tx, networkPassphrase, to, clock.now());
    });
    this.position = to;
    this.metrics.followerLedger.set(to);
    if (to === w.latest) this.metrics.lagSeconds.set(Math.max(0, (clock.now().getTime() - w.latestClose) / 1000));
    return true;
  }

  /** True when ledger `after + 1` is no longer kept by the source: raises the metric and an alert, never skips. */
  private inGap(after: number, w: LedgerWindow): boolean {
    const missing = w.oldest - (after + 1);
    if (missing <= 0) {
      this.metrics.gapLedgers.set(0);
      return false;
    }
    this.metrics.gapLedgers.set(missing);
    const now = Date.now();
    if (now - this.gapLogged >= 60_000) {
      this.gapLogged = now;
      this.deps.log.error(
        { after, oldestLedger: w.oldest, missingLedgers: missing },
        `${SOURCE_NAMES[this.deps.source.name]} no longer keeps ledgers ingestion has not applied; ingestion waits instead of skipping them. Fill the gap with \`lumenpay ingest backfill\``,
      );
    }
    return true;
  }

  /** The operations of ledgers `from` … `to` into `accounts` that are due, per account. */
  private async scan(accounts: string[], from: number, to: number): Promise<Scanned> {
    const scanned = await this.deps.source.scan(accounts, from, to);
    for (const [account, ops] of scanned) scanned.set(account, ops.filter((op) => isDue(op, this.accounts.get(account)!)));
    return scanned;
  }

  /** Applies `scanned` and moves the position (`advance`) in one transaction; observes the outcomes after it commits. */
  private async commit(scanned: Scanned, advance: (tx: Db) => Promise<void>): Promise<void> {
    const { pool, networkPassphrase, links, clock } = this.deps;
    const now = clock.now();
    const outcomes = await transaction(pool, async (tx) => {
      await advance(tx);
      const all: T[] = [];
      for (const [account, ops] of scanned) all.push(...(await this.deps.apply(tx, ops, { now, networkPassphrase, links, account })));
      return all;
    });
    for (const outcome of outcomes) this.deps.observe?.(outcome);
  }
}
