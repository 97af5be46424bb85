import { setTimeout as sleep } from "node:timers/promises";
import type { Horizon } from "@stellar/stellar-sdk";
import type client from "prom-client";
import { backoffMs } from "../backoff.js";
import type { Clock } from "../clock.js";
import { transaction, type Db, type Pool } from "../db/pool.js";
import { CLOCK_SLACK_MS } from "../payments/matching.js";
import type { PaymentLinks } from "../payments/service.js";
import { asPaymentRecords, type HorizonPaymentRecord } from "./incoming.js";
import { advanceCursor, initCursor, parsePagingToken, readCursor, reachBackSince, type CursorKey } from "./ingest-store.js";

export interface ApplyContext {
  now: Date;
  networkPassphrase: string;
  links: PaymentLinks;
  /** The account whose payments these are. */
  account: string;
}

/**
 * Applies one record inside the transaction `tx` that also advances the cursor. It must be
 * idempotent: a record is replayed when a cursor is reset or during a lock handover.
 */
export interface ApplyRecord<T> {
  (tx: Db, record: HorizonPaymentRecord, ctx: ApplyContext): Promise<T>;
  /**
   * Applies a page's records at once, with the outcome of each: what calling the function on each
   * record in turn would do, in fewer round trips. Ingestion uses it when present.
   */
  page?: (tx: Db, records: HorizonPaymentRecord[], ctx: ApplyContext) => Promise<T[]>;
}

/**
 * What ingestion reports per account. Kept in memory rather than as labelled metrics, because a
 * merchant's account is not for /metrics; the exported gauges aggregate it (ingest.ts).
 */
export interface IngestMetrics {
  /** 1 while the account's payments stream, 0 while (re)connecting; absent when this instance does not hold it. */
  streams: Map<string, 0 | 1>;
  /** Seconds from the close of the account's last processed record to its commit. */
  lag: Map<string, number>;
  reconnects: client.Counter<"reason">;
}

export interface IngestLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AccountIngestionDeps<T> {
  server: Horizon.Server;
  pool: Pool;
  key: CursorKey;
  apply: ApplyRecord<T>;
  /** Called with each outcome once its transaction has committed. */
  observe: ((outcome: T) => void) | undefined;
  links: PaymentLinks;
  clock: Clock;
  log: IngestLog;
  metrics: IngestMetrics;
  /** A stream silent this long is reconnected: Horizon sends records only, no heartbeats. */
  watchdogMs: number;
  signal: AbortSignal;
}

/** Horizon's largest page. */
const PAGE_LIMIT = 200;
// A stream outrunning the database is dropped past this backlog; paging, which waits for us, resumes.
const MAX_BUFFERED = 10 * PAGE_LIMIT;
/** Reconnections to Horizon and to the lock connection: from half a second, doubling up to 30 s. */
export const RECONNECT_BACKOFF = { baseMs: 500, maxMs: 30_000 };

/** `promise`, or a rejection as soon as `signal` aborts, so shutdown never waits on a slow Horizon. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  // After an abort nobody awaits `promise`; its later failure (Horizon unreachable, say) must not
  // become an unhandled rejection, which would end the process mid-shutdown.
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

type StreamEnd = "silence" | "overflow" | "aborted";

class StreamError extends Error {
  constructor(event: { message?: string; status?: number }) {
    super(`payment stream failed: ${event.message || (event.status ? `HTTP ${event.status}` : "connection lost")}`);
    this.name = "StreamError";
  }
}

/**
 * Ingests one account's payments until `signal` aborts: resumes from the stored cursor (or, the
 * first time, from the account's latest payment), pages forward until caught up, then streams.
 * Any failure reconnects with backoff, and every reconnection starts over from the stored cursor.
 */
export async function ingestAccount<T>(deps: AccountIngestionDeps<T>): Promise<void> {
  const { signal, metrics, key } = deps;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const position = await catchUp(deps, await startingCursor(deps));
      // Only a stream that worked resets the backoff: one failing right after every catch-up would
      // otherwise have each account poll Horizon twice a second.
      metrics.reconnects.inc({ reason: await streamFrom(deps, position, () => (failures = 0)) });
      failures = 0;
    } catch (error) {
      if (signal.aborted) break;
      failures++;
      metrics.reconnects.inc({ reason: "error" });
      deps.log.warn({ err: error, account: key.account, failures }, "payment ingestion failed; reconnecting");
      await sleep(backoffMs(failures, RECONNECT_BACKOFF, Math.random), undefined, { signal }).catch(() => undefined);
    }
  }
  // Another instance may hold this account now; a stale entry here would contradict it.
  metrics.streams.delete(key.account);
  metrics.lag.delete(key.account);
}

