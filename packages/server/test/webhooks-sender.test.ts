import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createSecureContext } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { createWebhookSender, type LookupFn, type WebhookSender, type WebhookSenderOptions } from "../src/webhooks/sender.js";
import { parseCidrList, type CidrList } from "../src/webhooks/ssrf.js";

// A self-signed certificate for hooks.lumenpay.test (valid until 2126), made with
// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 …`.
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVbQr6uZTXv+wctaT
CyGnVjLbOIpMsq68Y0S8DCfMaDChRANCAAQt2Y7rwXUUL8yWwunzgBF37hPHbpgZ
M7KiuQ0ATUhNKYV5yMytAF5jTn/lBJ2lyWBT8Ipea7LIAqbcXisXOZNS
-----END PRIVATE KEY-----`;
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUH4r+xXwntKjwnfn6kaIxpp5cthMwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTaG9va3MubHVtZW5wYXkudGVzdDAgFw0yNjExMjIxNzEyNDla
GA8yMTI2MTAyOTE3MTI0OVowHjEcMBoGA1UEAwwTaG9va3MubHVtZW5wYXkudGVz
dDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABC3ZjuvBdRQvzJbC6fOAEXfuE8du
mBkzsqK5DQBNSE0phXnIzK0AXmNOf+UEnaXJYFPwil5rssgCptxeKxc5k1KjczBx
MB0GA1UdDgQWBBR0L2PLvQmwDJkhhTOgCW52dP5MyTAfBgNVHSMEGDAWgBR0L2PL
vQmwDJkhhTOgCW52dP5MyTAPBgNVHRMBAf8EBTADAQH/MB4GA1UdEQQXMBWCE2hv
b2tzLmx1bWVucGF5LnRlc3QwCgYIKoZIzj0EAwIDSAAwRQIhAPSsU6pYwBwfP4d7
gA+TfZFG0jOnm+y2Ew9uZ29NQFU8AiB3yvrfuuDetcdl8ZKd4B0I1nctba3eL9+P
MzdHpK9wSg==
-----END CERTIFICATE-----`;

/** A name the OS cannot resolve (.test is reserved), so reaching a server proves the pinned address was used. */
const NAME = "hooks.lumenpay.test";

