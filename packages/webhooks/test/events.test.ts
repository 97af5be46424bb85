import { describe, expect, expectTypeOf, it } from "vitest";
import {
  EVENT_TYPES,
  PAYMENT_FIELDS,
  type EventOf,
  type EventType,
  type LumenpayEvent,
  type Payment,
  type WebhookEndpoint,
} from "../src/index.js";
import { payment } from "./support/fixtures.js";

// The server's test suite (packages/server/test/sdk-event-types.test.ts) compares these types with
// the API's schemas; here they are checked against each other. The expectTypeOf lines fail `tsc`.
describe("LumenpayEvent", () => {
  it("has one member per EVENT_TYPES entry, each carrying the right object", () => {
    expectTypeOf<LumenpayEvent["type"]>().toEqualTypeOf<EventType>();
    expectTypeOf<EventOf<"payment.late_payment_received">["data"]["object"]>().toEqualTypeOf<Payment>();
    expectTypeOf<EventOf<"webhook.test">["data"]["object"]>().toEqualTypeOf<WebhookEndpoint>();
    expect(new Set(EVENT_TYPES).size).toBe(EVENT_TYPES.length);
    expect(EVENT_TYPES).toContain("payment.confirmed");
  });

  it("PAYMENT_FIELDS describes the JSON of a Payment value", () => {
    const jsonType = (value: unknown) => (value === null ? "null" : Array.isArray(value) ? "array" : typeof value);
    const sample: Record<string, unknown> = { ...payment({ asset: { code: "USDC", issuer: "GA5Z" } }) };
    expect(Object.keys(sample).sort()).toEqual(Object.keys(PAYMENT_FIELDS).sort());
    for (const [field, types] of Object.entries(PAYMENT_FIELDS)) expect(types, field).toHaveProperty(jsonType(sample[field]));
  });
});
