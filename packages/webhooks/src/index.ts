import type { KeyObject, webcrypto } from "node:crypto";
import {
  InvalidPayloadError,
  MalformedHeaderError,
  MissingHeaderError,
  NoMatchingSignatureError,
  PayloadNotRawError,
  TimestampTooNewError,
  TimestampTooOldError,
} from "./errors.js";
import { concat, fromBase64, isDefined, timingSafeEqual, toBase64, toHex } from "./bytes.js";
import { decodeStellarPublicKey, encodeStellarPublicKey, seedBytes } from "./strkey.js";

export * from "./errors.js";
export * from "./events.js";
export * from "./replay.js";
export { createRouter, DEFAULT_RETRY_DELAYS_MS } from "./router.js";
export type { Handler, HandlerContext, HandlerOptions, Router, RouterOptions, RouterRequest, RouterResponse } from "./router.js";
export { DEFAULT_BODY_LIMIT, type AdapterOptions } from "./adapters/http.js";
export { nodeHandler } from "./adapters/node.js";
export { expressHandler } from "./adapters/express.js";
export { fastifyPlugin, type FastifyInstanceLike, type FastifyPluginOptions, type FastifyReplyLike } from "./adapters/fastify.js";
export { fetchHandler } from "./adapters/fetch.js";
export { decodeStellarPublicKey } from "./strkey.js";

/** A Lumenpay webhook event, exactly as delivered in the request body. */
export interface WebhookEvent<T = unknown> {
  id: string;
  type: string;
  created_at: string;
  api_version: string;
  /** Position in the endpoint's delivery order, when the server assigns one. */
  sequence?: number;
  data: { object: T };
}

/**
 * Headers of one delivery, lower-case. Both schemes are always sent; receivers use either.
 * A type alias rather than an interface so it is assignable to `Record<string, string>` (fetch, Webhook.verify).
 */
export type DeliveryHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  /** Standard Webhooks: `v1,<base64 HMAC>` per live secret, then `v1a,<base64 Ed25519>`. */
  "webhook-signature": string;
  /** Stripe-compatible: `t=<timestamp>,v1=<hex HMAC>` with one `v1=` per live secret. */
  "stellar-signature": string;
  "stellar-timestamp": string;
  "stellar-webhook-id": string;
};

export interface SignDeliveryInput {
  /** Message id, the same on every retry so receivers can deduplicate. */
  id: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  body: string | Uint8Array;
  /** Every live `whsec_` secret of the endpoint; several while a secret is being rotated. */
  secrets: readonly string[];
  /** Platform Ed25519 key as a 32-byte seed or a Stellar `S…` string; adds a `v1a` signature. */
  signingSeed?: Uint8Array | string;
}

export interface WebhookOptions {
  /** Endpoint secrets (`whsec_…`); pass the old and the new one while rotating. */
  secrets?: readonly string[];
  /** Stellar `G…` addresses whose Ed25519 (`v1a`) signatures are accepted. */
  publicKeys?: readonly string[];
  /** How far the signed timestamp may differ from this clock, in either direction. Default 300. */
  toleranceSeconds?: number;
  /**
   * Verify with this Web Crypto implementation instead of node:crypto. Default: node:crypto where
   * the runtime provides it, otherwise `globalThis.crypto.subtle`.
   */
  subtle?: webcrypto.SubtleCrypto;
}

/** Node's `req.headers` (any key case) or a fetch `Headers`. */
export type WebhookHeaders = Record<string, string | string[] | undefined> | Headers;

const SECRET_PREFIX = "whsec_";
const DEFAULT_TOLERANCE_SECONDS = 300;
// DER prefixes that wrap a raw Ed25519 seed (PKCS#8) or public key (SPKI), RFC 8410.
const PKCS8_ED25519_PREFIX = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);
const SPKI_ED25519_PREFIX = Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00);
const encoder = new TextEncoder();

// node:crypto is synchronous and faster than Web Crypto. It is loaded without a static import, so
// this module still loads where it is absent (Workers without nodejs_compat) and verification falls
// back to Web Crypto, and without a top-level await, so the module can be require()d.
// getBuiltinModule (Node >= 20.16, Deno, Bun) is synchronous; older runtimes get a dynamic import
// whose specifier is a variable, so bundlers do not try to resolve it; verify() waits for it.
type NodeModules = { crypto: typeof import("node:crypto"); Buffer: typeof import("node:buffer").Buffer };

