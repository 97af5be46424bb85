import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { Keypair } from "@stellar/stellar-sdk";
import type { FastifyBaseLogger, FastifyPluginAsync } from "fastify";
import { parse, stringify } from "smol-toml";
import type { Config } from "../config.js";
import { HttpError, notFound } from "../http/errors.js";
import { idPattern } from "../ids.js";
import { mayServeHost } from "../merchants/home-domain.js";
import { getMerchant, getMerchantByVerifiedHomeDomain, ORG_FIELDS, type Merchant } from "../merchants/store.js";
import type { RouteDeps } from "../routes.js";

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

interface Sep1Query {
  merchant_id?: string;
}

/** `GET /.well-known/stellar.toml`: the SEP-1 file of the merchant whose home_domain is the request's Host. */
interface RenderedToml {
  body: Buffer;
  etag: string;
}

/**
 * Rendered files by merchant, valid while the merchant row is unchanged (`updated_at`): building,
 * parsing back and hashing the TOML is most of a request's cost. Bounded: cleared when full.
 */
class RenderedCache {
  private readonly entries = new Map<string, { updatedAt: number; toml: RenderedToml }>();
  constructor(private readonly maxEntries = 10_000) {}

  get(merchant: Merchant): RenderedToml | undefined {
    const entry = this.entries.get(merchant.id);
    return entry && entry.updatedAt === merchant.updatedAt.getTime() ? entry.toml : undefined;
  }

  set(merchant: Merchant, toml: RenderedToml): RenderedToml {
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(merchant.id, { updatedAt: merchant.updatedAt.getTime(), toml });
    return toml;
  }
}

export const sep1Routes: FastifyPluginAsync<RouteDeps> = async (app, { pool, config }) => {
  const platform = {
    stellar: config.stellar,
    signingKey: config.webhookSigningSeed ? Keypair.fromSecret(config.webhookSigningSeed).publicKey() : undefined,
  };
  // SEP-1 requires CORS on this URL; a hook also covers 400s, so browsers can read every answer.
  app.addHook("onRequest", async (_request, reply) => {
    reply.header("access-control-allow-origin", "*");
  });

  /** Builds, size-checks and parses back a merchant's file; throws when it must not be served. */
  const render = (merchant: Merchant, log: FastifyBaseLogger): RenderedToml => {
    const doc = stellarToml(merchant, platform);
    const body = Buffer.from(stringify(doc), "utf8");
    if (body.length > MAX_STELLAR_TOML_BYTES) {
      log.error({ merchantId: merchant.id, bytes: body.length }, "stellar.toml exceeds the SEP-1 100 KB limit; not served");
      throw new HttpError(500, "stellar_toml_too_large", "This merchant's stellar.toml exceeds the 100 KB limit of SEP-1.");
    }
    // Parse the exact bytes served: any value that escaped its string would show up as a difference.
    // (The JSON round trip drops smol-toml's null prototypes, which a strict comparison would see.)
    const parsed: unknown = JSON.parse(JSON.stringify(parse(body.toString("utf8"))));
    if (!isDeepStrictEqual(parsed, doc)) {
      log.error({ merchantId: merchant.id }, "stellar.toml does not parse back to its document; not served");
      throw new HttpError(500, "internal_error", "Something went wrong on our side.");
    }
    return { body, etag: `"${createHash("sha256").update(body).digest("base64url")}"` };
  };
  const rendered = new RenderedCache();

  /** The merchant that proved control of `host`; pending claims are never served. */
  const merchantForHost = async (host: string): Promise<Merchant | undefined> => {
    // home_domain is stored lower-cased; host names are case-insensitive.
    const domain = host.toLowerCase();
    return mayServeHost(domain, config) ? getMerchantByVerifiedHomeDomain(pool, domain) : undefined;
  };

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
    async (request, reply) => {
      const { merchant_id: merchantId } = request.query;
      const merchant = merchantId ? await getMerchant(pool, merchantId) : await merchantForHost(request.host);
      if (!merchant) throw notFound("merchant");

      const { body, etag } = rendered.get(merchant) ?? rendered.set(merchant, render(merchant, request.log));
      reply.header("etag", etag).header("cache-control", "public, max-age=3600");
      if (etagMatches(request.headers["if-none-match"], etag)) return reply.code(304).send();
      return reply.type("text/plain; charset=utf-8").send(body);
    },
  );
};
