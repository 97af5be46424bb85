import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { API_VERSION, publicKeyFromSeed, type EventOf, type UnmatchedPayment } from "@lumenpay/webhooks";
import { parseConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import type { OrderStore } from "../src/orders.js";
import { startReceiver, type Receiver } from "../src/server.js";
import { newId, OTHER_SECRET, paymentEvent, SECRET, signed } from "./support/fixtures.js";
import { rejections, request, send, startTestReceiver, type TestReceiver } from "./support/receiver.js";

const running: Receiver[] = [];
async function receiver(env: Record<string, string> = {}): Promise<TestReceiver> {
  const started = await startTestReceiver(env);
  running.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

describe("a delivery", () => {
  it("that is signed and fresh is verified, handled before the answer, and answered 200", async () => {
    const r = await receiver();
    const event = paymentEvent("payment.confirmed");
    const delivery = signed(event);
    const answer = await send(r.url, delivery);

    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({ status: "processed" });
    expect(r.orders.get(event.data.object.id)).toMatchObject({ state: "paid", orderId: "order-42", amountReceived: "12.5", eventId: event.id });
    expect(r.logs).toContainEqual(
      expect.objectContaining({ kind: "webhook.answered", webhook_id: event.id, event_type: "payment.confirmed", status: 200 }),
    );
    expect(rejections(r)).toEqual([]);
  });

  it("records each example event type as its order state", async () => {
    const r = await receiver();
    const states = {
      "payment.created": "awaiting_payment",
      "payment.partially_paid": "partially_paid",
      "payment.expired": "expired",
      "payment.canceled": "canceled",
      "payment.late_payment_received": "late_payment_review",
    } as const;
    for (const [type, state] of Object.entries(states)) {
      const event = paymentEvent(type as keyof typeof states, { sequence: 1 });
      expect((await send(r.url, signed(event))).status).toBe(200);
      expect(r.orders.get(event.data.object.id)?.state).toBe(state);
    }
  });

  it("logs money that paid no payment, with what a person needs to refund or reconcile it", async () => {
    const r = await receiver();
    const unmatched: UnmatchedPayment = {
      id: newId("unm"),
      object: "unmatched_payment",
      reason: "no_memo",
      amount: "7.5",
      asset: "XLM",
      destination: "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7",
      destination_account: "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7",
      muxed_id: null,
      memo_type: "none",
      memo: null,
      from: "GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H",
      transaction_hash: "ab".repeat(32),
      operation_id: "12884905985",
      ledger: 3,
      closed_at: new Date().toISOString(),
      payment_id: null,
      created_at: new Date().toISOString(),
    };
    const event: EventOf<"payment.unmatched_received"> = {
      id: newId("evt"),
      type: "payment.unmatched_received",
      created_at: new Date().toISOString(),
      api_version: API_VERSION,
      data: { object: unmatched },
    };
    const answer = await send(r.url, signed(event));
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({ status: "processed" });
    expect(r.logs).toContainEqual(
      expect.objectContaining({ kind: "payment.unmatched", unmatched_id: unmatched.id, reason: "no_memo", amount: "7.5", from: unmatched.from }),
    );
  });

  it("older than the state already recorded for its payment is acknowledged but changes nothing", async () => {
    const r = await receiver();
    const paymentId = newId("pay");
    expect((await send(r.url, signed(paymentEvent("payment.confirmed", { paymentId, sequence: 3 })))).status).toBe(200);
    expect((await send(r.url, signed(paymentEvent("payment.partially_paid", { paymentId, sequence: 2 })))).status).toBe(200);
    expect(r.orders.get(paymentId)?.state).toBe("paid");
  });

  it("with a bad signature is refused with 401, never handled, and logged without the secret or signature", async () => {
    const r = await receiver();
    const event = paymentEvent();
    const forged = signed(event, { secret: OTHER_SECRET });
    const answer = await send(r.url, forged);

    expect(answer.status).toBe(401);
    expect(answer.json()).toMatchObject({ error: "invalid_signature" });
    expect(r.orders.history).toEqual([]);
    expect(rejections(r)).toEqual([
      expect.objectContaining({
        level: 40,
        ip: "127.0.0.1",
        reason: "invalid_signature",
        detail: "NoMatchingSignatureError",
        status: 401,
        user_agent: "Lumenpay-Webhooks/test",
        webhook_id: event.id,
        path: "/webhooks/lumenpay",
      }),
    ]);
    const logged = r.rawLogs();
    for (const secret of [SECRET, OTHER_SECRET]) expect(logged).not.toContain(secret.slice("whsec_".length));
    for (const header of ["webhook-signature", "stellar-signature"]) {
      for (const part of forged.headers[header]!.split(/[ ,=]/).filter((p) => p.length > 20)) expect(logged).not.toContain(part);
    }
  });

  it("signed 10 minutes ago is refused with 401 (REPLAY_TOLERANCE_SECONDS, default 300)", async () => {
    const r = await receiver();
    const event = paymentEvent();
    const answer = await send(r.url, signed(event, { timestamp: Math.floor(Date.now() / 1000) - 600 }));
    expect(answer.status).toBe(401);
    expect(r.orders.history).toEqual([]);
    expect(rejections(r)).toEqual([expect.objectContaining({ reason: "invalid_signature", detail: "TimestampTooOldError", webhook_id: event.id })]);

    const lenient = await receiver({ REPLAY_TOLERANCE_SECONDS: "900" });
    expect((await send(lenient.url, signed(event, { timestamp: Math.floor(Date.now() / 1000) - 600 }))).status).toBe(200);
  });

  it("without signature headers is refused with 401", async () => {
    const r = await receiver();
    const answer = await request(r.url, { body: JSON.stringify(paymentEvent()), headers: { "content-type": "application/json" } });
    expect(answer.status).toBe(401);
    expect(rejections(r)).toEqual([expect.objectContaining({ reason: "invalid_signature", detail: "MissingHeaderError" })]);
  });

  it("whose body is not JSON but correctly signed is refused with 400", async () => {
    const r = await receiver();
    const answer = await send(r.url, signed('{"id": "evt_1", "type": '));
    expect(answer.status).toBe(400);
    expect(answer.json()).toMatchObject({ error: "invalid_payload" });
    expect(rejections(r)).toEqual([expect.objectContaining({ reason: "invalid_payload", detail: "InvalidPayloadError", status: 400 })]);
  });

  it("of 2 MB is refused with 413 before it is read (MAX_WEBHOOK_BODY_SIZE, default 1 MiB)", async () => {
    const r = await receiver();
    const event = paymentEvent();
    const big = JSON.stringify({ ...event, padding: "x".repeat(2 * 1024 * 1024) });
    const answer = await send(r.url, signed(big, { id: event.id }));
    expect(answer.status).toBe(413);
    expect(r.orders.history).toEqual([]);
    expect(rejections(r)).toEqual([expect.objectContaining({ reason: "payload_too_large", status: 413 })]);

    // The limit is configuration: the same body fits under 4 MiB.
    const roomy = await receiver({ MAX_WEBHOOK_BODY_SIZE: String(4 * 1024 * 1024) });
    expect((await send(roomy.url, signed(big, { id: event.id }))).status).toBe(200);
  });

  it("that is not application/json gets 415, and a GET gets 405", async () => {
    const r = await receiver();
    const delivery = signed(paymentEvent());
    const text = await request(r.url, { body: delivery.body, headers: { ...delivery.headers, "content-type": "text/plain" } });
    expect(text.status).toBe(415);
    const get = await request(r.url, { method: "GET" });
    expect(get.status).toBe(405);
    expect(rejections(r).map((line) => line.reason)).toEqual(["unsupported_media_type", "method_not_allowed"]);
  });

  it("signed by the platform's Ed25519 key is accepted with LUMENPAY_SIGNING_KEY alone", async () => {
    const seed = randomBytes(32);
    const r = await receiver({ WEBHOOK_SECRET: "", LUMENPAY_SIGNING_KEY: publicKeyFromSeed(seed) });
    const event = paymentEvent();
    // signDelivery always adds HMACs too; these use a secret the receiver does not know.
    const answer = await send(r.url, signed(event, { secret: OTHER_SECRET, signingSeed: seed }));
    expect(answer.status).toBe(200);
    expect(r.orders.get(event.data.object.id)?.state).toBe("paid");
    const otherKey = signed(paymentEvent(), { secret: OTHER_SECRET, signingSeed: randomBytes(32) });
    expect((await send(r.url, otherKey)).status).toBe(401);
  });
});

describe("a duplicate delivery", () => {
  it("is answered 200 without running the handler again", async () => {
    const r = await receiver();
    const event = paymentEvent();
    expect((await send(r.url, signed(event))).json()).toEqual({ status: "processed" });
    // Lumenpay's retry: the same id and body, signed afresh.
    const again = await send(r.url, signed(event));
    expect(again.status).toBe(200);
    expect(again.json()).toEqual({ status: "duplicate" });
    expect(r.orders.history).toHaveLength(1);
    expect(r.logs.filter((line) => line.kind === "order.updated")).toHaveLength(1);
  });

  it("is answered 409 with REPLAY_DUPLICATE_MODE=reject", async () => {
    const r = await receiver({ REPLAY_DUPLICATE_MODE: "reject" });
    const event = paymentEvent();
    expect((await send(r.url, signed(event))).status).toBe(200);
    const again = await send(r.url, signed(event));
    expect(again.status).toBe(409);
    expect(again.json()).toEqual({ status: "duplicate" });
    expect(r.orders.history).toHaveLength(1);
  });

  it("runs the handler again with ENABLE_REPLAY_PROTECTION=false", async () => {
    const r = await receiver({ ENABLE_REPLAY_PROTECTION: "false" });
    const event = paymentEvent();
    expect((await send(r.url, signed(event))).json()).toEqual({ status: "processed" });
    expect((await send(r.url, signed(event))).json()).toEqual({ status: "processed" });
    expect(r.logs.filter((line) => line.kind === "order.updated" && line.webhook_id === event.id)).toHaveLength(2);
  });
});

describe("a handler", () => {
  it("that runs past WEBHOOK_TIMEOUT_MS gets 503, so Lumenpay retries later", async () => {
    // An order store that never finishes until the router gives up on it.
    const stuck: OrderStore = {
      apply: (_update, signal) => new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    };
    const config = parseConfig({ WEBHOOK_SECRET: SECRET, PORT: "0", HOST: "127.0.0.1", WEBHOOK_TIMEOUT_MS: "200" });
    const lines: string[] = [];
    const r = await startReceiver(config, { orders: stuck, log: createLogger("info", { write: (line: string) => void lines.push(line) }) });
    running.push(r);
    const answer = await send(r.url, signed(paymentEvent()));
    expect(answer.status).toBe(503);
    expect(answer.json()).toMatchObject({ status: "timeout" });
    expect(lines.map((line) => JSON.parse(line) as { kind?: string })).toContainEqual(expect.objectContaining({ kind: "webhook.failed" }));
  });
});

describe("security headers", () => {
  it("are set by helmet, unless ENABLE_HELMET=false", async () => {
    const on = await request(`${new URL((await receiver()).url).origin}/health`, { method: "GET" });
    expect(on.status).toBe(200);
    expect(on.headers).toMatchObject({ "x-content-type-options": "nosniff", "strict-transport-security": expect.any(String) });
    expect(on.headers["x-powered-by"]).toBeUndefined();
    const off = await request(`${new URL((await receiver({ ENABLE_HELMET: "false" })).url).origin}/health`, { method: "GET" });
    expect(off.headers["x-content-type-options"]).toBeUndefined();
    expect(off.headers["x-powered-by"]).toBeUndefined();
  });
});