function loadNodeModulesNow(): NodeModules | undefined {
  if (typeof process === "undefined" || typeof process.getBuiltinModule !== "function") return undefined;
  return { crypto: process.getBuiltinModule("node:crypto"), Buffer: process.getBuiltinModule("node:buffer").Buffer };
}

async function loadNodeModulesLater(): Promise<NodeModules | undefined> {
  if (typeof process === "undefined") return undefined;
  try {
    const [crypto, buffer] = await Promise.all(["node:crypto", "node:buffer"].map((specifier) => import(specifier)));
    return { crypto: crypto as typeof import("node:crypto"), Buffer: (buffer as typeof import("node:buffer")).Buffer };
  } catch {
    return undefined;
  }
}

let node = loadNodeModulesNow();
let nodeLoading = node
  ? undefined
  : loadNodeModulesLater().then((loaded) => {
      node = loaded;
      nodeLoading = undefined;
    });

/**
 * Settles once node:crypto is loaded (or known to be absent). Already settled on Node >= 20.16,
 * Deno and Bun; on older runtimes await it before the synchronous `signDelivery`,
 * `generateTestHeaders` or `publicKeyFromSeed`. `Webhook.verify` waits for it by itself.
 */
export const ready: Promise<void> = Promise.resolve(nodeLoading).then(() => undefined);

function requireNode(what: string): NodeModules {
  if (node) return node;
  if (nodeLoading) throw new Error(`${what} needs node:crypto, which is still loading on this runtime: await ready first`);
  throw new Error(`${what} needs node:crypto (Node.js, Deno, Bun, or Workers with nodejs_compat)`);
}

/**
 * The two HMAC keys of one `whsec_` secret. Standard Webhooks uses the base64-decoded part after
 * the prefix, as standardwebhooks and svix do. Stellar-Signature uses the UTF-8 bytes of the whole
 * secret string, because Stripe's `webhooks.constructEvent(body, header, secret)` keys its HMAC
 * that way, so a receiver written for Stripe verifies our header unchanged.
 */
function parseSecret(secret: unknown): { standard: Uint8Array; stellar: Uint8Array } {
  if (typeof secret !== "string" || !secret.startsWith(SECRET_PREFIX)) {
    throw new TypeError(`Webhook secrets are strings starting with "${SECRET_PREFIX}"`);
  }
  const standard = fromBase64(secret.slice(SECRET_PREFIX.length));
  if (!standard) throw new TypeError(`Webhook secret is not base64 after "${SECRET_PREFIX}"`);
  if (standard.length === 0) throw new TypeError("Webhook secret is empty");
  return { standard, stellar: encoder.encode(secret) };
}

/**
 * What a signature covers: an ASCII prefix and the body as received. Kept in two parts so that
 * node:crypto can hash them without copying the body (the cost that dominates a 1 KB delivery).
 */
interface Signed {
  prefix: string;
  body: string | Uint8Array;
}

const standardContent = (id: string, timestamp: number, body: string | Uint8Array): Signed => ({ prefix: `${id}.${timestamp}.`, body });
const stellarContent = (timestamp: number, body: string | Uint8Array): Signed => ({ prefix: `${timestamp}.`, body });

/** The signed bytes in one buffer, for APIs that take a single message (Web Crypto, Ed25519). */
function signedBytes({ prefix, body }: Signed): Uint8Array {
  return concat(encoder.encode(prefix), typeof body === "string" ? encoder.encode(body) : body);
}

// Building a KeyObject from DER costs more than the signature, and the server signs every delivery
// with the same platform key. Bounded so a caller cycling through seeds cannot grow it forever.
const privateKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 16;

function ed25519PrivateKey(seed: Uint8Array | string): KeyObject {
  const { crypto, Buffer } = requireNode("Ed25519 signing");
  const raw = seedBytes(seed);
  const cacheKey = toHex(raw);
  let key = privateKeys.get(cacheKey);
  if (!key) {
    if (privateKeys.size >= MAX_CACHED_KEYS) privateKeys.clear();
    key = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, raw]), format: "der", type: "pkcs8" });
    privateKeys.set(cacheKey, key);
  }
  return key;
}

