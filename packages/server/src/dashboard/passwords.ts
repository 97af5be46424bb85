import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

/**
 * Dashboard passwords, hashed with scrypt from node:crypto: a random salt per password, and the
 * parameters stored with the hash (`scrypt$N$r$p$salt$key`, base64) so that they can be raised later
 * without invalidating existing hashes. N = 2^15, r = 8, p = 3 is one of OWASP's equivalent settings
 * (32 MiB per hash); it runs on libuv's thread pool, never on the event loop.
 */

const PARAMS = { N: 2 ** 15, r: 8, p: 3 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
// Node refuses more than 32 MiB by default, which N = 2^15, r = 8 needs plus a little.
const MAX_MEMORY = 64 * 1024 * 1024;

function derive(password: string, salt: Buffer, params: ScryptOptions, keyBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    // NFC: the same password typed on another keyboard or system composes its accents alike.
    scrypt(password.normalize("NFC"), salt, keyBytes, { ...params, maxmem: MAX_MEMORY }, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, PARAMS, KEY_BYTES);
  return ["scrypt", PARAMS.N, PARAMS.r, PARAMS.p, salt.toString("base64"), key.toString("base64")].join("$");
}

const STORED = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

/** Whether `password` is the one `stored` was made from; the keys are compared in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = STORED.exec(stored);
  if (!m) throw new Error("not a scrypt password hash");
  const expected = Buffer.from(m[5]!, "base64");
  const key = await derive(password, Buffer.from(m[4]!, "base64"), { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) }, expected.length);
  return timingSafeEqual(key, expected);
}

/**
 * Checked against when nobody has the email given, so that an unknown address costs the same scrypt run as
 * a wrong password and timing does not tell which addresses have accounts. No password yields an all-zero key.
 */
export const NO_USER_HASH = ["scrypt", PARAMS.N, PARAMS.r, PARAMS.p, Buffer.alloc(SALT_BYTES).toString("base64"), Buffer.alloc(KEY_BYTES).toString("base64")].join("$");
