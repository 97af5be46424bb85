import { randomBytes } from "node:crypto";
import { Keypair, StrKey } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import {
  NoMatchingSignatureError,
  Webhook,
  decodeStellarPublicKey,
  publicKeyFromSeed,
  signDelivery,
} from "../src/index.js";

const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;
const now = () => Math.floor(Date.now() / 1000);
const event = { id: "evt_3", type: "payment.succeeded", created_at: "2025-01-01T00:00:00Z", api_version: "2025-01-01", data: { object: {} } };
const body = JSON.stringify(event);

function v1a(signature: string): Buffer {
  const entry = signature.split(" ").find((e) => e.startsWith("v1a,"));
  if (!entry) throw new Error(`no v1a entry in ${signature}`);
  return Buffer.from(entry.slice(4), "base64");
}

describe("Ed25519 (v1a)", () => {
  it("signs exactly the bytes Keypair.sign produces, from an S… seed or the raw seed", () => {
    const keypair = Keypair.random();
    const timestamp = now();
    const signed = Buffer.from(`evt_3.${timestamp}.${body}`);
    for (const signingSeed of [keypair.secret(), new Uint8Array(keypair.rawSecretKey())]) {
      const headers = signDelivery({ id: "evt_3", timestamp, body, secrets: [newSecret()], signingSeed });
      expect(v1a(headers["webhook-signature"]).equals(keypair.sign(signed))).toBe(true);
    }
  });

  it("verifies with the platform public key alone, and rejects under another key", async () => {
    const keypair = Keypair.random();
    const headers = signDelivery({ id: "evt_3", timestamp: now(), body, secrets: [newSecret()], signingSeed: keypair.secret() });
    expect(await new Webhook({ publicKeys: [keypair.publicKey()] }).verify(body, headers)).toEqual(event);
    expect(await new Webhook({ publicKeys: [Keypair.random().publicKey(), keypair.publicKey()] }).verify(body, headers)).toEqual(event);

    const error = await new Webhook({ publicKeys: [Keypair.random().publicKey()] }).verify(body, headers).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoMatchingSignatureError);
    const tampered = await new Webhook({ publicKeys: [keypair.publicKey()] }).verify(`${body} `, headers).catch((e: unknown) => e);
    expect(tampered).toBeInstanceOf(NoMatchingSignatureError);
  });

  it("rejects forged v1a entries of the wrong length or with zeroed bytes", async () => {
    const keypair = Keypair.random();
    const headers = signDelivery({ id: "evt_3", timestamp: now(), body, secrets: [newSecret()] });
    const wh = new Webhook({ publicKeys: [keypair.publicKey()] });
    for (const forged of ["v1a,AAAA", `v1a,${Buffer.alloc(64).toString("base64")}`, "v1a,not-base64!"]) {
      const error = await wh.verify(body, { ...headers, "webhook-signature": forged }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NoMatchingSignatureError);
    }
  });

  it("a key-only verifier cannot accept a stellar-signature, which carries HMACs only", async () => {
    const keypair = Keypair.random();
    const headers = signDelivery({ id: "evt_3", timestamp: now(), body, secrets: [newSecret()], signingSeed: keypair.secret() });
    const error = await new Webhook({ publicKeys: [keypair.publicKey()] })
      .verify(body, { "stellar-signature": headers["stellar-signature"] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoMatchingSignatureError);
  });
});

describe("StrKey", () => {
  it("publicKeyFromSeed and decodeStellarPublicKey agree with the Stellar SDK", () => {
    const keypair = Keypair.random();
    expect(publicKeyFromSeed(keypair.secret())).toBe(keypair.publicKey());
    expect(publicKeyFromSeed(new Uint8Array(keypair.rawSecretKey()))).toBe(keypair.publicKey());
    expect(Buffer.from(decodeStellarPublicKey(keypair.publicKey())).equals(keypair.rawPublicKey())).toBe(true);
    expect(Buffer.from(decodeStellarPublicKey(keypair.publicKey())).equals(StrKey.decodeEd25519PublicKey(keypair.publicKey()))).toBe(true);
  });

  it("rejects a bad checksum, the wrong version byte, a bad length and a bad character with TypeError", () => {
    const address = Keypair.random().publicKey();
    const flipped = address.slice(0, 10) + (address[10] === "A" ? "B" : "A") + address.slice(11);
    expect(() => decodeStellarPublicKey(flipped)).toThrow(TypeError);
    expect(() => decodeStellarPublicKey(Keypair.random().secret())).toThrow(TypeError);
    expect(() => decodeStellarPublicKey(address.slice(1))).toThrow(TypeError);
    expect(() => decodeStellarPublicKey(`${address.slice(0, 55)}1`)).toThrow(TypeError);
    expect(() => publicKeyFromSeed(address)).toThrow(TypeError);
    expect(() => publicKeyFromSeed(new Uint8Array(31))).toThrow(TypeError);
  });
});
