import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  InvalidPayloadError,
  MalformedHeaderError,
  MissingHeaderError,
  NoMatchingSignatureError,
  PayloadNotRawError,
  TimestampTooNewError,
  TimestampTooOldError,
  Webhook,
  WebhookVerificationError,
  generateTestHeaders,
  signDelivery,
  type DeliveryHeaders,
} from "../src/index.js";

const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;
const now = () => Math.floor(Date.now() / 1000);
const event = { id: "evt_1", type: "payment.succeeded", created_at: "2025-01-01T00:00:00Z", api_version: "2025-01-01", data: { object: { id: "pay_1" } } };
const body = JSON.stringify(event);

function standardOnly(h: DeliveryHeaders) {
  return { "webhook-id": h["webhook-id"], "webhook-timestamp": h["webhook-timestamp"], "webhook-signature": h["webhook-signature"] };
}
function stellarOnly(h: DeliveryHeaders) {
  return { "stellar-signature": h["stellar-signature"], "stellar-timestamp": h["stellar-timestamp"], "stellar-webhook-id": h["stellar-webhook-id"] };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected verify to reject");
}

describe("Standard Webhooks known-answer vector", () => {
  it("signs the reference message to the reference signature", () => {
    const headers = signDelivery({
      id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
      timestamp: 1614265330,
      body: '{"test": 2432232314}',
      secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    });
    expect(headers["webhook-signature"]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    expect(headers["webhook-id"]).toBe("msg_p5jXN8AQM9LWM0D4loKWxJek");
    expect(headers["webhook-timestamp"]).toBe("1614265330");
  });

  it("signs a Uint8Array body identically to the same string", () => {
    const input = { id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] };
    const bytes = signDelivery({ ...input, body: new TextEncoder().encode('{"test": 2432232314}') });
    expect(bytes["webhook-signature"]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("rejects the reference headers today as too old, since they are signed for 2021", async () => {
    const wh = new Webhook({ secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] });
    const error = await rejection(
      wh.verify('{"test": 2432232314}', {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      }),
    );
    expect(error).toBeInstanceOf(TimestampTooOldError);
  });
});

describe("verify", () => {
  it("returns the event for either scheme, and for a fetch Headers object", async () => {
    const secret = newSecret();
    const headers = signDelivery({ id: "evt_1", timestamp: now(), body, secrets: [secret] });
    const wh = new Webhook({ secrets: [secret] });
    expect(await wh.verify(body, standardOnly(headers))).toEqual(event);
    expect(await wh.verify(body, stellarOnly(headers))).toEqual(event);
    expect(await wh.verify(new TextEncoder().encode(body), new Headers(headers))).toEqual(event);
  });

  it("matches header names case-insensitively in a plain object", async () => {
    const secret = newSecret();
    const h = signDelivery({ id: "evt_1", timestamp: now(), body, secrets: [secret] });
    const mixed = { "Webhook-Id": h["webhook-id"], "WEBHOOK-TIMESTAMP": h["webhook-timestamp"], "Webhook-Signature": h["webhook-signature"] };
    expect(await new Webhook({ secrets: [secret] }).verify(body, mixed)).toEqual(event);
  });

  it("prefers Standard Webhooks headers: a bad webhook-signature is not rescued by a good stellar-signature", async () => {
    const secret = newSecret();
    const good = signDelivery({ id: "evt_1", timestamp: now(), body, secrets: [secret] });
    const forged = signDelivery({ id: "evt_1", timestamp: now(), body, secrets: [newSecret()] });
    const headers = { ...good, "webhook-signature": forged["webhook-signature"] };
    const error = await rejection(new Webhook({ secrets: [secret] }).verify(body, headers));
    expect(error).toBeInstanceOf(NoMatchingSignatureError);
  });

  it("rotation: two secrets give two v1 entries, and a verifier holding either one accepts", async () => {
    const [oldSecret, newSecretValue] = [newSecret(), newSecret()];
    const headers = signDelivery({ id: "evt_1", timestamp: now(), body, secrets: [newSecretValue, oldSecret] });
    const entries = headers["webhook-signature"].split(" ");
    expect(entries).toHaveLength(2);
    expect(entries.every((e) => e.startsWith("v1,"))).toBe(true);
    expect(entries[0]).not.toBe(entries[1]);
    expect(headers["stellar-signature"].match(/v1=/g)).toHaveLength(2);
    for (const secret of [oldSecret, newSecretValue]) {
      const wh = new Webhook({ secrets: [secret] });
      expect(await wh.verify(body, standardOnly(headers))).toEqual(event);
      expect(await wh.verify(body, stellarOnly(headers))).toEqual(event);
    }
  });

  it("accepts a delivery signed with only the old secret when the verifier holds both", async () => {
    const [oldSecret, newSecretValue] = [newSecret(), newSecret()];
    const headers = signDelivery({ id: "evt_1", timestamp: now(), body, secrets: [oldSecret] });
    expect(await new Webhook({ secrets: [newSecretValue, oldSecret] }).verify(body, headers)).toEqual(event);
  });

  it("generateTestHeaders produces headers the verifier accepts", async () => {
    const secret = newSecret();
    const headers = generateTestHeaders({ payload: body, secret });
    expect(headers["webhook-id"]).toMatch(/^evt_test_[0-9a-f]{32}$/);
    expect(await new Webhook({ secrets: [secret] }).verify(body, headers)).toEqual(event);
    const fixed = generateTestHeaders({ payload: body, secret, timestamp: 1700000000, id: "evt_fixed" });
    expect(fixed["webhook-timestamp"]).toBe("1700000000");
    expect(fixed["stellar-signature"].startsWith("t=1700000000,v1=")).toBe(true);
    expect(fixed["stellar-webhook-id"]).toBe("evt_fixed");
  });
});

describe("rejections", () => {
  const secret = newSecret();
  const wh = new Webhook({ secrets: [secret] });
  const signed = (timestamp = now()) => signDelivery({ id: "evt_1", timestamp, body, secrets: [secret] });

  it.each([
    ["standard", standardOnly],
    ["stellar", stellarOnly],
  ] as const)("%s: a tampered body or a wrong secret finds no matching signature", async (_name, pick) => {
    const headers = pick(signed());
    expect(await rejection(wh.verify(body.replace("pay_1", "pay_2"), headers))).toBeInstanceOf(NoMatchingSignatureError);
    const other = new Webhook({ secrets: [newSecret()] });
    expect(await rejection(other.verify(body, headers))).toBeInstanceOf(NoMatchingSignatureError);
  });

  it.each([
    ["standard", standardOnly],
    ["stellar", stellarOnly],
  ] as const)("%s: timestamps outside the tolerance are rejected in both directions", async (_name, pick) => {
    expect(await rejection(wh.verify(body, pick(signed(now() - 3600))))).toBeInstanceOf(TimestampTooOldError);
    expect(await rejection(wh.verify(body, pick(signed(now() + 3600))))).toBeInstanceOf(TimestampTooNewError);
    const lenient = new Webhook({ secrets: [secret], toleranceSeconds: 7200 });
    expect(await lenient.verify(body, pick(signed(now() - 3600)))).toEqual(event);
  });

  it("a replayed standard header with a moved timestamp no longer matches", async () => {
    const headers = standardOnly(signed(now() - 10));
    const moved = { ...headers, "webhook-timestamp": String(now()) };
    expect(await rejection(wh.verify(body, moved))).toBeInstanceOf(NoMatchingSignatureError);
  });

  it("missing headers name the header", async () => {
    const headers = standardOnly(signed());
    const none = await rejection(wh.verify(body, {}));
    expect(none).toBeInstanceOf(MissingHeaderError);
    const { "webhook-signature": _sig, ...noSignature } = headers;
    const missing = await rejection(wh.verify(body, noSignature));
    expect(missing).toBeInstanceOf(MissingHeaderError);
    expect((missing as MissingHeaderError).header).toBe("webhook-signature");
    const { "webhook-timestamp": _ts, ...noTimestamp } = headers;
    expect(((await rejection(wh.verify(body, noTimestamp))) as MissingHeaderError).header).toBe("webhook-timestamp");
  });

  it.each([
    ["non-numeric timestamp", { "webhook-timestamp": "yesterday" }, "webhook-timestamp"],
    ["signature without a version", { "webhook-signature": "garbage" }, "webhook-signature"],
    ["header sent twice", { "webhook-id": ["evt_1", "evt_2"] }, "webhook-id"],
  ])("malformed standard header: %s", async (_name, override, header) => {
    const error = await rejection(wh.verify(body, { ...standardOnly(signed()), ...override }));
    expect(error).toBeInstanceOf(MalformedHeaderError);
    expect((error as MalformedHeaderError).header).toBe(header);
  });

  it.each([
    ["no t=", (v: string) => v.replace(/^t=\d+,/, "")],
    ["entry without =", (v: string) => `${v},junk`],
    ["non-numeric t", (v: string) => v.replace(/^t=\d+/, "t=soon")],
  ])("malformed stellar-signature: %s", async (_name, mangle) => {
    const headers = stellarOnly(signed());
    const error = await rejection(wh.verify(body, { "stellar-signature": mangle(headers["stellar-signature"]) }));
    expect(error).toBeInstanceOf(MalformedHeaderError);
  });

  it("a parsed body is rejected with instructions to pass the raw body", async () => {
    const error = await rejection(wh.verify(event as unknown as string, signed()));
    expect(error).toBeInstanceOf(PayloadNotRawError);
    expect((error as Error).message).toContain("express.raw");
    expect((error as Error).message).toContain("request.text()");
  });

  it("every rejection is a WebhookVerificationError", async () => {
    const errors = await Promise.all([
      rejection(wh.verify(body, {})),
      rejection(wh.verify(body, { ...standardOnly(signed()), "webhook-timestamp": "x" })),
      rejection(wh.verify("tampered", signed())),
      rejection(wh.verify(event as unknown as string, signed())),
    ]);
    for (const error of errors) expect(error).toBeInstanceOf(WebhookVerificationError);
  });

  it("a signed body that is not a JSON object is still rejected", async () => {
    const headers = signDelivery({ id: "evt_1", timestamp: now(), body: "[1,2]", secrets: [secret] });
    expect(await rejection(wh.verify("[1,2]", headers))).toBeInstanceOf(WebhookVerificationError);
  });
});

describe("misuse throws TypeError", () => {
  it.each([
    ["no secrets and no keys", () => new Webhook({})],
    ["an empty secret", () => new Webhook({ secrets: ["whsec_"] })],
    ["a secret without the whsec_ prefix", () => new Webhook({ secrets: ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] })],
    ["a secret that is not base64", () => new Webhook({ secrets: ["whsec_not base64!"] })],
    ["a negative tolerance", () => new Webhook({ secrets: [newSecret()], toleranceSeconds: -1 })],
    ["an invalid public key", () => new Webhook({ publicKeys: ["GNOTAKEY"] })],
    ["signing with no secrets", () => signDelivery({ id: "evt_1", timestamp: 1, body, secrets: [] })],
    ["signing with an empty secret", () => signDelivery({ id: "evt_1", timestamp: 1, body, secrets: ["whsec_"] })],
    ["an id with a newline", () => signDelivery({ id: "evt_1\r\nx: y", timestamp: 1, body, secrets: [newSecret()] })],
    ["a fractional timestamp", () => signDelivery({ id: "evt_1", timestamp: 1.5, body, secrets: [newSecret()] })],
  ])("%s", (_name, misuse) => {
    expect(misuse).toThrow(TypeError);
  });
});

describe("the one-shot HMAC", () => {
  // Secrets of any length (longer than SHA-256's 64-byte block takes another path), bodies with
  // multi-byte characters, as bytes, and larger than the reused buffer or its 1 MB limit.
  const reference = (key: Uint8Array, message: string | Uint8Array, encoding: "base64" | "hex") =>
    createHmac("sha256", key).update(message).digest(encoding);
  const bodies: Array<string | Uint8Array> = [
    "",
    "é€😀".repeat(700),
    new Uint8Array(randomBytes(5000)),
    "x".repeat(9000),
    "ü".repeat(1_100_000),
    body,
  ];

  it.each([1, 24, 32, 64, 65, 100])("equals node:crypto's createHmac for a %i-byte secret", async (length) => {
    const raw = randomBytes(length);
    const secret = `whsec_${raw.toString("base64")}`;
    for (const payload of bodies) {
      const timestamp = now();
      const headers = signDelivery({ id: "msg_1", timestamp, body: payload, secrets: [secret] });
      const asBytes = typeof payload === "string" ? Buffer.from(payload) : payload;
      const standard = reference(raw, Buffer.concat([Buffer.from(`msg_1.${timestamp}.`), asBytes]), "base64");
      const stellar = reference(Buffer.from(secret), Buffer.concat([Buffer.from(`${timestamp}.`), asBytes]), "hex");
      expect(headers["webhook-signature"]).toBe(`v1,${standard}`);
      expect(headers["stellar-signature"]).toBe(`t=${timestamp},v1=${stellar}`);
      // Verification takes the same path: a one-character change to either signature is refused.
      const verifier = new Webhook({ secrets: [secret] });
      for (const scheme of [standardOnly(headers), stellarOnly(headers)]) {
        // Accepted signatures: then only the event body decides (most of these bodies are not events).
        if (payload === body) expect((await verifier.verify(payload, scheme)).id).toBe("evt_1");
        else expect(await rejection(verifier.verify(payload, scheme))).toBeInstanceOf(InvalidPayloadError);
      }
      const flipFirst = (text: string) => (text[0] === "a" ? "b" : "a") + text.slice(1);
      const tampered = { ...standardOnly(headers), "webhook-signature": `v1,${flipFirst(standard)}` };
      expect(await rejection(verifier.verify(payload, tampered))).toBeInstanceOf(NoMatchingSignatureError);
      const tamperedStellar = { ...stellarOnly(headers), "stellar-signature": `t=${timestamp},v1=${flipFirst(stellar)}` };
      expect(await rejection(verifier.verify(payload, tamperedStellar))).toBeInstanceOf(NoMatchingSignatureError);
    }
  });
});