/**
 * Sign one delivery attempt: the headers for both schemes. Synchronous, for the server's hot path;
 * needs node:crypto.
 */
export function signDelivery(input: SignDeliveryInput): DeliveryHeaders {
  const modules = requireNode("signDelivery");
  const { id, timestamp, secrets, signingSeed } = input;
  // Printable ASCII only: the id goes into headers, and a space would split the signed content.
  if (typeof id !== "string" || !/^[\x21-\x7e]+$/.test(id)) throw new TypeError("id must be non-empty printable ASCII");
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new TypeError("timestamp must be whole unix seconds");
  if (!Array.isArray(secrets) || secrets.length === 0) throw new TypeError("signDelivery needs at least one secret");
  if (typeof input.body !== "string" && !(input.body instanceof Uint8Array)) {
    throw new TypeError("body must be the exact string or bytes sent");
  }
  const keys = secrets.map(parseSecret);
  signingBackend ??= nodeBackend(modules);
  const { hmac } = signingBackend;

  const content = standardContent(id, timestamp, input.body);
  const entries = keys.map((k) => `v1,${hmac(k.standard, "base64")(content)}`);
  if (signingSeed !== undefined) {
    entries.push(`v1a,${toBase64(modules.crypto.sign(null, signedBytes(content), ed25519PrivateKey(signingSeed)))}`);
  }
  const stellar = stellarContent(timestamp, input.body);
  const t = String(timestamp);
  return {
    "webhook-id": id,
    "webhook-timestamp": t,
    "webhook-signature": entries.join(" "),
    "stellar-signature": [`t=${t}`, ...keys.map((k) => `v1=${hmac(k.stellar, "hex")(stellar)}`)].join(","),
    "stellar-timestamp": t,
    "stellar-webhook-id": id,
  };
}

/** Headers for a payload signed with `secret`, to test a webhook handler. Needs node:crypto. */
export function generateTestHeaders(input: {
  payload: string | Uint8Array;
  secret: string;
  /** Unix seconds; default now. */
  timestamp?: number;
  id?: string;
}): DeliveryHeaders {
  // node:crypto's randomUUID, not globalThis.crypto's: Node 18 has no crypto global.
  const { crypto } = requireNode("generateTestHeaders");
  return signDelivery({
    id: input.id ?? `evt_test_${crypto.randomUUID().replaceAll("-", "")}`,
    timestamp: input.timestamp ?? Math.floor(Date.now() / 1000),
    body: input.payload,
    secrets: [input.secret],
  });
}

/** The Stellar `G…` address of an Ed25519 seed (32 bytes or `S…`). Needs node:crypto. */
export function publicKeyFromSeed(seed: Uint8Array | string): string {
  const { crypto } = requireNode("publicKeyFromSeed");
  const spki = crypto.createPublicKey(ed25519PrivateKey(seed)).export({ format: "der", type: "spki" });
  return encodeStellarPublicKey(spki.subarray(SPKI_ED25519_PREFIX.length));
}

// node:crypto answers synchronously, Web Crypto with a promise; callers await only the latter.
// An HMAC is compared in the encoding it is sent in, as standardwebhooks and stripe do: no decoding
// of the header per verification.
type Encoding = "base64" | "hex";
type Hmac = (data: Signed) => string | Promise<string>;
type Ed25519Verify = (data: Signed, signature: Uint8Array) => Promise<boolean>;
interface Backend {
  hmac(key: Uint8Array, encoding: Encoding): Hmac;
  ed25519(publicKey: Uint8Array): Ed25519Verify;
}

// HMAC-SHA256 (RFC 2104) as two one-shot hashes over a reused buffer: for a delivery-sized body,
// creating an Hmac object and crossing into C++ for each update costs more than the hashing itself.
const HMAC_BLOCK = 64;
const SCRATCH_LIMIT = 1 << 20;

// node:crypto's HMAC answers synchronously, which signDelivery relies on.
type NodeBackend = Backend & { hmac(key: Uint8Array, encoding: Encoding): (data: Signed) => string };
let signingBackend: NodeBackend | undefined;

