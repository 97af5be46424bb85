import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { Keypair } from "@stellar/stellar-sdk";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { parse, stringify } from "smol-toml";
import type { Config } from "../config.js";
import { HttpError, notFound } from "../http/errors.js";
import { idPattern } from "../ids.js";
import { mayServeHost } from "../merchants/home-domain.js";
import { getMerchant, getMerchantByVerifiedHomeDomain, ORG_FIELDS, type Merchant } from "../merchants/store.js";
import type { RouteDeps } from "../routes.js";
import { LookupCache, type Found } from "../lookup-cache.js";

/** The SEP-1 version the served files follow (its `VERSION` field). */
export const SEP1_VERSION = "2.7.0";
/** SEP-1: "stellar.toml can have a maximum file size of 100KB"; clients refuse larger files. */
export const MAX_STELLAR_TOML_BYTES = 100 * 1024;

/** The subset of SEP-1 a Lumenpay merchant publishes. */
export interface StellarToml {
  VERSION: string;
  NETWORK_PASSPHRASE: string;
  HORIZON_URL: string;
  ACCOUNTS: string[];
  SIGNING_KEY?: string;
  DOCUMENTATION: Record<string, string>;
  CURRENCIES?: { code: string; issuer?: string }[];
}

/**
 * A merchant's stellar.toml as data. Org fields map to their SEP-1 names (`url` → `ORG_URL`);
 * XLM is listed as `code = "native"` without an issuer, as the SDF reference anchor does.
 */
export function stellarToml(merchant: Merchant, platform: { stellar: Config["stellar"]; signingKey: string | undefined }): StellarToml {
  const documentation: Record<string, string> = { ORG_NAME: merchant.name };
  for (const field of ORG_FIELDS) {
    const value = merchant.org[field];
    if (value !== undefined) documentation[`ORG_${field.toUpperCase()}`] = value;
  }
  const currencies = merchant.acceptedAssets.map((a) => (a.issuer === null ? { code: "native" } : { code: a.code, issuer: a.issuer }));
  return {
    VERSION: SEP1_VERSION,
    NETWORK_PASSPHRASE: platform.stellar.networkPassphrase,
    HORIZON_URL: platform.stellar.horizonUrl,
    ACCOUNTS: merchant.accounts,
    ...(platform.signingKey ? { SIGNING_KEY: platform.signingKey } : {}),
    DOCUMENTATION: documentation,
    ...(currencies.length > 0 ? { CURRENCIES: currencies } : {}),
  };
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2), so `W/"…"` matches too. */
function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(",").some((tag) => {
    const t = tag.trim();
    return t === "*" || t.replace(/^W\//, "") === etag;
  });
}

interface RenderedToml {
  body: Buffer;
  etag: string;
}

/** Answers with `toml`: 404 without one, 304 when the client holds it already. */
function sendToml(request: FastifyRequest, reply: FastifyReply, toml: RenderedToml | null): FastifyReply {
  if (!toml) throw notFound("merchant");
  reply.header("etag", toml.etag).header("cache-control", "public, max-age=3600");
  if (etagMatches(request.headers["if-none-match"], toml.etag)) return reply.code(304).send();
  return reply.type("text/plain; charset=utf-8").send(toml.body);
}

interface Sep1Query {
  merchant_id?: string;
}

/**
 * Served files stay in memory up to this long without a read: the bound on staleness when no change
 * notification arrives (none sent to this instance, lost while reconnecting, or no LISTEN connection).
 */
export const TOML_MAX_AGE_MS = 1_000;
// Room for every merchant's file on a large deployment, and for unknown hosts beside them.
const MAX_CACHED_LOOKUPS = 5_000;
const MAX_CACHED_BYTES = 32 * 1024 * 1024;
// Keys and Maps cost memory beyond their bytes; a rough figure keeps the byte bound honest for small entries.
const ENTRY_OVERHEAD_BYTES = 200;
// The longest home_domain the API accepts (253-character name and a port): a longer Host names nobody.
const MAX_HOST_LENGTH = 259;
// Cache keys: a merchant id (`?merchant_id=`) or a Host, kept apart by their prefix.
const ID_KEY = "id:";
const HOST_KEY = "host:";

