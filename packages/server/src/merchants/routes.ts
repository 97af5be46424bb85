import type { FastifyPluginAsync } from "fastify";
import { enforceLimit, RateLimiter } from "../http/auth.js";
import type { RouteDeps } from "../routes.js";
import { assetSchema } from "../stellar/assets.js";
import { attachProvenAccount, CHALLENGE_TTL_S, createAccountChallenge } from "./account-proof.js";
import { createTxtLookup, DNS_DEADLINE_MS } from "./dns.js";
import { verifyHomeDomain } from "./home-domain.js";
import { merchantOut, patchMerchant, type MerchantPatch, MAX_ACCOUNTS, MAX_ACCEPTED_ASSETS } from "./service.js";
import { ORG_FIELDS } from "./store.js";

const orgSchema = {
  type: "object",
  additionalProperties: false,
  description: "SEP-1 [DOCUMENTATION] fields (ORG_NAME → name, ORG_URL → url, …).",
  properties: Object.fromEntries(ORG_FIELDS.map((f) => [f, { type: "string", maxLength: 1000 }])),
} as const;

const homeDomainVerificationSchema = {
  type: ["object", "null"],
  description:
    "Proof of control of `home_domain` (null without one). Its stellar.toml is served only once `status` is `verified`: create the TXT " +
    "`record` (on the domain, or on `_lumenpay.<domain>` when the domain is a CNAME), then call POST /v1/merchant/home_domain/verify. " +
    "A new home_domain gets a new token and starts `pending`; a localhost one is verified at once outside production.",
  required: ["status", "token", "record", "verified_at"],
  properties: {
    status: { type: "string", enum: ["pending", "verified"] },
    token: { type: "string", description: "Random, per merchant and domain.", example: "3f1c0e7a9b2d4c6e8f0a1b2c3d4e5f60" },
    record: {
      type: "object",
      required: ["type", "name", "value"],
      properties: {
        type: { type: "string", enum: ["TXT"] },
        name: { type: "string", description: "The domain without its port.", example: "pay.acme.test" },
        value: { type: "string", example: "lumenpay-verification=3f1c0e7a9b2d4c6e8f0a1b2c3d4e5f60" },
      },
    },
    verified_at: { type: ["string", "null"], format: "date-time" },
  },
} as const;

export const merchantOutSchema = {
  type: "object",
  required: [
    "id",
    "object",
    "name",
    "email",
    "accounts",
    "home_domain",
    "home_domain_verification",
    "org",
    "accepted_assets",
    "created_at",
    "updated_at",
  ],
  properties: {
    id: { type: "string", example: "mer_4Qv0bYc5T2q9m1Zk8sLx3a" },
    object: { type: "string", enum: ["merchant"] },
    name: { type: "string" },
    email: { type: "string" },
    accounts: { type: "array", items: { type: "string" } },
    home_domain: { type: ["string", "null"], description: "Host (and port) whose /.well-known/stellar.toml is this merchant's, once verified." },
    home_domain_verification: homeDomainVerificationSchema,
    org: orgSchema,
    accepted_assets: { type: "array", items: assetSchema },
    created_at: { type: "string", format: "date-time" },
    updated_at: { type: "string", format: "date-time" },
  },
} as const;

const merchantPatchSchema = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: { type: "string", maxLength: 200 },
    email: { type: "string", maxLength: 254 },
    accounts: { type: "array", maxItems: MAX_ACCOUNTS, items: { type: "string", maxLength: 56 } },
    // 253 characters of host name, a colon and a port.
    home_domain: { type: ["string", "null"], maxLength: 259 },
    org: orgSchema,
    accepted_assets: { type: "array", maxItems: MAX_ACCEPTED_ASSETS, items: assetSchema },
  },
} as const;

const accountChallengeOutSchema = {
  type: "object",
  required: ["object", "account", "transaction", "network_passphrase", "server_key", "expires_at"],
  properties: {
    object: { type: "string", enum: ["account_challenge"] },
    account: { type: "string" },
    transaction: { type: "string", description: "Base64 XDR of a transaction envelope (sequence 0: never valid on the network) to sign with the account's key." },
    network_passphrase: { type: "string", description: "Sign for this network." },
    server_key: { type: "string", description: "The key that signed the challenge." },
    expires_at: { type: "string", format: "date-time" },
  },
} as const;

const errors = { 400: { $ref: "Error#" }, 401: { $ref: "Error#" }, 403: { $ref: "Error#" }, 409: { $ref: "Error#" }, 429: { $ref: "Error#" } };

/** Each call asks DNS, so it is limited per merchant well below the general API limit. */
export const HOME_DOMAIN_VERIFY_LIMIT_PER_MINUTE = 10;

