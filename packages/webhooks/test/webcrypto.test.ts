import { randomBytes, type webcrypto } from "node:crypto";
import { Keypair } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { NoMatchingSignatureError, Webhook, signDelivery } from "../src/index.js";

const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;
const now = () => Math.floor(Date.now() / 1000);
const event = { id: "evt_4", type: "payment.succeeded", created_at: "2025-01-01T00:00:00Z", api_version: "2025-01-01", data: { object: {} } };
const body = JSON.stringify(event);

// The real globalThis.crypto.subtle, recording which algorithms sign and verify run, so the test
// proves verification went through Web Crypto and not the node:crypto fast path.
function recordingSubtle(calls: string[]): webcrypto.SubtleCrypto {
  const subtle = globalThis.crypto.subtle;
  return new Proxy(subtle, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (property === "sign" || property === "verify") {
          const algorithm = args[0] as string | { name: string };
          calls.push(`${property}:${typeof algorithm === "string" ? algorithm : algorithm.name}`);
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe("Web Crypto path", () => {
  it("verifies HMAC signatures of both schemes with SubtleCrypto", async () => {
    const calls: string[] = [];
    const secret = newSecret();
    const wh = new Webhook({ secrets: [secret], subtle: recordingSubtle(calls) });
    const headers = signDelivery({ id: "evt_4", timestamp: now(), body, secrets: [secret] });
    expect(await wh.verify(body, { "webhook-id": headers["webhook-id"], "webhook-timestamp": headers["webhook-timestamp"], "webhook-signature": headers["webhook-signature"] })).toEqual(event);
    expect(await wh.verify(body, { "stellar-signature": headers["stellar-signature"] })).toEqual(event);
    expect(calls).toEqual(["sign:HMAC", "sign:HMAC"]);

    const error = await wh.verify(`${body} `, headers).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoMatchingSignatureError);
  });

  it("verifies Ed25519 signatures with SubtleCrypto and rejects another key", async () => {
    const calls: string[] = [];
    const keypair = Keypair.random();
    const headers = signDelivery({ id: "evt_4", timestamp: now(), body, secrets: [newSecret()], signingSeed: keypair.secret() });
    const wh = new Webhook({ publicKeys: [keypair.publicKey()], subtle: recordingSubtle(calls) });
    expect(await wh.verify(body, headers)).toEqual(event);
    expect(calls).toEqual(["verify:Ed25519"]);

    const other = new Webhook({ publicKeys: [Keypair.random().publicKey()], subtle: globalThis.crypto.subtle });
    expect(await other.verify(body, headers).catch((e: unknown) => e)).toBeInstanceOf(NoMatchingSignatureError);
  });
});
