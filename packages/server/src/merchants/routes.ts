import type { FastifyPluginAsync } from "fastify";
import type { RouteDeps } from "../routes.js";
import { assetSchema } from "../stellar/assets.js";
import { attachProvenAccount, CHALLENGE_TTL_S, createAccountChallenge } from "./account-proof.js";
import { merchantOut, patchMerchant, type MerchantPatch } from "./service.js";
import { ORG_FIELDS } from "./store.js";

const orgSchema = {
  type: "object",
  additionalProperties: false,
  description: "SEP-1 [DOCUMENTATION] fields (ORG_NAME → name, ORG_URL → url, …).",
  properties: Object.fromEntries(ORG_FIELDS.map((f) => [f, { type: "string", maxLength: 1000 }])),
} as const;

export const merchantOutSchema = {
  type: "object",
  required: ["id", "object", "name", "email", "accounts", "home_domain", "org", "accepted_assets", "created_at", "updated_at"],
  properties: {
    id: { type: "string", example: "mer_4Qv0bYc5T2q9m1Zk8sLx3a" },
    object: { type: "string", enum: ["merchant"] },
    name: { type: "string" },
    email: { type: "string" },
    accounts: { type: "array", items: { type: "string" } },
    home_domain: { type: ["string", "null"] },
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
    name: { type: "string" },
    email: { type: "string" },
    accounts: { type: "array", items: { type: "string" } },
    home_domain: { type: ["string", "null"] },
    org: orgSchema,
    accepted_assets: { type: "array", items: assetSchema },
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

/** `GET/PATCH /v1/merchant`: the authenticated merchant's own profile. */
export const merchantRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, config, clock }) => {
  const proof = () => ({ config, now: clock.now() });

  app.get(
    "/merchant",
    { schema: { tags: ["merchant"], summary: "Retrieve your merchant profile", response: { 200: merchantOutSchema, ...errors } } },
    async (request) => merchantOut(request.merchant),
  );

  app.patch<{ Body: MerchantPatch }>(
    "/merchant",
    {
      schema: {
        tags: ["merchant"],
        summary: "Update your merchant profile",
        description:
          "Only the fields given change; `org`, `accepted_assets` and `accounts` are replaced as a whole. An account belongs to one merchant " +
          "(409 `account_in_use`); one with open payments cannot be removed (409 `account_has_open_payments`); when the operator requires " +
          "proof of control (REQUIRE_ACCOUNT_PROOF), new accounts are attached with POST /v1/merchant/accounts instead (403 `account_proof_required`).",
        body: merchantPatchSchema,
        response: { 200: merchantOutSchema, ...errors },
      },
    },
    async (request) => merchantOut(await patchMerchant(pool, request.merchant, request.body, { ...config.merchants, now: clock.now() })),
  );

  app.post<{ Body: { account: string } }>(
    "/merchant/accounts/challenge",
    {
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
