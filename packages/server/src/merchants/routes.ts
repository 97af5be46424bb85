import type { FastifyPluginAsync } from "fastify";
import type { RouteDeps } from "../routes.js";
import { assetSchema } from "../stellar/assets.js";
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

const errors = { 400: { $ref: "Error#" }, 401: { $ref: "Error#" }, 409: { $ref: "Error#" }, 429: { $ref: "Error#" } };

/** `GET/PATCH /v1/merchant`: the authenticated merchant's own profile. */
export const merchantRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, config, clock }) => {
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
        description: "Only the fields given change; `org` and `accepted_assets` are replaced as a whole.",
        body: merchantPatchSchema,
        response: { 200: merchantOutSchema, ...errors },
      },
    },
    async (request) => merchantOut(await patchMerchant(pool, request.merchant, request.body, { ...config.merchants, now: clock.now() })),
  );
};
