import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** Random base62 string; `length` 22 carries ~131 bits. */
export function randomToken(length: number): string {
  const bytes = randomBytes(length * 2);
  let out = "";
  // Rejection sampling keeps the distribution uniform (248 = 4 × 62).
  for (let i = 0; i < bytes.length && out.length < length; i++) {
    const b = bytes[i]!;
    if (b < 248) out += ALPHABET[b % 62];
  }
  return out.length === length ? out : out + randomToken(length - out.length);
}

export type IdPrefix = "mer" | "key" | "pay" | "evt" | "we" | "del" | "rcv" | "req" | "unm";

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
