import { createHash, randomFillSync, timingSafeEqual } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

// Random bytes are drawn from the CSPRNG 4 KB at a time, as crypto.randomUUID does internally: one
// system call per ~90 ids instead of one per id (every request gets an id; system calls are dear).
const entropy = Buffer.alloc(4096);
let used = entropy.length;

/** The offset in `entropy` of `n` bytes no one has used. */
function take(n: number): number {
  if (used + n > entropy.length) {
    randomFillSync(entropy);
    used = 0;
  }
  used += n;
  return used - n;
}

/** A uniformly random 64-bit unsigned integer (a generated memo or muxed id: one per payment). */
export const randomUint64 = (): bigint => entropy.readBigUInt64BE(take(8));

/** Random base62 string; `length` 22 carries ~131 bits. */
export function randomToken(length: number): string {
  let out = "";
  while (out.length < length) {
    const b = entropy[take(1)]!;
    // Rejection sampling keeps the distribution uniform (248 = 4 × 62).
    if (b < 248) out += ALPHABET[b % 62];
  }
  return out;
}

export type IdPrefix = "mer" | "key" | "pay" | "evt" | "we" | "del" | "rcv" | "req" | "unm" | "usr";

/** Typed, prefixed ids such as `pay_3kTMd…`. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomToken(22)}`;
}

const ID_PATTERNS = new Map<IdPrefix, RegExp>();

export function isId(prefix: IdPrefix, value: string): boolean {
  let pattern = ID_PATTERNS.get(prefix);
  if (!pattern) ID_PATTERNS.set(prefix, (pattern = new RegExp(idPattern(prefix))));
  return pattern.test(value);
}

/** JSON-schema pattern for an id of the given prefix (used in route schemas). */
export const idPattern = (prefix: IdPrefix) => `^${prefix}_[0-9A-Za-z]{22}$`;

/** What is stored of a secret token (API key, session): its SHA-256, never the token itself. */
export const hashToken = (token: string) => createHash("sha256").update(token).digest();

/** Equal strings, in time independent of where they differ (hashing first makes the lengths equal). */
export const sameToken = (a: string, b: string) => timingSafeEqual(hashToken(a), hashToken(b));