function cidrs(text: string): CidrList {
  const parsed = parseCidrList(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  port: number;
  url: string;
  hits: Hit[];
  connections: number;
}

const servers: Server[] = [];
const senders: WebhookSender[] = [];

afterEach(async () => {
  await Promise.all(senders.splice(0).map((s) => s.close()));
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

async function listen(server: Server): Promise<number> {
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** A real receiver on 127.0.0.1 that records each request, then lets `respond` answer (or not). */
async function receiver(respond: (res: ServerResponse, req: IncomingMessage) => void): Promise<Receiver> {
  const r: Receiver = { port: 0, url: "", hits: [], connections: 0 };
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    r.hits.push({ path: req.url ?? "", headers: req.headers, body });
    respond(res, req);
  });
  server.on("connection", () => r.connections++);
  r.port = await listen(server);
  r.url = `http://127.0.0.1:${r.port}`;
  return r;
}

function sender(options: Partial<WebhookSenderOptions> = {}): WebhookSender {
  const s = createWebhookSender({ timeoutMs: 5_000, allowedCidrs: cidrs("127.0.0.0/8"), userAgent: "Lumenpay-Test/1", ...options });
  senders.push(s);
  return s;
}

const post = (url: string, signal?: AbortSignal) => ({
  url,
  headers: { "Webhook-Id": "evt_1", "webhook-timestamp": "1700000000" },
  body: '{"type":"payment.succeeded"}',
  ...(signal ? { signal } : {}),
});

describe("webhook sender against real receivers", () => {
  it("POSTs JSON with our headers and reports a 2xx as ok", async () => {
    const r = await receiver((res) => res.writeHead(202).end("thanks"));
    const result = await sender().send(post(`${r.url}/hooks?shop=1`));
    expect(result).toMatchObject({ ok: true, status: 202, bodySnippet: "thanks" });
    expect(result.errorClass).toBeUndefined();
    expect(r.hits).toHaveLength(1);
    expect(r.hits[0]).toMatchObject({
      path: "/hooks?shop=1",
      body: '{"type":"payment.succeeded"}',
      headers: {
        "user-agent": "Lumenpay-Test/1",
        "content-type": "application/json",
        "webhook-id": "evt_1",
        "webhook-timestamp": "1700000000",
        host: `127.0.0.1:${r.port}`,
      },
    });
  });

  it("reports a 5xx as http_status with the body and Retry-After", async () => {
    const r = await receiver((res) => res.writeHead(503, { "retry-after": "120" }).end("busy"));
    const result = await sender().send(post(r.url));
    expect(result).toMatchObject({ ok: false, status: 503, errorClass: "http_status", bodySnippet: "busy", retryAfter: "120" });
  });

  it("never follows a redirect", async () => {
    const target = await receiver((res) => res.writeHead(200).end());
    const r = await receiver((res) => res.writeHead(302, { location: `${target.url}/elsewhere` }).end());
    const result = await sender().send(post(r.url));
    expect(result).toMatchObject({ ok: false, status: 302, errorClass: "redirect" });
    expect(result.error).toContain(`${target.url}/elsewhere`);
    expect(r.hits).toHaveLength(1);
    expect(target.hits).toHaveLength(0);
  });

  it("gives up on a receiver that never answers", async () => {
    const r = await receiver(() => undefined);
    const result = await sender({ timeoutMs: 300 }).send(post(r.url));
    expect(result).toMatchObject({ ok: false, errorClass: "timeout" });
    expect(result.status).toBeUndefined();
    expect(r.hits).toHaveLength(1);
  });

  it("counts the body in the timeout: headers then a stalled body is a timeout", async () => {
    const r = await receiver((res) => {
      res.writeHead(200);
      res.write("partial");
    });
    const result = await sender({ timeoutMs: 300 }).send(post(r.url));
    expect(result).toMatchObject({ ok: false, status: 200, errorClass: "timeout" });
  });

  it("keeps 4 KB of an endless body and stops reading it", async () => {
    let socketClosed: Promise<unknown> = Promise.resolve();
    const r = await receiver((res) => {
      socketClosed = once(res, "close");
      res.writeHead(200);
      const chunk = Buffer.alloc(16 * 1024, "a");
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on("drain", pump);
      pump();
    });
    const result = await sender().send(post(r.url));
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(result.bodySnippet).toBe("a".repeat(4096));
    await socketClosed;
  });

  it("cuts the snippet at a character boundary", async () => {
    // "€" is 3 bytes, and 4096 is not a multiple of 3.
    const r = await receiver((res) => res.writeHead(200).end("€".repeat(2000)));
    const result = await sender().send(post(r.url));
    expect(result.bodySnippet).toBe("€".repeat(1365));
  });

  it("reuses one keep-alive connection for consecutive sends", async () => {
    const r = await receiver((res) => res.writeHead(200).end("ok"));
    const s = sender();
    for (let i = 0; i < 3; i++) {
      expect((await s.send(post(r.url))).ok).toBe(true);
      // undici returns a socket to the pool one event-loop turn after a response (in case the
      // server closes it); the worker's database round trip gives it that turn in production.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(r.hits).toHaveLength(3);
    expect(r.connections).toBe(1);
  });

  it("reports a refused connection", async () => {
    const r = await receiver((res) => res.end());
    const closed = servers.pop()!;
    closed.close();
    await once(closed, "close");
    const result = await sender().send(post(r.url));
    expect(result).toMatchObject({ ok: false, errorClass: "connection" });
  });

  it("refuses URLs it cannot send to, and sends after close", async () => {
    const s = sender();
    expect(await s.send(post("not a url"))).toMatchObject({ ok: false, errorClass: "invalid_url" });
    expect(await s.send(post("file:///etc/passwd"))).toMatchObject({ ok: false, errorClass: "invalid_url" });
    await s.close();
    expect(await s.send(post("http://127.0.0.1:1/"))).toMatchObject({ ok: false, errorClass: "aborted" });
  });

  it("sends nothing under a signal already aborted", async () => {
    let requests = 0;
    const r = await receiver((res) => {
      requests++;
      res.writeHead(200).end();
    });
    const s = sender();
    expect(await s.send(post(`${r.url}/hook`, AbortSignal.abort()))).toMatchObject({ ok: false, errorClass: "aborted" });
    // The same receiver does answer a request that may go.
    expect(await s.send(post(`${r.url}/hook`))).toMatchObject({ ok: true });
    expect(requests).toBe(1);
  });
});

describe("webhook sender address policy", () => {
  it("refuses 127.0.0.1 unless it is allowed", async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    const result = await sender({ allowedCidrs: [] }).send(post(r.url));
    expect(result).toMatchObject({ ok: false, errorClass: "unreachable", error: "address not allowed or not resolvable" });
    expect(result.detail).toContain("loopback");
    expect(r.hits).toHaveLength(0);
  });

  it("refuses a name that resolves to a private address", async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    const lookup: LookupFn = async () => [{ address: "127.0.0.1", family: 4 }];
    const result = await sender({ allowedCidrs: [], lookup }).send(post(`http://${NAME}:${r.port}/`));
    expect(result).toMatchObject({ ok: false, errorClass: "unreachable" });
    expect(r.hits).toHaveLength(0);
  });

  it("refuses a name whose answer mixes allowed and forbidden addresses", async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    const lookup: LookupFn = async () => [
      { address: "127.0.0.1", family: 4 },
      { address: "::ffff:10.0.0.1", family: 6 },
    ];
    const result = await sender({ allowedCidrs: cidrs("127.0.0.1/32"), lookup }).send(post(`http://${NAME}:${r.port}/`));
    expect(result).toMatchObject({ ok: false, errorClass: "unreachable" });
    expect(result.error).not.toContain("10.0.0.1");
    expect(result.detail).toContain("10.0.0.1");
    expect(r.hits).toHaveLength(0);
  });

  it("connects to the address it checked, and checks again on every new connection", async () => {
    // Connection: close forces a fresh connection, and so a fresh lookup, for the second send.
    const r = await receiver((res) => res.writeHead(200, { connection: "close" }).end("ok"));
    const answers = ["127.0.0.1", "10.0.0.1"];
    const asked: string[] = [];
    const lookup: LookupFn = async (hostname) => {
      asked.push(hostname);
      return [{ address: answers[asked.length - 1] ?? "10.0.0.1", family: 4 }];
    };
    const s = sender({ allowedCidrs: cidrs("127.0.0.1/32"), lookup });

    const first = await s.send(post(`http://${NAME}:${r.port}/hook`));
    expect(first).toMatchObject({ ok: true, status: 200 });
    expect(r.hits[0]?.headers.host).toBe(`${NAME}:${r.port}`);

    const rebound = await s.send(post(`http://${NAME}:${r.port}/hook`));
    expect(rebound).toMatchObject({ ok: false, errorClass: "unreachable" });
    expect(asked).toEqual([NAME, NAME]);
    expect(r.hits).toHaveLength(1);
  });

  it("reports a failed lookup as unreachable, keeping the resolver's answer for the log", async () => {
    const lookup: LookupFn = async () => {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${NAME}`), { code: "ENOTFOUND" });
    };
    const result = await sender({ lookup }).send(post(`https://${NAME}/`));
    expect(result).toMatchObject({ ok: false, errorClass: "unreachable", error: "address not allowed or not resolvable" });
    expect(result.detail).toContain("ENOTFOUND");
  });

  it("tells the merchant nothing about whether an internal name resolves", async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    const lookups: Record<string, LookupFn> = {
      private: async () => [{ address: "10.1.2.3", family: 4 }],
      missing: async () => {
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${NAME}`), { code: "ENOTFOUND" });
      },
      empty: async () => [],
    };
    const results = await Promise.all(
      Object.values(lookups).map((lookup) => sender({ allowedCidrs: [], lookup }).send(post(`http://${NAME}:${r.port}/`))),
    );
    // Everything the attempt log and the API show is the same; only the server-side detail differs.
    const shown = results.map(({ ok, status, retryAfter, bodySnippet, errorClass, error }) => ({ ok, status, retryAfter, bodySnippet, errorClass, error }));
    expect(new Set(shown.map((s) => JSON.stringify(s))).size).toBe(1);
    expect(shown[0]).toMatchObject({ ok: false, errorClass: "unreachable", error: "address not allowed or not resolvable" });
    expect(results.map((result) => result.detail)).toEqual([
      expect.stringContaining("10.1.2.3 is private"),
      expect.stringContaining("ENOTFOUND"),
      expect.stringContaining("has no addresses"),
    ]);
    expect(r.hits).toHaveLength(0);
  });

  it("keeps the name for TLS: SNI carries it and the certificate is verified", async () => {
    const servernames: Array<string | undefined> = [];
    let requests = 0;
    const server = createHttpsServer(
      {
        key: TLS_KEY,
        cert: TLS_CERT,
        SNICallback: (servername, cb) => {
          servernames.push(servername);
          cb(null, createSecureContext({ key: TLS_KEY, cert: TLS_CERT }));
        },
      },
      (_req, res) => {
        requests++;
        res.end();
      },
    );
    const port = await listen(server);
    const lookup: LookupFn = async () => [{ address: "127.0.0.1", family: 4 }];
    const result = await sender({ lookup }).send(post(`https://${NAME}:${port}/`));
    // The certificate is self-signed, so verification must fail: proof that it was checked.
    expect(result).toMatchObject({ ok: false, errorClass: "tls" });
    expect(servernames).toEqual([NAME]);
    expect(requests).toBe(0);
  });
});

describe("webhook sender connection pools", () => {
  // The per-endpoint limit is the delivery worker's (webhooks-delivery.test.ts); the sender must not
  // add a second, hidden one through its pools: endpoints sharing a hosted receiver's origin must not
  // wait behind each other's stuck requests.
  it("keeps sending to an origin while many requests to it hang, all cancelled by their one signal", async () => {
    // A listener per request on the caller's signal would pass Node's limit of 10 and warn.
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    let hung = 0;
    let allHung: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => (allHung = resolve));
    const r = await receiver((res, req) => {
      if (req.url === "/ok") return res.writeHead(200).end("ok");
      if (++hung === 13) allHung();
    });
    const s = sender();
    const stuck = new AbortController();
    const slow = Array.from({ length: 13 }, () => s.send(post(`${r.url}/hang`, stuck.signal)));
    await arrived;

    const fast = await Promise.all([1, 2, 3].map(() => s.send(post(`${r.url}/ok`))));
    expect(fast.map((f) => f.ok)).toEqual([true, true, true]);

    stuck.abort();
    const results = await Promise.all(slow);
    expect(results.map((res) => res.errorClass)).toEqual(Array(13).fill("aborted"));
    expect(hung).toBe(13);
    process.off("warning", onWarning);
    expect(warnings).toEqual([]);
  });
});
