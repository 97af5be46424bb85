import type { RequestHandler } from "express";
import { ipKeyGenerator, rateLimit } from "express-rate-limit";
import { clientIp, type AllowList } from "./ip-allowlist.js";

/**
 * At most `perMinute` requests per client IP (IPv6 clients grouped by /56, since one host owns a
 * whole range). Allow-listed senders are exempt: Lumenpay catching up after an outage sends bursts,
 * and throttling it only delays the deliveries it will retry anyway. Counts are per process.
 */
export function createRateLimiter({ perMinute, allowList }: { perMinute: number; allowList: AllowList | undefined }): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    // RateLimit headers plus Retry-After on a 429, which Lumenpay's retry schedule honours.
    standardHeaders: "draft-8",
    legacyHeaders: false,
    keyGenerator: (req) => ipKeyGenerator(clientIp(req)),
    skip: (req) => allowList?.allows(clientIp(req)) ?? false,
    message: { error: "rate_limited", message: "Too many requests from this address; retry later." },
  });
}
