import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import selfsigned from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { paymentEvent, signed } from "./support/fixtures.js";
import { send, startTestReceiver, type TestReceiver } from "./support/receiver.js";

let dir: string;
let cert: string;
let r: TestReceiver;

beforeAll(async () => {
  const pems = await selfsigned.generate([{ name: "commonName", value: "127.0.0.1" }], {
    keySize: 2048,
    extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
  });
  cert = pems.cert;
  dir = await mkdtemp(path.join(os.tmpdir(), "receiver-tls-"));
  await writeFile(path.join(dir, "cert.pem"), pems.cert);
  await writeFile(path.join(dir, "key.pem"), pems.private);
  r = await startTestReceiver({ SSL_CERT_PATH: path.join(dir, "cert.pem"), SSL_KEY_PATH: path.join(dir, "key.pem") });
});
afterAll(async () => {
  await r?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A raw TLS handshake with the receiver: the negotiated protocol and cipher, or the error. */
function handshake(options: tls.ConnectionOptions): Promise<{ protocol: string | null; cipher: string } | { error: string }> {
  const { port } = new URL(r.url);
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port: Number(port), ca: cert, ...options }, () => {
      resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().name });
      socket.end();
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

describe("HTTPS (SSL_CERT_PATH, SSL_KEY_PATH)", () => {
  it("serves the webhook route with the configured certificate", async () => {
    expect(r.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/webhooks\/lumenpay$/);
    const event = paymentEvent();
    // Verified against the test's own certificate: the receiver really presents it.
    const answer = await send(r.url, signed(event), { ca: cert });
    expect(answer.status).toBe(200);
    expect(r.orders.get(event.data.object.id)?.state).toBe("paid");
  });

  it("negotiates TLS 1.3, or TLS 1.2 with a forward-secret AEAD suite", async () => {
    expect(await handshake({})).toMatchObject({ protocol: "TLSv1.3" });
    expect(await handshake({ maxVersion: "TLSv1.2" })).toEqual({ protocol: "TLSv1.2", cipher: expect.stringMatching(/^ECDHE-(RSA|ECDSA)-(AES\d+-GCM|CHACHA20)/) });
  });

  it("refuses a TLS 1.1 client in the handshake", async () => {
    // The client is allowed TLS 1.1 and legacy ciphers, so the refusal can only be the server's alert.
    const old = await handshake({ minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" });
    expect(old).toEqual({ error: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" });
  });

  it("refuses a TLS 1.2 client offering only a CBC suite without forward secrecy", async () => {
    const weak = await handshake({ maxVersion: "TLSv1.2", ciphers: "AES128-SHA" });
    // The server's handshake_failure alert: OpenSSL 3.0 (Node 20) names it SSLV3_…, 3.5 (Node 22+) SSL/TLS_….
    expect(weak).toEqual({ error: expect.stringMatching(/^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/) });
  });
});
