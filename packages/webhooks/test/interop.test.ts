import { createHmac, randomBytes } from "node:crypto";
import { Webhook as StandardWebhook } from "standardwebhooks";
import Stripe from "stripe";
import { Webhook as SvixWebhook } from "svix";
import { describe, expect, it } from "vitest";
import { Webhook, signDelivery } from "../src/index.js";

const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;
const now = () => Math.floor(Date.now() / 1000);
const event = { id: "evt_9", type: "payment.succeeded", created_at: "2025-01-01T00:00:00Z", api_version: "2025-01-01", data: { object: { amount: "10.5" } } };
const body = JSON.stringify(event);
// A dummy key: constructEvent is offline, no request is made.
const stripe = new Stripe("sk_test_offline");
const seed = randomBytes(32);

describe("other libraries verify what signDelivery sends", () => {
  it("standardwebhooks and svix accept our headers with each rotated secret, skipping the v1a entry", () => {
    const secrets = [newSecret(), newSecret()];
    const headers = signDelivery({ id: "evt_9", timestamp: now(), body, secrets, signingSeed: seed });
    expect(headers["webhook-signature"].split(" ").map((e) => e.split(",")[0])).toEqual(["v1", "v1", "v1a"]);
    for (const secret of secrets) {
      expect(new StandardWebhook(secret).verify(body, headers)).toEqual(event);
      expect(new SvixWebhook(secret).verify(body, headers)).toEqual(event);
    }
  });

  it("standardwebhooks rejects our headers under a different secret", () => {
    const headers = signDelivery({ id: "evt_9", timestamp: now(), body, secrets: [newSecret()] });
    expect(() => new StandardWebhook(newSecret()).verify(body, headers)).toThrow(/No matching signature/);
  });

  it("stripe.webhooks.constructEvent accepts our stellar-signature with each rotated secret string", () => {
    const secrets = [newSecret(), newSecret()];
    const headers = signDelivery({ id: "evt_9", timestamp: now(), body, secrets });
    for (const secret of secrets) {
      expect(stripe.webhooks.constructEvent(body, headers["stellar-signature"], secret)).toEqual(event);
    }
    expect(() => stripe.webhooks.constructEvent(body, headers["stellar-signature"], newSecret())).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
  });

  it("stripe would reject the base64-decoded key, which is why Stellar-Signature keys with the whole secret string", () => {
    const secret = newSecret();
    const timestamp = now();
    const decodedKey = Buffer.from(secret.slice("whsec_".length), "base64");
    const decodedHeader = `t=${timestamp},v1=${createHmac("sha256", decodedKey).update(`${timestamp}.${body}`).digest("hex")}`;
    expect(() => stripe.webhooks.constructEvent(body, decodedHeader, secret)).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
    const ours = signDelivery({ id: "evt_9", timestamp, body, secrets: [secret] })["stellar-signature"];
    expect(ours).not.toBe(decodedHeader);
    expect(ours).toBe(stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp }));
  });
});

describe("our verifier accepts what other libraries sign", () => {
  it("standardwebhooks and svix signatures", async () => {
    const secret = newSecret();
    const wh = new Webhook({ secrets: [secret] });
    const timestamp = new Date();
    for (const signer of [new StandardWebhook(secret), new SvixWebhook(secret)]) {
      const headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
        "webhook-signature": signer.sign("msg_2", timestamp, body),
      };
      expect(await wh.verify(body, headers)).toEqual(event);
    }
  });

  it("a message id outside ASCII, signed as UTF-8 as standardwebhooks signs it (signDelivery itself sends only ASCII ids)", async () => {
    const secret = newSecret();
    const id = "msg_é_💳";
    const timestamp = new Date();
    const theirs = {
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
      "webhook-signature": new StandardWebhook(secret).sign(id, timestamp, body),
    };
    expect(await new Webhook({ secrets: [secret] }).verify(body, theirs)).toEqual(event);
    expect(await new Webhook({ secrets: [secret], subtle: globalThis.crypto.subtle }).verify(body, theirs)).toEqual(event);
  });

  it("stripe's test header, as stellar-signature", async () => {
    const secret = newSecret();
    const header = stripe.webhooks.generateTestHeaderString({ payload: body, secret });
    expect(await new Webhook({ secrets: [secret] }).verify(body, { "stellar-signature": header })).toEqual(event);
  });
});