export const sep1Routes: FastifyPluginAsync<RouteDeps> = async (app, { pool, config, clock, merchantChanges }) => {
  const platform = {
    stellar: config.stellar,
    signingKey: config.webhookSigningSeed ? Keypair.fromSecret(config.webhookSigningSeed).publicKey() : undefined,
  };
  // SEP-1 requires CORS on this URL; a hook also covers 400s, so browsers can read every answer.
  app.addHook("onRequest", (_request, reply, done) => {
    reply.header("access-control-allow-origin", "*");
    done();
  });

  /** Builds, size-checks and parses back a merchant's file; throws when it must not be served. */
  const render = (merchant: Merchant): RenderedToml => {
    const doc = stellarToml(merchant, platform);
    const body = Buffer.from(stringify(doc), "utf8");
    if (body.length > MAX_STELLAR_TOML_BYTES) {
      app.log.error({ merchantId: merchant.id, bytes: body.length }, "stellar.toml exceeds the SEP-1 100 KB limit; not served");
      throw new HttpError(500, "stellar_toml_too_large", "This merchant's stellar.toml exceeds the 100 KB limit of SEP-1.");
    }
    // Parse the exact bytes served: any value that escaped its string would show up as a difference.
    // (The JSON round trip drops smol-toml's null prototypes, which a strict comparison would see.)
    const parsed: unknown = JSON.parse(JSON.stringify(parse(body.toString("utf8"))));
    if (!isDeepStrictEqual(parsed, doc)) {
      app.log.error({ merchantId: merchant.id }, "stellar.toml does not parse back to its document; not served");
      throw new HttpError(500, "internal_error", "Something went wrong on our side.");
    }
    return { body, etag: `"${createHash("sha256").update(body).digest("base64url")}"` };
  };

  /** The merchant that proved control of `host` (lower-cased); pending claims are never served. */
  const merchantForHost = async (host: string): Promise<Merchant | undefined> =>
    mayServeHost(host, config) ? getMerchantByVerifiedHomeDomain(pool, host) : undefined;

  const load = async (key: string): Promise<Found<RenderedToml>> => {
    const merchant = key.startsWith(ID_KEY) ? await getMerchant(pool, key.slice(ID_KEY.length)) : await merchantForHost(key.slice(HOST_KEY.length));
    return merchant ? { merchantId: merchant.id, value: render(merchant) } : null;
  };
  // Rendering (build, parse back, hash) and the query are nearly all of a request's cost: both are done
  // once per key until the merchant changes, or the entry's age reaches TOML_MAX_AGE_MS.
  const files = new LookupCache<RenderedToml>({
    load,
    sizeOf: (key, toml) => key.length + (toml?.body.length ?? 0) + ENTRY_OVERHEAD_BYTES,
    clock,
    maxAgeMs: TOML_MAX_AGE_MS,
    maxEntries: MAX_CACHED_LOOKUPS,
    maxBytes: MAX_CACHED_BYTES,
  });
  merchantChanges?.onChange((merchantId) => (merchantId === null ? files.clear() : files.dropMerchant(merchantId)));

  app.get<{ Querystring: Sep1Query }>(
    "/.well-known/stellar.toml",
    {
      schema: {
        tags: ["sep1"],
        summary: "A merchant's SEP-1 stellar.toml",
        description:
          "Selected by the Host header (the merchant's `home_domain`, once verified), or by `merchant_id` when given. " +
          "Honours `If-None-Match` with 304.",
        security: [],
        querystring: {
          type: "object",
          properties: { merchant_id: { type: "string", pattern: idPattern("mer"), maxLength: 26, description: "Overrides the Host header." } },
        },
        response: {
          200: { description: "The stellar.toml (TOML)", content: { "text/plain": { schema: { type: "string" } } } },
          304: { description: "Not modified", type: "null" },
          400: { $ref: "Error#" },
          404: { $ref: "Error#" },
          500: { $ref: "Error#" },
        },
      },
    },
    // Not async: a file in memory is sent without a promise or a closure per request.
    (request, reply) => {
      const { merchant_id: merchantId } = request.query;
      // Host names are case-insensitive, and home_domain is stored lower-cased.
      const key = merchantId !== undefined ? ID_KEY + merchantId : request.host.length <= MAX_HOST_LENGTH ? HOST_KEY + request.host.toLowerCase() : undefined;
      const found = key === undefined ? null : files.get(key);
      return found instanceof Promise ? found.then((toml) => sendToml(request, reply, toml)) : sendToml(request, reply, found);
    },
  );
};
