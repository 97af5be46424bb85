import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Pool } from "../db/pool.js";
import type { Clock } from "../clock.js";
import { hashToken } from "../ids.js";
import { LookupCache, type Found } from "../lookup-cache.js";
import type { MerchantChanges } from "../merchants/changes.js";
import { findMerchantByApiKey, usageWindowStart, type KeyLookup, type Merchant } from "../merchants/store.js";
import { HttpError } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated merchant; set on every route inside the authenticated context. */
    merchant: Merchant;
  }
  interface FastifyContextConfig {
    /**
     * The route writes to the merchant from what it reads in `request.merchant`: the key and merchant are
     * then read afresh, not from the cache, and the merchant's cached entries are dropped after it answers.
     */
    freshMerchant?: boolean;
  }
}

/** Fixed one-minute windows per key, in this process's memory. */
export class RateLimiter {
  private windows = new Map<string, { start: number; count: number }>();
  constructor(
    private readonly limit: number,
    private readonly clock: Clock,
  ) {}

  /** Counts one use of `key`; returns seconds to wait when that is over the limit, or 0 when it may proceed. */
  take(key: string): number {
    const window = this.current(key);
    window.count += 1;
    return this.wait(window);
  }

  /** Seconds to wait when `key` has used up its window, without counting a use; 0 otherwise. */
  exhausted(key: string): number {
    const window = this.current(key);
    return window.count >= this.limit ? this.wait({ ...window, count: window.count + 1 }) : 0;
  }

  private current(key: string): { start: number; count: number } {
    const now = this.clock.now().getTime();
    const start = now - (now % 60_000);
    let window = this.windows.get(key);
    if (!window || window.start !== start) {
      if (this.windows.size > 100_000) this.windows.clear();
      window = { start, count: 0 };
      this.windows.set(key, window);
    }
    return window;
  }

  private wait(window: { start: number; count: number }): number {
    return window.count > this.limit ? Math.max(1, Math.ceil((window.start + 60_000 - this.clock.now().getTime()) / 1000)) : 0;
  }
}

/** 429 `rate_limited` with Retry-After, for a client that must wait `waitSeconds`. */
export function tooManyRequests(reply: FastifyReply, waitSeconds: number, what: string): HttpError {
  reply.header("retry-after", String(waitSeconds));
  return new HttpError(429, "rate_limited", `Too many ${what}; retry in ${waitSeconds} s.`);
}

/** Counts a use of `key` on `limiter`; throws `tooManyRequests` over the limit. */
export function enforceLimit(limiter: RateLimiter, key: string, reply: FastifyReply, what: string): void {
  const wait = limiter.take(key);
  if (wait > 0) throw tooManyRequests(reply, wait, what);
}

function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (!header) throw new HttpError(401, "missing_api_key", "Send your API key as Authorization: Bearer sk_….");
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw new HttpError(401, "invalid_authorization", "The Authorization header must be: Bearer sk_….");
  return match[1];
}

/** The request's API key as its stored hash; a 401 when there is none or it cannot be one. */
function keyHash(request: FastifyRequest): Buffer {
  const secret = bearer(request);
  if (!secret.startsWith("sk_")) throw new HttpError(401, "invalid_api_key", "API keys start with sk_.");
  return hashToken(secret);
}

/** Keys seen valid in the last minutes, by hash: they pass an address that invalid keys have blocked. */
class RecentlyValidKeys {
  private readonly seen = new Map<string, number>();
  constructor(private readonly clock: Clock) {}
  add(hash: Buffer): void {
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.set(hash.toString("hex"), this.clock.now().getTime());
  }
  has(hash: Buffer): boolean {
    const at = this.seen.get(hash.toString("hex"));
    return at !== undefined && this.clock.now().getTime() - at < 5 * 60_000;
  }
}

/** How long a key read stays in memory: the bound on a revocation's delay should its announcement be lost. */
export const API_KEY_MAX_AGE_MS = 1_000;
const MERCHANT_ENTRY_BYTES = 4096;

/** Requests with one key on this instance not yet added to the shared count, in one window. */
interface UnsentUses {
  windowStart: number;
  uses: number;
}

/**
 * Keys by hash. With `changes` (a LISTEN connection), a key and its merchant are read at most once a second
 * and dropped as soon as either changes on any instance; the requests made meanwhile are counted here and
 * added to the shared count by the next read, so every instance sees the others' requests about a second
 * late, and its own at once. Without it every request reads the key and counts itself.
 */
class ApiKeys {
  private readonly cache?: LookupCache<KeyLookup>;
  private readonly unsent = new Map<string, UnsentUses>();

