import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Pool } from "../db/pool.js";
import type { Clock } from "../clock.js";
import { hashApiKey } from "../merchants/service.js";
import { findMerchantByApiKey, touchApiKey, type Merchant } from "../merchants/store.js";
import { HttpError } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated merchant; set on every route inside the authenticated context. */
    merchant: Merchant;
  }
}

/** Fixed one-minute windows per API key, in memory: a per-process guard against runaway clients. */
export class RateLimiter {
  private windows = new Map<string, { start: number; count: number }>();
  constructor(
    private readonly limit: number,
    private readonly clock: Clock,
  ) {}

  /** Returns seconds to wait when over the limit, or 0 when the request may proceed. */
  take(key: string): number {
    const now = this.clock.now().getTime();
    const start = now - (now % 60_000);
    const window = this.windows.get(key);
    if (!window || window.start !== start) {
      if (this.windows.size > 100_000) this.windows.clear();
      this.windows.set(key, { start, count: 1 });
      return 0;
    }
    window.count += 1;
    return window.count > this.limit ? Math.ceil((start + 60_000 - now) / 1000) : 0;
  }
}

function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (!header) throw new HttpError(401, "missing_api_key", "Send your API key as Authorization: Bearer sk_….");
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw new HttpError(401, "invalid_authorization", "The Authorization header must be: Bearer sk_….");
  return match[1];
}

/** Adds the API-key check to every route of `app`'s context; register it inside an encapsulated plugin. */
export function requireApiKey(app: FastifyInstance, deps: { pool: Pool; clock: Clock; rateLimitPerMinute: number }): void {
  const limiter = new RateLimiter(deps.rateLimitPerMinute, deps.clock);
  app.decorateRequest("merchant", null as unknown as Merchant);
  app.addHook("preHandler", async (request, reply) => {
    const secret = bearer(request);
    if (!secret.startsWith("sk_")) throw new HttpError(401, "invalid_api_key", "API keys start with sk_.");
    const now = deps.clock.now();
    const found = await findMerchantByApiKey(deps.pool, hashApiKey(secret), now);
    if (!found) throw new HttpError(401, "invalid_api_key", "This API key is not valid, has expired or was revoked.");
    const { key } = found;
    const wait = limiter.take(key.id);
    if (wait > 0) {
      reply.header("retry-after", String(wait));
      throw new HttpError(429, "rate_limited", `Too many requests; retry in ${wait} s.`);
    }
    // Recorded at minute granularity: a write on every request would contend on one row.
    if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > 60_000) await touchApiKey(deps.pool, key.id, now);
    request.merchant = found.merchant;
  });
}
