import {
  API_VERSION as SDK_API_VERSION,
  EVENT_TYPES as SDK_EVENT_TYPES,
  MEMO_TYPES as SDK_MEMO_TYPES,
  PAYMENT_FIELDS,
  PAYMENT_STATUSES as SDK_PAYMENT_STATUSES,
  SETTLEMENT_FIELDS,
  UNMATCHED_PAYMENT_FIELDS,
  UNMATCHED_REASONS as SDK_UNMATCHED_REASONS,
  WEBHOOK_ENDPOINT_FIELDS,
} from "@lumenpay/webhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION, EVENT_TYPES } from "../src/events/types.js";
import { buildTestApp, seedMerchant, type TestApp } from "./support/app.js";

/**
 * The SDK's event types (packages/webhooks/src/events.ts) against what this server publishes and
 * sends, so neither can change alone. Each failure names the field and the file to fix.
 */

type Schema = Record<string, unknown>;
type Fields = Record<string, Record<string, true>>;
const SDK_FILE = "packages/webhooks/src/events.ts";

let t: TestApp;
let doc: Schema;
beforeAll(async () => {
  t = await buildTestApp();
  doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
});
afterAll(() => t.close());

function resolve(schema: unknown): Schema {
  let node = schema as Schema;
  while (typeof node.$ref === "string") {
    const ref = node.$ref;
    if (!ref.startsWith("#/")) throw new Error(`cannot follow ${ref}`);
    node = ref.slice(2).split("/").reduce<Schema>((n, part) => n[part] as Schema, doc);
  }
  return node;
}

/** The JSON types a schema allows: `type`, `nullable` (OpenAPI 3.0), a null in `enum`, and oneOf/anyOf branches. */
function jsonTypes(schema: unknown): string[] {
  const s = resolve(schema);
  const types = new Set<string>();
  for (const branch of [...((s.oneOf as unknown[]) ?? []), ...((s.anyOf as unknown[]) ?? [])]) for (const type of jsonTypes(branch)) types.add(type);
  for (const type of [s.type ?? []].flat() as string[]) types.add(type === "integer" ? "number" : type);
  if (s.nullable === true || (Array.isArray(s.enum) && s.enum.includes(null))) types.add("null");
  return [...types].sort();
}

const enumValues = (schema: unknown) => ((resolve(schema).enum as unknown[] | undefined) ?? []).filter((v) => v !== null);

/** Every difference between an SDK field map and an object schema, as sentences. */
function drift(name: string, sdk: Fields, schema: unknown): string[] {
  const s = resolve(schema);
  const properties = s.properties as Record<string, unknown>;
  const required = new Set(s.required as string[]);
  const problems: string[] = [];
  for (const [field, property] of Object.entries(properties)) {
    const server = jsonTypes(property).join("|");
    const declared = sdk[field];
    if (!declared) {
      problems.push(`${name}.${field} (${server}) is sent by the server but missing from ${name} and its *_FIELDS map in ${SDK_FILE}`);
      continue;
    }
    const ours = Object.keys(declared).sort().join("|");
    if (ours !== server) problems.push(`${name}.${field} is ${server} on the server but ${ours} in ${SDK_FILE}`);
    if (!required.has(field)) problems.push(`${name}.${field} is optional on the server but always present in ${SDK_FILE}`);
  }
  for (const field of Object.keys(sdk)) {
    if (!(field in properties)) problems.push(`${name}.${field} is declared in ${SDK_FILE} but the server's schema has no such field`);
  }
  return problems;
}

function responseSchema(path: string, status = "200"): Schema {
  const paths = doc.paths as Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: Schema }> }> }>>;
  const schema = paths[path]?.get?.responses[status]?.content["application/json"]?.schema;
  if (!schema) throw new Error(`no ${status} JSON response for GET ${path} in /openapi.json`);
  return resolve(schema);
}

const sorted = (values: readonly unknown[]) => [...values].map(String).sort();

