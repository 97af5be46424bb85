/**
 * Where the router remembers which event ids it has handled. Every method is one atomic step of
 * the store, so several processes sharing one store (Redis) never run a handler twice at once.
 */
export interface ReplayStore {
  /** Records `id` for `ttlSeconds` unless it is already recorded; true if it was not (first seen). */
  checkAndRemember(id: string, ttlSeconds: number): Promise<boolean>;
  /** Records `id` for `ttlSeconds`, replacing any earlier TTL (used to extend a reservation). */
  remember(id: string, ttlSeconds: number): Promise<void>;
  /** Forgets `id`, so its next delivery runs the handler (used after a handler failed). */
  forget(id: string): Promise<void>;
}

/**
 * Seven days. Lumenpay retries a delivery for about three days (3.15 days of scheduled delays,
 * up to 3.8 with +20 % jitter), and a merchant can resend one by hand later still; an id forgotten
 * before its last retry would run the handler again.
 */
export const DEFAULT_REPLAY_TTL_SECONDS = 7 * 24 * 3600;
export const DEFAULT_MAX_ENTRIES = 100_000;
export const DEFAULT_KEY_PREFIX = "lumenpay:webhooks:";

function checkTtl(ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) throw new TypeError("ttlSeconds must be a positive whole number");
}

export interface MemoryReplayStoreOptions {
  /** Ids kept at most; the least recently used is dropped beyond it. Default 100 000. */
  maxEntries?: number;
  /** Milliseconds since the epoch; injectable so tests can move time. */
  now?: () => number;
}

/**
 * A store in this process's memory: bounded (LRU) and expiring (TTL). It protects one process
 * only, and forgets on restart; run several instances behind a load balancer with `RedisReplayStore`.
 */
export class MemoryReplayStore implements ReplayStore {
  // A Map iterates in insertion order, so re-inserting on use keeps the least recently used first.
  readonly #entries = new Map<string, number>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: MemoryReplayStoreOptions = {}) {
    const { maxEntries = DEFAULT_MAX_ENTRIES, now = Date.now } = options;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new TypeError("maxEntries must be a positive whole number");
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  async checkAndRemember(id: string, ttlSeconds: number): Promise<boolean> {
    checkTtl(ttlSeconds);
    const expiresAt = this.#entries.get(id);
    if (expiresAt !== undefined && expiresAt > this.#now()) {
      this.#entries.delete(id);
      this.#entries.set(id, expiresAt);
      return false;
    }
    this.#set(id, ttlSeconds);
    return true;
  }

  async remember(id: string, ttlSeconds: number): Promise<void> {
    checkTtl(ttlSeconds);
    this.#set(id, ttlSeconds);
  }

  async forget(id: string): Promise<void> {
    this.#entries.delete(id);
  }

  #set(id: string, ttlSeconds: number): void {
    this.#entries.delete(id);
    this.#entries.set(id, this.#now() + ttlSeconds * 1000);
    // Expired entries need no sweep: they are dropped on use or, being unused, evicted first.
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(oldest);
    }
  }
}

/** node-redis v4/v5: `set(key, value, { NX: true, EX: ttl })`, resolving to "OK" or null. */
export interface NodeRedisLike {
  isOpen: boolean;
  set(key: string, value: string, options: { NX?: boolean; EX: number }): Promise<unknown>;
  del(key: string): Promise<unknown>;
}

/** ioredis: `set(key, value, "EX", ttl, "NX")`, resolving to "OK" or null. */
export interface IoRedisLike {
  status: string;
  set(key: string, value: string, ex: "EX", ttl: number): Promise<unknown>;
  set(key: string, value: string, ex: "EX", ttl: number, nx: "NX"): Promise<unknown>;
  del(key: string): Promise<unknown>;
}

/** The two Redis commands the store runs, for a client not recognised here. */
export interface RedisCommands {
  /** `SET key value EX ttlSeconds`, plus `NX` when `onlyIfAbsent`; true if the key was written. */
  set(key: string, value: string, ttlSeconds: number, onlyIfAbsent: boolean): Promise<boolean>;
  del(key: string): Promise<unknown>;
}

export type RedisReplayStoreOptions = (
  | { /** A connected node-redis v4/v5 or ioredis client. */ client: NodeRedisLike | IoRedisLike }
  | { commands: RedisCommands }
) & {
  /** Prepended to every id. Default "lumenpay:webhooks:". */
  prefix?: string;
};

// Both clients have set and del but take NX and EX differently, and one client given the other's
// arguments quietly drops NX; so each is recognised by a property only it has.
function clientCommands(client: NodeRedisLike | IoRedisLike): RedisCommands {
  if ("isOpen" in client && typeof client.isOpen === "boolean") {
    return {
      set: async (key, value, ttl, nx) => (await client.set(key, value, nx ? { NX: true, EX: ttl } : { EX: ttl })) !== null,
      del: (key) => client.del(key),
    };
  }
  if ("status" in client && typeof client.status === "string") {
    return {
      set: async (key, value, ttl, nx) =>
        (await (nx ? client.set(key, value, "EX", ttl, "NX") : client.set(key, value, "EX", ttl))) !== null,
      del: (key) => client.del(key),
    };
  }
  throw new TypeError(
    "RedisReplayStore recognises node-redis v4/v5 and ioredis clients; for another, pass " +
      "{ commands: { set(key, value, ttlSeconds, onlyIfAbsent), del(key) } }",
  );
}

/** A store shared by every process that uses the same Redis: `SET key 1 NX EX ttl` per id. */
export class RedisReplayStore implements ReplayStore {
  readonly #commands: RedisCommands;
  readonly #prefix: string;

  constructor(options: RedisReplayStoreOptions) {
    this.#commands = "commands" in options ? options.commands : clientCommands(options.client);
    this.#prefix = options.prefix ?? DEFAULT_KEY_PREFIX;
  }

  async checkAndRemember(id: string, ttlSeconds: number): Promise<boolean> {
    checkTtl(ttlSeconds);
    return this.#commands.set(this.#prefix + id, "1", ttlSeconds, true);
  }

  async remember(id: string, ttlSeconds: number): Promise<void> {
    checkTtl(ttlSeconds);
    await this.#commands.set(this.#prefix + id, "1", ttlSeconds, false);
  }

  async forget(id: string): Promise<void> {
    await this.#commands.del(this.#prefix + id);
  }
}