function nodeBackend({ crypto, Buffer }: NodeModules): NodeBackend {
  const hash = crypto.hash as typeof crypto.hash | undefined; // Node >= 20.12
  let scratch = Buffer.alloc(4096);
  return {
    hmac: (raw, encoding) => {
      if (!hash || raw.length > HMAC_BLOCK) {
        // A KeyObject is imported once; createHmac with raw bytes would import the key on every call.
        const key = crypto.createSecretKey(raw);
        return (data) => crypto.createHmac("sha256", key).update(data.prefix).update(data.body).digest(encoding);
      }
      const innerPad = Buffer.alloc(HMAC_BLOCK, 0x36);
      const outer = Buffer.alloc(HMAC_BLOCK + 32, 0x5c);
      for (let i = 0; i < raw.length; i++) {
        innerPad[i]! ^= raw[i]!;
        outer[i]! ^= raw[i]!;
      }
      return ({ prefix, body }) => {
        // At most 3 bytes per UTF-16 unit: a bound that spares scanning the body for its exact size.
        const size = HMAC_BLOCK + 3 * prefix.length + (typeof body === "string" ? 3 * body.length : body.length);
        if (size > scratch.length) {
          if (size > SCRATCH_LIMIT) return crypto.createHmac("sha256", raw).update(prefix).update(body).digest(encoding);
          scratch = Buffer.alloc(Math.max(size, scratch.length * 2));
        }
        innerPad.copy(scratch, 0);
        // UTF-8, as every other path (and Standard Webhooks) encodes the signed content: a message id may hold any character.
        let end = HMAC_BLOCK + scratch.write(prefix, HMAC_BLOCK, "utf8");
        if (typeof body === "string") end += scratch.write(body, end, "utf8");
        else {
          scratch.set(body, end);
          end += body.length;
        }
        // The inner digest as a "binary" (latin1) string, not a Buffer: Node allocates a Buffer result
        // slowly (~0.7 µs of a 5 µs verification), and latin1 maps each byte to one character and back.
        outer.write(hash("sha256", scratch.subarray(0, end), "binary"), HMAC_BLOCK, "binary");
        return hash("sha256", outer, encoding);
      };
    },
    ed25519: (publicKey) => {
      const key = crypto.createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: "der", type: "spki" });
      return async (data, signature) => crypto.verify(null, signedBytes(data), key, signature);
    },
  };
}

// Keys are imported on first use, not in the constructor, so an import failure surfaces from
// verify() instead of as an unhandled rejection.
function subtleBackend(subtle: webcrypto.SubtleCrypto): Backend {
  return {
    hmac: (raw, encoding) => {
      let key: Promise<webcrypto.CryptoKey> | undefined;
      const encode = encoding === "hex" ? toHex : toBase64;
      return async (data) => {
        key ??= subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
        return encode(new Uint8Array(await subtle.sign("HMAC", await key, signedBytes(data))));
      };
    },
    ed25519: (raw) => {
      let key: Promise<webcrypto.CryptoKey> | undefined;
      return async (data, signature) => {
        key ??= subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
        return subtle.verify({ name: "Ed25519" }, await key, signature, signedBytes(data));
      };
    },
  };
}

type HeaderReader = (name: string) => string | undefined;