describe("the SDK's event types match the server", () => {
  it("has the same event types and API version", () => {
    expect(sorted(SDK_EVENT_TYPES), `EVENT_TYPES differ: update ${SDK_FILE} and its LumenpayEvent union`).toEqual(sorted(EVENT_TYPES));
    expect(SDK_API_VERSION, `API_VERSION changed: review the types in ${SDK_FILE}, then update it`).toBe(API_VERSION);
  });

  it("types every field of a payment as GET /v1/payments/{id} declares it", () => {
    const payment = responseSchema("/v1/payments/{id}");
    const properties = payment.properties as Record<string, unknown>;
    const problems = [
      ...drift("Payment", PAYMENT_FIELDS, payment),
      ...drift("Settlement", SETTLEMENT_FIELDS, resolve(properties.settlements).items),
    ];
    expect(problems, problems.join("\n")).toEqual([]);
    expect(sorted(SDK_PAYMENT_STATUSES), `payment statuses differ: update PAYMENT_STATUSES in ${SDK_FILE}`).toEqual(sorted(enumValues(properties.status)));
    expect(sorted(SDK_MEMO_TYPES), `memo types differ: update MEMO_TYPES in ${SDK_FILE}`).toEqual(sorted(enumValues(properties.memo_type)));
  });

  it("types every field of an unmatched payment as GET /v1/unmatched_payments/{id} declares it", () => {
    const unmatched = responseSchema("/v1/unmatched_payments/{id}");
    const problems = drift("UnmatchedPayment", UNMATCHED_PAYMENT_FIELDS, unmatched);
    expect(problems, problems.join("\n")).toEqual([]);
    const reasons = enumValues((unmatched.properties as Record<string, unknown>).reason);
    expect(sorted(SDK_UNMATCHED_REASONS), `unmatched reasons differ: update UNMATCHED_REASONS in ${SDK_FILE}`).toEqual(sorted(reasons));
  });

  it("types every field of a webhook endpoint as GET /v1/webhook_endpoints/{id} declares it", () => {
    const problems = drift("WebhookEndpoint", WEBHOOK_ENDPOINT_FIELDS, responseSchema("/v1/webhook_endpoints/{id}"));
    expect(problems, problems.join("\n")).toEqual([]);
  });

  it("lists every event type in the events API schema", () => {
    const event = responseSchema("/v1/events/{id}");
    const types = enumValues((event.properties as Record<string, unknown>).type);
    expect(sorted(SDK_EVENT_TYPES), `the events API schema and ${SDK_FILE} list different types`).toEqual(sorted(types));
  });

  it("a real payment.created event carries exactly the fields, with the JSON types, the SDK declares", async () => {
    const m = await seedMerchant(t);
    const created = await t.app.inject({ method: "POST", url: "/v1/payments", headers: m.auth, payload: { amount: "12.50", asset: "XLM" } });
    expect(created.statusCode, created.body).toBe(201);
    const events = await t.app.inject({ method: "GET", url: "/v1/events?type=payment.created", headers: m.auth });
    const event = events.json().data[0] as { type: string; data: { object: Record<string, unknown> } };
    expect(event.type).toBe("payment.created");
    const jsonTypeOf = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);
    const problems = Object.entries(event.data.object).flatMap(([field, value]) => {
      const declared = (PAYMENT_FIELDS as Fields)[field];
      if (!declared) return [`Payment.${field} is sent in payment.created but missing from ${SDK_FILE}`];
      return declared[jsonTypeOf(value)] ? [] : [`Payment.${field} was sent as ${jsonTypeOf(value)}; ${SDK_FILE} allows ${Object.keys(declared).join("|")}`];
    });
    for (const field of Object.keys(PAYMENT_FIELDS)) if (!(field in event.data.object)) problems.push(`Payment.${field} is declared in ${SDK_FILE} but was not sent`);
    expect(problems, problems.join("\n")).toEqual([]);
  });
});
