import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { Webhook } from "@lumenpay/webhooks";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { systemClock } from "../src/clock.js";
import { loadConfig, type Config } from "../src/config.js";
import { transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import type { EventType } from "../src/events/types.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { childEnv, LUMENPAY_BIN, runCli } from "./support/process.js";
import { startReceiver } from "./support/receiver.js";

/**
 * `lumenpay listen` as a real child process, against a real server on 127.0.0.1 that the test closes
 * and starts again on the same port, forwarding to a real receiver that verifies every request with
 * the secret the command printed.
 */

let db: TestDatabase;
let config: Config;
beforeAll(async () => {
  db = await createTestDatabase();
  config = loadConfig({ LOG_LEVEL: "silent" });
});
afterAll(() => db?.drop());

/** The whole app on 127.0.0.1 (`port` 0: any), LISTENing on the test database as `lumenpay start` does. */
async function serve(port = 0): Promise<{ app: FastifyInstance; url: string; port: number }> {
  const app = await buildApp({ config, pool: db.pool, clock: systemClock, logger: createLogger("silent"), directUrl: db.url });
  const url = await app.listen({ host: "127.0.0.1", port });
  return { app, url, port: (app.server.address() as AddressInfo).port };
}

async function merchant() {
  const { merchant: m, secret } = await createMerchant(db.pool, { name: "Acme", email: "ops@acme.test", accounts: [randomAccount()] }, new Date());
  return { id: m.id, apiKey: secret };
}

async function record(merchantId: string, type: EventType): Promise<string> {
  return (await transaction(db.pool, (tx) => recordEvent(tx, { merchantId, type, object: { note: type }, now: new Date() }))).id;
}

/** `lumenpay listen <args>` running; `waitForLine` resolves with the first stdout line matching (seen already or to come). */
function startListen(args: string[]) {
  const child = spawn(process.execPath, [...LUMENPAY_BIN, "listen", ...args], { env: childEnv({ LOG_LEVEL: "silent" }), stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    waiters.splice(0).forEach((w) => w());
  });
  const exited = once(child, "close") as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    child,
    exited,
    output: () => `${lines.join("\n")}\n${stderr}`,
    async waitForLine(match: RegExp, after = 0, timeoutMs = 15_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.slice(after).find((line) => match.test(line));
        if (found) return found;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no line matching ${match}; output:\n${lines.join("\n")}\n${stderr}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200).unref();
        });
      }
    },
    lineCount: () => lines.length,
  };
}

describe("lumenpay listen", () => {
  it("forwards each event of the --events types once, signed with the secret it printed, including those committed while the server was down", async () => {
    const m = await merchant();
    // payment.expired is refused with a 500: printed, and not retried.
    const receiver = await startReceiver((req) => ({ status: (JSON.parse(req.body) as { type: string }).type === "payment.expired" ? 500 : 200 }));
    let server = await serve();
    const listen = startListen(["--api-key", m.apiKey, "--server", server.url, "--forward-to", receiver.url, "--events", "payment.*,endpoint.disabled"]);
    try {
      const secret = /whsec_\S+/.exec(await listen.waitForLine(/whsec_/))![0];
      await listen.waitForLine(/ connected$/);

      // Down before any event reached the stream: the one committed meanwhile still comes.
      await server.app.close();
      const ids = [await record(m.id, "payment.created")];
      let mark = listen.lineCount();
      server = await serve(server.port);
      await listen.waitForLine(/ reconnected$/, mark);
      await receiver.waitFor(1);

      await record(m.id, "webhook.test");
      ids.push(await record(m.id, "payment.confirmed"));
      await receiver.waitFor(2);

      // Down again: it resumes after the last event it forwarded.
      await server.app.close();
      ids.push(await record(m.id, "payment.expired"), await record(m.id, "endpoint.disabled"));
      mark = listen.lineCount();
      server = await serve(server.port);
      await listen.waitForLine(new RegExp(` reconnected, resuming after ${ids[1]}$`), mark);
      // A last event: anything sent twice, or retried, would have come before it.
      ids.push(await record(m.id, "payment.canceled"));
      await receiver.waitFor(5);
      await listen.waitForLine(new RegExp(`payment\\.canceled  ${ids[4]}  200$`));

      const webhook = new Webhook({ secrets: [secret] });
      const verified = await Promise.all(receiver.received.map((r) => webhook.verify(r.body, r.headers)));
      expect(verified.map((e) => e.id)).toEqual(ids);
      expect(receiver.received.map((r) => r.headers["webhook-id"])).toEqual(ids);
      const { rows } = await db.pool.query<{ id: string; body: string }>("select id, body from events where id = any($1)", [ids]);
      expect(receiver.received.map((r) => r.body)).toEqual(ids.map((id) => rows.find((row) => row.id === id)!.body));
      // Stellar-Signature too, by hand as docs/webhooks.md describes it: HMAC-SHA256 keyed with the whole secret over `t.body`.
      for (const r of receiver.received) {
        const t = String(r.headers["stellar-timestamp"]);
        expect(r.headers["stellar-signature"]).toBe(`t=${t},v1=${createHmac("sha256", secret).update(`${t}.${r.body}`).digest("hex")}`);
      }
      await listen.waitForLine(new RegExp(`payment\\.expired  ${ids[2]}  500, not retried$`));

      listen.child.kill("SIGINT");
      expect(await listen.exited).toEqual([0, null]);
      expect(listen.output()).toMatch(/ stopped$/m);
      expect(listen.output()).not.toContain(m.apiKey);
    } finally {
      listen.child.kill("SIGKILL");
      await server.app.close();
      await receiver.close();
    }
  });

  it("stops with the server's error when retrying cannot help, without printing the key; its help says failures are not retried", async () => {
    const server = await serve();
    try {
      const m = await merchant();
      const wrongKey = "sk_live_notarealkey0000000000000";
      const lumenpay = (apiKey: string, extra: string[] = []) =>
        runCli(["listen", "--api-key", apiKey, "--server", server.url, "--forward-to", "http://127.0.0.1:9/", ...extra], {});
      const [refused, badTypes, help] = await Promise.all([
        lumenpay(wrongKey),
        lumenpay(m.apiKey, ["--events", "payment.nope"]),
        runCli(["listen", "--help"], {}),
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/\(invalid_api_key\)/);
      expect(refused.stdout + refused.stderr).not.toContain(wrongKey);
      expect(badTypes.code).toBe(1);
      expect(badTypes.stderr).toMatch(/--events: Unknown event type "payment\.nope".*\(invalid_event_type\)/);
      expect(badTypes.stdout + badTypes.stderr).not.toContain(m.apiKey);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: lumenpay listen --api-key sk_… --forward-to URL/);
      expect(help.stdout).toContain("not retried");
    } finally {
      await server.app.close();
    }
  });
});