function headerReader(headers: WebhookHeaders): HeaderReader {
  if (typeof (headers as Headers).get === "function") {
    const fetchHeaders = headers as Headers;
    return (name) => fetchHeaders.get(name) || undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  // Node (and most frameworks) hand over lower-case names: look those up directly, and build a
  // case-insensitive index only for a name given in another case.
  let lower: Map<string, string | string[] | undefined> | undefined;
  return (name) => {
    let value = record[name];
    if (value === undefined) {
      lower ??= new Map(Object.entries(record).map(([key, v]) => [key.toLowerCase(), v]));
      value = lower.get(name);
    }
    if (!Array.isArray(value)) return value || undefined;
    if (value.length > 1) throw new MalformedHeaderError(name, "sent more than once");
    return value[0] || undefined;
  };
}

function required(header: HeaderReader, name: string): string {
  const value = header(name);
  if (value === undefined) throw new MissingHeaderError(name);
  return value;
}

/** The signatures of a `webhook-signature` header by version; other versions are ignored. */
interface StandardSignatures {
  v1: string[];
  v1a: string[];
}

function parseStandardSignatures(value: string): StandardSignatures {
  const parsed: StandardSignatures = { v1: [], v1a: [] };
  let wellFormed = 0;
  for (const entry of value.split(" ")) {
    const comma = entry.indexOf(",");
    // "version,signature" with exactly one comma and both parts present.
    if (comma <= 0 || comma === entry.length - 1 || entry.indexOf(",", comma + 1) !== -1) continue;
    wellFormed++;
    const version = entry.slice(0, comma);
    if (version === "v1" || version === "v1a") parsed[version].push(entry.slice(comma + 1));
  }
  if (wellFormed === 0) throw new MalformedHeaderError("webhook-signature", 'expected "v1,<base64>" entries');
  return parsed;
}

function parseStellarSignature(value: string): { timestamp: string; v1: string[] } {
  let timestamp: string | undefined;
  const v1: string[] = [];
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new MalformedHeaderError("stellar-signature", 'expected "t=<timestamp>,v1=<hex>"');
    const key = part.slice(0, eq);
    // Other keys are skipped, so a new scheme can be sent beside v1 without breaking receivers.
    if (key === "t") {
      if (timestamp !== undefined) throw new MalformedHeaderError("stellar-signature", "more than one t=");
      timestamp = part.slice(eq + 1);
    } else if (key === "v1") {
      v1.push(part.slice(eq + 1));
    }
  }
  if (timestamp === undefined) throw new MalformedHeaderError("stellar-signature", "missing t=");
  return { timestamp, v1 };
}

function rawBodyOf(rawBody: unknown): string | Uint8Array {
  if (typeof rawBody === "string" || rawBody instanceof Uint8Array) return rawBody;
  const received =
    rawBody === null ? "null" : Array.isArray(rawBody) ? "an array" : typeof rawBody === "object" ? "an object" : typeof rawBody;
  throw new PayloadNotRawError(received);
}

// fatal: invalid UTF-8 is a malformed payload, not text to repair with U+FFFD.
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

function parseEvent<T>(body: string | Uint8Array): WebhookEvent<T> {
  let event: unknown;
  try {
    event = JSON.parse(typeof body === "string" ? body : strictDecoder.decode(body));
  } catch {
    throw new InvalidPayloadError("Webhook payload is not valid JSON");
  }
  if (typeof event !== "object" || event === null || Array.isArray(event)) {
    throw new InvalidPayloadError("Webhook payload is not a JSON object");
  }
  const { id, type } = event as Record<string, unknown>;
  if (typeof id !== "string" || typeof type !== "string") {
    throw new InvalidPayloadError("Webhook payload has no string id and type");
  }
  return event as WebhookEvent<T>;
}

function anyMatches(provided: string[], hmacs: Hmac[], content: Signed): boolean | Promise<boolean> {
  if (provided.length === 0 || hmacs.length === 0) return false;
  const expected = hmacs.map((hmac) => hmac(content));
  // The node:crypto path stays synchronous: no promise per verification.
  if (typeof expected[0] !== "string") return Promise.all(expected).then((all) => someEqual(provided, all));
  return someEqual(provided, expected as string[]);
}

function someEqual(provided: string[], expected: string[]): boolean {
  for (const signature of provided) {
    for (const e of expected) if (timingSafeEqual(signature, e)) return true;
  }
  return false;
}

/** Verifies deliveries signed with either scheme; runs on Node, Deno, Bun, Workers and browsers. */
export class Webhook {
  readonly #keys: Array<{ standard: Uint8Array; stellar: Uint8Array }>;
  readonly #publicKeyBytes: Uint8Array[];
  readonly #subtle: webcrypto.SubtleCrypto | undefined;
  readonly #toleranceSeconds: number;
  // Built on first verify, once node:crypto has loaded where it loads asynchronously.
  #standard: Hmac[] = [];
  #stellar: Hmac[] = [];
  #publicKeys: Ed25519Verify[] = [];
  #ready = false;

