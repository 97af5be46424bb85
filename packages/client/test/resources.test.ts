import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lumenpay } from "../src/index.js";
import { collect, failure, startApi, type RunningApi } from "./support/api.js";

let api: RunningApi;
let lumenpay: Lumenpay;
beforeAll(async () => {
  api = await startApi();
  const { apiKey } = await api.merchant();
  lumenpay = new Lumenpay({ apiKey, baseUrl: api.url });
});
afterAll(() => api.close());

describe("webhook endpoints", () => {
  it("creates (with its secret), retrieves, lists, updates and deletes an endpoint", async () => {
    const created = await lumenpay.webhookEndpoints.create({ url: "https://example.com/hooks", enabled_events: ["payment.created"] });
    expect(created).toMatchObject({ object: "webhook_endpoint", url: "https://example.com/hooks", enabled_events: ["payment.created"], disabled: false });
    expect(created.secret).toMatch(/^whsec_/);
    const { secret: _secret, ...endpoint } = created;
    expect(await lumenpay.webhookEndpoints.retrieve(created.id)).toEqual(endpoint);

    const other = await lumenpay.webhookEndpoints.create({ url: "https://example.com/other", enabled_events: ["*"] });
    expect((await collect(lumenpay.webhookEndpoints.list({ limit: 1 }))).map((e) => e.id)).toEqual([other.id, created.id]);

    const updated = await lumenpay.webhookEndpoints.update(created.id, { description: "orders", disabled: true });
    expect(updated).toMatchObject({ id: created.id, description: "orders", disabled: true, url: created.url });

    expect(await lumenpay.webhookEndpoints.delete(other.id)).toEqual({ id: other.id, object: "webhook_endpoint", deleted: true });
    expect(await failure(lumenpay.webhookEndpoints.retrieve(other.id))).toMatchObject({ status: 404, code: "resource_not_found" });
  });

  it("rejects an invalid endpoint with the server's code and param", async () => {
    const error = await failure(lumenpay.webhookEndpoints.create({ url: "https://example.com/hooks", enabled_events: [] }));
    expect(error).toMatchObject({ status: 400, param: "enabled_events" });
  });
});

describe("events and deliveries", () => {
  it("lists and retrieves the events and deliveries of a payment, and retries a delivery", async () => {
    const endpoint = await lumenpay.webhookEndpoints.create({ url: "https://example.com/payments", enabled_events: ["payment.created"] });
    const payment = await lumenpay.payments.create({ amount: "9.99", asset: "XLM" });

    const events = await collect(lumenpay.events.list({ type: "payment.created" }));
    const event = events.find((e) => e.data.object.id === payment.id);
    expect(event).toMatchObject({ object: "event", type: "payment.created", data: { object: { id: payment.id, amount: "9.99" } } });
    expect(await lumenpay.events.retrieve(event!.id)).toEqual(event);

    const deliveries = await collect(lumenpay.deliveries.list(endpoint.id));
    expect(deliveries).toEqual([expect.objectContaining({ object: "webhook_delivery", event_id: event!.id, endpoint_id: endpoint.id })]);
    const delivery = await lumenpay.deliveries.retrieve(deliveries[0]!.id);
    expect(delivery).toMatchObject({ id: deliveries[0]!.id, attempts: [] });

    const retried = await lumenpay.deliveries.retry(delivery.id);
    expect(retried).toMatchObject({ id: delivery.id, status: "pending" });
  });
});
