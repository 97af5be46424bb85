import type { Clock } from "./clock.js";

/** What a lookup found: the merchant a key names and what is served for it, or null when it names none. */
export type Found<T> = { merchantId: string; value: T } | null;

interface Entry<T> {
  merchantId: string | null;
  value: T | null;
  bytes: number;
  /** Clock time (ms) when the read that produced it began. */
  readAt: number;
}

export interface LookupCacheOptions<T> {
  /** Reads what `key` names now; one query, as it runs on every miss. */
  load(key: string): Promise<Found<T>>;
  /** How much memory an entry holds, to bound the total. */
  sizeOf(key: string, value: T | null): number;
  clock: Clock;
  /** An entry older than this is read again: the bound on staleness when a change notification is lost. */
  maxAgeMs: number;
  maxEntries: number;
  maxBytes: number;
}

/**
 * Lookups by key (a Host, a merchant id, an API key's hash), including the keys that name no merchant, kept in least
 * recently used order within `maxEntries` and `maxBytes`. Concurrent misses on a key share one read.
 */
export class LookupCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly reading = new Map<string, Promise<T | null>>();
  private bytes = 0;
  /** The key of the last entry in `entries`, when known. */
  private newest: string | undefined;
  /** Bumped by every invalidation: a read begun before one may have seen the old data, so it is not kept. */
  private generation = 0;

  constructor(private readonly opts: LookupCacheOptions<T>) {}

  get size(): number {
    return this.entries.size;
  }

  /** What `key` names: from memory while the entry is younger than `maxAgeMs`, else read afresh. */
  get(key: string): T | null | Promise<T | null> {
    const now = this.opts.clock.now().getTime();
    const entry = this.entries.get(key);
    // A clock that went back counts as expired: the entry's age is unknown.
    if (entry && now >= entry.readAt && now - entry.readAt < this.opts.maxAgeMs) {
      // Moved to the end (most recently used) unless it is there already: a hot key costs no re-insert.
      if (key !== this.newest) {
        this.entries.delete(key);
        this.entries.set(key, entry);
        this.newest = key;
      }
      return entry.value;
    }
    return this.reading.get(key) ?? this.read(key, now);
  }

  /** Forgets what `merchantId` was cached under, and every key that named nobody: the change may make one name it. */
  dropMerchant(merchantId: string): void {
    for (const [key, entry] of this.entries) {
      if (entry.merchantId === merchantId || entry.merchantId === null) this.remove(key, entry);
    }
    this.invalidateReads();
  }

  clear(): void {
    this.entries.clear();
    this.newest = undefined;
    this.bytes = 0;
    this.invalidateReads();
  }

  private invalidateReads(): void {
    this.generation++;
    // Later requests must not join a read that may predate the change.
    this.reading.clear();
  }

  private read(key: string, now: number): Promise<T | null> {
    const generation = this.generation;
    const reading = this.opts
      .load(key)
      .then((found) => {
        const value = found?.value ?? null;
        if (generation === this.generation) this.store(key, { merchantId: found?.merchantId ?? null, value, bytes: this.opts.sizeOf(key, value), readAt: now });
        return value;
      })
      .finally(() => {
        if (this.reading.get(key) === reading) this.reading.delete(key);
      });
    this.reading.set(key, reading);
    return reading;
  }

  private store(key: string, entry: Entry<T>): void {
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    if (entry.bytes > this.opts.maxBytes) return;
    this.entries.set(key, entry);
    this.newest = key;
    this.bytes += entry.bytes;
    // Map iteration follows insertion order, and hits re-insert: the first entries are the least recently used.
    for (const [oldestKey, oldest] of this.entries) {
      if (this.entries.size <= this.opts.maxEntries && this.bytes <= this.opts.maxBytes) break;
      this.remove(oldestKey, oldest);
    }
  }

  private remove(key: string, entry: Entry<T>): void {
    this.entries.delete(key);
    if (key === this.newest) this.newest = undefined;
    this.bytes -= entry.bytes;
  }
}