  constructor(options: WebhookOptions) {
    const { secrets = [], publicKeys = [], toleranceSeconds = DEFAULT_TOLERANCE_SECONDS } = options;
    if (!Array.isArray(secrets) || !Array.isArray(publicKeys)) throw new TypeError("secrets and publicKeys must be arrays");
    if (secrets.length === 0 && publicKeys.length === 0) {
      throw new TypeError("Webhook needs at least one secret or public key");
    }
    if (!(toleranceSeconds >= 0)) throw new TypeError("toleranceSeconds must be a non-negative number");
    this.#keys = secrets.map(parseSecret);
    this.#publicKeyBytes = publicKeys.map(decodeStellarPublicKey);
    this.#subtle = options.subtle;
    this.#toleranceSeconds = toleranceSeconds;
  }

  #prepare(): void {
    const backend = this.#subtle ? subtleBackend(this.#subtle) : node ? nodeBackend(node) : subtleBackend(globalThis.crypto.subtle);
    this.#standard = this.#keys.map((k) => backend.hmac(k.standard, "base64"));
    this.#stellar = this.#keys.map((k) => backend.hmac(k.stellar, "hex"));
    this.#publicKeys = this.#publicKeyBytes.map((key) => backend.ed25519(key));
    this.#ready = true;
  }

  /**
   * Check the signature and timestamp of a delivery and return its event. `rawBody` must be the
   * body exactly as received. Standard Webhooks headers are used when present, else
   * Stellar-Signature. Throws a `WebhookVerificationError` subclass on any rejection.
   */
  async verify<T = unknown>(rawBody: string | Uint8Array, headers: WebhookHeaders): Promise<WebhookEvent<T>> {
    if (!this.#ready) {
      if (nodeLoading && !this.#subtle) await nodeLoading;
      this.#prepare();
    }
    const body = rawBodyOf(rawBody);
    const header = headerReader(headers);
    const standard = header("webhook-id") !== undefined || header("webhook-timestamp") !== undefined || header("webhook-signature") !== undefined;
    const result = standard ? this.#verifyStandard(header, body) : this.#verifyStellar(header, body);
    if (!(result instanceof Promise ? await result : result)) throw new NoMatchingSignatureError();
    return parseEvent<T>(body);
  }

  /** Synchronous when the v1 HMAC matches through node:crypto, the common case; a promise otherwise. */
  #verifyStandard(header: HeaderReader, body: string | Uint8Array): boolean | Promise<boolean> {
    const id = required(header, "webhook-id");
    const timestamp = this.#checkTimestamp("webhook-timestamp", required(header, "webhook-timestamp"));
    const signatures = parseStandardSignatures(required(header, "webhook-signature"));
    const content = standardContent(id, timestamp, body);
    const v1 = anyMatches(signatures.v1, this.#standard, content);
    if (v1 instanceof Promise) return v1.then((ok) => ok || this.#verifyEd25519(signatures.v1a, content));
    return v1 || (this.#publicKeys.length > 0 && this.#verifyEd25519(signatures.v1a, content));
  }

  async #verifyEd25519(v1a: string[], content: Signed): Promise<boolean> {
    for (const signature of v1a.map(fromBase64).filter(isDefined)) {
      for (const verify of this.#publicKeys) {
        if (await verify(content, signature)) return true;
      }
    }
    return false;
  }

  #verifyStellar(header: HeaderReader, body: string | Uint8Array): boolean | Promise<boolean> {
    const value = header("stellar-signature");
    if (value === undefined) {
      throw new MissingHeaderError(
        "webhook-signature",
        "Missing signature headers: expected webhook-id, webhook-timestamp and webhook-signature, or stellar-signature",
      );
    }
    const parsed = parseStellarSignature(value);
    const timestamp = this.#checkTimestamp("stellar-signature", parsed.timestamp);
    return anyMatches(parsed.v1, this.#stellar, stellarContent(timestamp, body));
  }

  #checkTimestamp(headerName: string, value: string): number {
    if (!/^\d{1,15}$/.test(value)) throw new MalformedHeaderError(headerName, "timestamp must be unix seconds");
    const timestamp = Number(value);
    const now = Math.floor(Date.now() / 1000);
    if (now - timestamp > this.#toleranceSeconds) throw new TimestampTooOldError(timestamp, this.#toleranceSeconds);
    if (timestamp - now > this.#toleranceSeconds) throw new TimestampTooNewError(timestamp, this.#toleranceSeconds);
    return timestamp;
  }
}