/** `GET/PATCH /v1/merchant`: the authenticated merchant's own profile. */
export const merchantRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, config, clock }) => {
  const proof = () => ({ config, now: clock.now() });
  const lookupTxt = createTxtLookup(config.dnsServers);
  const verifyLimiter = new RateLimiter(HOME_DOMAIN_VERIFY_LIMIT_PER_MINUTE, clock);

  app.get(
    "/merchant",
    { schema: { tags: ["merchant"], summary: "Retrieve your merchant profile", response: { 200: merchantOutSchema, ...errors } } },
    async (request) => merchantOut(request.merchant),
  );

  app.patch<{ Body: MerchantPatch }>(
    "/merchant",
    {
      config: { freshMerchant: true },
      schema: {
        tags: ["merchant"],
        summary: "Update your merchant profile",
        description:
          "Only the fields given change; `org`, `accepted_assets` and `accounts` are replaced as a whole. An account belongs to one merchant " +
          "(409 `account_in_use`); one with open payments cannot be removed (409 `account_has_open_payments`); when the operator requires " +
          "proof of control (REQUIRE_ACCOUNT_PROOF), new accounts are attached with POST /v1/merchant/accounts instead (403 `account_proof_required`). " +
          "A new `home_domain` starts pending (see `home_domain_verification`); this server's own host is refused (400 `home_domain_reserved`), " +
          "and so is a domain another merchant has verified (409 `home_domain_taken`).",
        body: merchantPatchSchema,
        response: { 200: merchantOutSchema, ...errors },
      },
    },
    async (request) =>
      merchantOut(await patchMerchant(pool, request.merchant, request.body, { ...config.merchants, homeDomainRules: config, now: clock.now() })),
  );

  app.post(
    "/merchant/home_domain/verify",
    {
      config: { freshMerchant: true },
      schema: {
        tags: ["merchant"],
        summary: "Verify your home domain through DNS",
        description:
          "Looks up the TXT record of `home_domain_verification.record` now (on the domain and on `_lumenpay.<domain>`) and marks the " +
          "home domain verified, so its stellar.toml is served. 422 `home_domain_record_missing` (the message names the record to create) " +
          `when it is not there yet; 502 \`dns_unavailable\` when DNS does not answer within ${DNS_DEADLINE_MS / 1000} s; 409 \`home_domain_taken\` ` +
          "when another merchant verified the domain first; 400 `home_domain_not_set` without a home_domain. A verified domain is returned " +
          `as it is. At most ${HOME_DOMAIN_VERIFY_LIMIT_PER_MINUTE} calls a minute.`,
        response: { 200: merchantOutSchema, ...errors, 422: { $ref: "Error#" }, 502: { $ref: "Error#" } },
      },
    },
    async (request, reply) => {
      enforceLimit(verifyLimiter, request.merchant.id, reply, "verifications");
      return merchantOut(await verifyHomeDomain(pool, request.merchant, { rules: config, lookupTxt, clock, log: request.log }));
    },
  );

  app.post<{ Body: { account: string } }>(
    "/merchant/accounts/challenge",
    {
      config: { freshMerchant: true },
      schema: {
        tags: ["merchant"],
        summary: "Get a challenge proving control of an account",
        description:
          "Returns a SEP-10-style challenge transaction for `account`. Sign it with the account's key (never submit it: its sequence " +
          `number makes it invalid on the network) and send it to POST /v1/merchant/accounts within ${CHALLENGE_TTL_S / 60} minutes.`,
        body: {
          type: "object",
          additionalProperties: false,
          required: ["account"],
          properties: { account: { type: "string", maxLength: 56, description: "The G… account to attach." } },
        },
        response: { 200: accountChallengeOutSchema, ...errors },
      },
    },
    async (request) => createAccountChallenge(pool, request.merchant, request.body.account, proof()),
  );

  app.post<{ Body: { transaction: string } }>(
    "/merchant/accounts",
    {
      config: { freshMerchant: true },
      schema: {
        tags: ["merchant"],
        summary: "Attach an account with a signed challenge",
        description:
          "Attaches the account a signed challenge proves control of (signed by its master key, for this network, unexpired, used once) " +
          "and marks it verified. 409 `account_in_use` when another merchant owns it.",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["transaction"],
          properties: { transaction: { type: "string", maxLength: 10_000, description: "The challenge's base64 XDR, signed." } },
        },
        response: { 200: merchantOutSchema, ...errors },
      },
    },
    async (request) => merchantOut(await attachProvenAccount(pool, request.merchant, request.body.transaction, proof())),
  );
};