  constructor(
    private readonly pool: Pool,
    private readonly clock: Clock,
    changes: MerchantChanges | undefined,
  ) {
    if (!changes) return;
    const cache = new LookupCache<KeyLookup>({
      load: (hex) => this.read(hex),
      sizeOf: (hex) => hex.length + MERCHANT_ENTRY_BYTES,
      clock,
      maxAgeMs: API_KEY_MAX_AGE_MS,
      maxEntries: 10_000,
      maxBytes: 10_000 * (64 + MERCHANT_ENTRY_BYTES),
    });
    changes.onChange((merchantId) => (merchantId === null ? cache.clear() : cache.dropMerchant(merchantId)));
    this.cache = cache;
  }

  /** Counts one request with the key `hash`: the key, and the requests in its window on every instance, this one included. */
  async use(hash: Buffer, fresh: boolean): Promise<{ lookup: KeyLookup; windowRequests: number } | undefined> {
    const now = this.clock.now();
    if (!this.cache || fresh) {
      const lookup = await findMerchantByApiKey(this.pool, hash, now, 1);
      return lookup && { lookup, windowRequests: lookup.windowRequests };
    }
    const hex = hash.toString("hex");
    const windowStart = usageWindowStart(now).getTime();
    this.count(hex, windowStart);
    const lookup = await this.cache.get(hex);
    if (!lookup || (lookup.key.expiresAt && lookup.key.expiresAt <= now)) {
      this.unsent.delete(hex);
      return undefined;
    }
    const sent = lookup.windowStart.getTime() === windowStart ? lookup.windowRequests : 0;
    return { lookup, windowRequests: sent + this.unsentUses(hex, windowStart) };
  }

  dropMerchant(merchantId: string): void {
    this.cache?.dropMerchant(merchantId);
  }

  private count(hex: string, windowStart: number): void {
    const unsent = this.unsent.get(hex);
    if (unsent?.windowStart === windowStart) {
      unsent.uses += 1;
      return;
    }
    if (this.unsent.size > 100_000) this.unsent.clear();
    this.unsent.set(hex, { windowStart, uses: 1 });
  }

  private unsentUses(hex: string, windowStart: number): number {
    const unsent = this.unsent.get(hex);
    return unsent?.windowStart === windowStart ? unsent.uses : 0;
  }

  /** Reads the key, sending the requests counted since the last read (the one reading included). */
  private async read(hex: string): Promise<Found<KeyLookup>> {
    const now = this.clock.now();
    const uses = this.unsentUses(hex, usageWindowStart(now).getTime());
    this.unsent.delete(hex);
    const lookup = await findMerchantByApiKey(this.pool, Buffer.from(hex, "hex"), now, uses);
    return lookup ? { merchantId: lookup.merchant.id, value: lookup } : null;
  }
}

/**
 * Adds the API-key check to every route of `app`'s context; register it inside an encapsulated plugin.
 * Two limits: requests per key per minute, counted in PostgreSQL so that it holds across instances (see
 * `ApiKeys` for how late); and requests with a missing or invalid key per client address, counted in
 * memory (each costs a lookup) so that guessing keys stops before it reaches the database.
 */
export function requireApiKey(
  app: FastifyInstance,
  deps: { pool: Pool; clock: Clock; merchantChanges?: MerchantChanges; rateLimitPerMinute: number; invalidKeyLimitPerMinute: number },
): void {
  const refused = new RateLimiter(deps.invalidKeyLimitPerMinute, deps.clock);
  const valid = new RecentlyValidKeys(deps.clock);
  const keys = new ApiKeys(deps.pool, deps.clock, deps.merchantChanges);
  app.decorateRequest("merchant", null as unknown as Merchant);
  app.addHook("preHandler", async (request, reply) => {
    let hash: Buffer;
    try {
      hash = keyHash(request);
    } catch (error) {
      refused.take(request.ip);
      throw error;
    }
    const blocked = valid.has(hash) ? 0 : refused.exhausted(request.ip);
    if (blocked > 0) throw tooManyRequests(reply, blocked, "requests without a valid API key from this address");
    const found = await keys.use(hash, request.routeOptions.config.freshMerchant === true);
    if (!found) {
      refused.take(request.ip);
      throw new HttpError(401, "invalid_api_key", "This API key is not valid, has expired or was revoked.");
    }
    valid.add(hash);
    if (found.windowRequests > deps.rateLimitPerMinute) {
      const windowEndsAt = found.lookup.windowStart.getTime() + 60_000;
      throw tooManyRequests(reply, Math.max(1, Math.ceil((windowEndsAt - deps.clock.now().getTime()) / 1000)), "requests");
    }
    request.merchant = found.lookup.merchant;
  });
  // This instance's next request sees what the write changed, without waiting for the announcement.
  app.addHook("onResponse", (request, _reply, done) => {
    if (request.routeOptions.config.freshMerchant && request.merchant) keys.dropMerchant(request.merchant.id);
    done();
  });
}
