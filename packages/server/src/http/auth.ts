import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Pool } from "../db/pool.js";
import type { Clock } from "../clock.js";
import { hashToken } from "../ids.js";
import { findMerchantByApiKey, touchApiKey, type Merchant } from "../merchants/store.js";
import { HttpError } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated merchant; set on every route inside the authenticated context. */
    merchant: Merchant;
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

/**
 * Adds the API-key check to every route of `app`'s context; register it inside an encapsulated plugin.
 * Two limits: requests per key per minute, counted in PostgreSQL with the key lookup so that it holds
 * across instances; and requests with a missing or invalid key per client address, counted in memory
 * (each costs a lookup) so that guessing keys stops before it reaches the database.
 */
export function requireApiKey(
  app: FastifyInstance,
  deps: { pool: Pool; clock: Clock; rateLimitPerMinute: number; invalidKeyLimitPerMinute: number },
): void {
  const refused = new RateLimiter(deps.invalidKeyLimitPerMinute, deps.clock);
  const valid = new RecentlyValidKeys(deps.clock);
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
    const now = deps.clock.now();
    const found = await findMerchantByApiKey(deps.pool, hash, now);
    if (!found) {
      refused.take(request.ip);
      throw new HttpError(401, "invalid_api_key", "This API key is not valid, has expired or was revoked.");
    }
    valid.add(hash);
    const { key } = found;
    if (found.windowRequests > deps.rateLimitPerMinute) {
      throw tooManyRequests(reply, Math.max(1, Math.ceil((found.windowEndsAt.getTime() - now.getTime()) / 1000)), "requests");
    }
    // Recorded at minute granularity: a write on every request would contend on one row.
    if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > 60_000) await touchApiKey(deps.pool, key.id, now);
    request.merchant = found.merchant;
  });
}