const payments = (deps: Pick<AccountIngestionDeps<unknown>, "server" | "key">) => deps.server.payments().forAccount(deps.key.account);

// How far back (in pages of the account's payments, newest first) a first start may look.
const FIRST_START_MAX_PAGES = 100;

/**
 * Where an account's ingestion starts. A stored cursor is resumed. The first start reaches back to
 * when the merchant attached the account, and to the creation of any payment to it that could still
 * be matched (open, or inside its monitoring window; see `reachBackSince`): whatever happened while
 * Lumenpay or Horizon was down is applied, on-chain close times deciding. The result is stored
 * before any record is applied, so a restart resumes from it rather than from a later "now".
 */
async function startingCursor<T>(deps: AccountIngestionDeps<T>): Promise<bigint> {
  const stored = await readCursor(deps.pool, deps.key);
  if (stored !== undefined) return stored;
  const reachBack = await reachBackSince(deps.pool, [deps.key.account], deps.clock.now(), CLOCK_SLACK_MS);
  const token = await reachBackToken(deps, deps.key.account, reachBack.get(deps.key.account));
  return initCursor(deps.pool, deps.key, token, deps.clock.now());
}

/**
 * The paging token after which `account`'s payments closed at or after `since` begin (its latest
 * payment's when `since` is undefined): Horizon lists an account's payments newest first, read back
 * until one is older, at most `FIRST_START_MAX_PAGES` pages (with a warning when that was not enough).
 */
export async function reachBackToken(
  deps: { server: Horizon.Server; signal: AbortSignal; log: Pick<IngestLog, "warn"> },
  account: string,
  since: Date | undefined,
): Promise<bigint> {
  const sinceMs = since?.getTime() ?? Number.POSITIVE_INFINITY;
  let page = await untilAborted(deps.server.payments().forAccount(account).order("desc").limit(PAGE_LIMIT).call(), deps.signal);
  let token = page.records[0] ? parsePagingToken(page.records[0].paging_token) : 0n;
  for (let pages = 1; ; pages++) {
    const older = page.records.find((r) => Date.parse(r.created_at) < sinceMs);
    if (older) return parsePagingToken(older.paging_token);
    const last = page.records.at(-1);
    if (last) token = parsePagingToken(last.paging_token) - 1n;
    if (page.records.length < PAGE_LIMIT) break;
    if (pages >= FIRST_START_MAX_PAGES) {
      deps.log.warn(
        { account, since: new Date(sinceMs).toISOString() },
        `first start: the account's last ${FIRST_START_MAX_PAGES * PAGE_LIMIT} payments reach back less far; older records are skipped`,
      );
      break;
    }
    page = await untilAborted(page.next(), deps.signal);
  }
  return token < 0n ? 0n : token;
}

/**
 * Pages a catch-up reads ahead of its commits. A commit waits on PostgreSQL longer than the next page
 * takes to arrive, so pages pile up meanwhile; the next commit takes them all at once and pays a
 * transaction's round trips and WAL flush once for up to this many pages.
 */
const READ_AHEAD_PAGES = 10;

/** Pages forward from `from` until a page comes back short; returns the cursor reached. */
async function catchUp<T>(deps: AccountIngestionDeps<T>, from: bigint): Promise<bigint> {
  const pages: HorizonPaymentRecord[][] = [];
  // An object, so that the compiler sees the reader's writes.
  const state: { reading: boolean; stopped: boolean; failure?: unknown; wake?: () => void; room?: () => void } = { reading: true, stopped: false };
  // Never rejects: a failure is kept for the committing loop, which may have left already.
  void (async () => {
    try {
      let page = await untilAborted(payments(deps).cursor(from.toString()).limit(PAGE_LIMIT).join("transactions").call(), deps.signal);
      for (;;) {
        pages.push(asPaymentRecords(page.records));
        state.wake?.();
        if (page.records.length < PAGE_LIMIT) return;
        while (pages.length >= READ_AHEAD_PAGES && !state.stopped) await new Promise<void>((resolve) => (state.room = resolve));
        if (state.stopped) return;
        page = await untilAborted(page.next(), deps.signal);
      }
    } catch (error) {
      state.failure = error;
    } finally {
      state.reading = false;
      state.wake?.();
    }
  })();
  let position = from;
  try {
    for (;;) {
      if (pages.length === 0) {
        if (!state.reading) {
          // What was read before a failure is committed first, as the failure may be the next page's.
          if (state.failure !== undefined) throw state.failure;
          return position;
        }
        await new Promise<void>((resolve) => (state.wake = resolve));
        state.wake = undefined;
        continue;
      }
      deps.signal.throwIfAborted();
      const records = pages.splice(0).flat();
      state.room?.();
      position = await commit(deps, records, position);
    }
  } finally {
    // A failed commit or an abort: the reader stops before its next page, and nothing it read is used.
    state.stopped = true;
    state.room?.();
  }
}

/**
 * Streams from `from`, committing what arrives in batches (calling `onCommitted` after each), until
 * silence, overflow or abort; throws when the stream fails.
 */
async function streamFrom<T>(deps: AccountIngestionDeps<T>, from: bigint, onCommitted: () => void): Promise<StreamEnd> {
  const { signal, metrics, key } = deps;
  // An abort during catch-up's last commit has already fired: no listener would hear it.
  signal.throwIfAborted();
  const queue: HorizonPaymentRecord[] = [];
  // An object, so that the compiler sees the callbacks' writes.
  const state: { end?: StreamEnd | StreamError; wake?: () => void } = {};
  const finish = (end: StreamEnd | StreamError) => {
    state.end ??= end;
    state.wake?.();
  };
  const watchdog = setTimeout(() => finish("silence"), deps.watchdogMs);
  const onAbort = () => finish("aborted");
  signal.addEventListener("abort", onAbort, { once: true });
  const close = payments(deps)
    .cursor(from.toString())
    .join("transactions")
    .stream({
      // The SDK's own silence timer reconnects behind our back; ours always fires first.
      reconnectTimeout: deps.watchdogMs * 2,
      onmessage: (record) => {
        watchdog.refresh();
        queue.push(...asPaymentRecords([record]));
        if (queue.length > MAX_BUFFERED) finish("overflow");
        state.wake?.();
      },
      onerror: (event) => finish(new StreamError(event as { message?: string; status?: number })),
    });
  metrics.streams.set(key.account, 1);
  try {
    let position = from;
    while (!state.end) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => (state.wake = resolve));
        state.wake = undefined;
        continue;
      }
      position = await commit(deps, queue.splice(0, PAGE_LIMIT), position);
      onCommitted();
    }
  } finally {
    close();
    clearTimeout(watchdog);
    signal.removeEventListener("abort", onAbort);
    metrics.streams.set(key.account, 0);
  }
  if (state.end instanceof StreamError) throw state.end;
  return state.end;
}

/**
 * Applies the records after `position` and advances the stored cursor past them, in one
 * transaction, so the cursor never gets ahead of the effects (nor behind them). Returns the new position.
 * The cursor is advanced first: that locks its row, which serialises instances (one that has lost its
 * advisory lock without noticing yet waits there, then skips whatever the new holder committed
 * meanwhile), and the records at or below where it was are skipped.
 */
async function commit<T>(deps: AccountIngestionDeps<T>, records: HorizonPaymentRecord[], position: bigint): Promise<bigint> {
  const fresh = records.filter((r) => parsePagingToken(r.paging_token) > position);
  const last = fresh.at(-1);
  if (!last) return position;
  const now = deps.clock.now();
  const ctx: ApplyContext = { now, networkPassphrase: deps.key.networkPassphrase, links: deps.links, account: deps.key.account };
  const { outcomes, cursor } = await transaction(deps.pool, async (tx) => {
    let cursor = await advanceCursor(tx, deps.key, parsePagingToken(last.paging_token), now);
    if (cursor === undefined) throw new Error(`the cursor of ${deps.key.account} was deleted`);
    const toApply: HorizonPaymentRecord[] = [];
    for (const record of fresh) {
      const token = parsePagingToken(record.paging_token);
      if (token <= cursor) continue;
      // Horizon lists failed transactions only when asked to (include_failed); never count one.
      if (record.transaction_successful !== false) toApply.push(record);
      cursor = token;
    }
    const outcomes: T[] = [];
    if (deps.apply.page) outcomes.push(...(await deps.apply.page(tx, toApply, ctx)));
    else for (const record of toApply) outcomes.push(await deps.apply(tx, record, ctx));
    return { outcomes, cursor };
  });
  for (const outcome of outcomes) deps.observe?.(outcome);
  deps.metrics.lag.set(deps.key.account, Math.max(0, (deps.clock.now().getTime() - Date.parse(last.created_at)) / 1000));
  return cursor;
}
