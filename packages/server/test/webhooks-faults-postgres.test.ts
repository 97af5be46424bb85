import { chmod, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Keypair } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../src/db/embedded.js";
import { createPool, transaction, type Pool } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { newId } from "../src/ids.js";
import { createMerchant } from "../src/merchants/service.js";
import { insertEndpoint } from "../src/webhooks/endpoints-store.js";
import { generateSecret } from "../src/webhooks/secrets.js";
import { startServerProcess, type ServerProcess } from "./support/process.js";

// A PostgreSQL of this file's own, so stopping it disturbs no other test.
let dataDir: string;
let postgres: EmbeddedPostgres;
const quiet = { info: () => undefined, warn: () => undefined };

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "lumenpay-faults-"));
  // mkdtemp makes it 700; the postgres user (when running as root) must be able to enter it.
  await chmod(dataDir, 0o755);
  postgres = await startEmbeddedPostgres({ dataDir, log: quiet });
});
afterAll(async () => {
  await postgres?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("webhook delivery across a PostgreSQL restart", () => {
  let server: ServerProcess | undefined;
  let pool: Pool | undefined;
  let receiver: http.Server | undefined;
  afterAll(async () => {
    if (server?.child.exitCode === null && server.child.signalCode === null) server.child.kill("SIGKILL");
    await pool?.end();
    receiver?.closeAllConnections();
    receiver?.close();
  });

  it("recovers by itself and delivers every event committed before, during and after", { timeout: 120_000 }, async () => {
    // Answers after 100 ms, so deliveries are in flight when the database goes away.
    const received = new Set<string>();
    receiver = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        received.add(String(req.headers["webhook-id"]));
        setTimeout(() => res.writeHead(200).end("ok"), 100);
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, "127.0.0.1", resolve));
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

    server = startServerProcess({
      DATABASE_URL: postgres.url,
      PORT: "0",
      LOG_LEVEL: "info",
      WEBHOOK_ALLOW_HTTP: "true",
      WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
      WEBHOOK_TIMEOUT_MS: "1000",
      // A delivery whose result could not be recorded while the database was down is retried after
      // its lease; short, so that happens within the test (by default 2 × timeout + 30 s).
      WEBHOOK_LEASE_MS: "2000",
    });
    const ready = await server.waitForLog((line) => typeof line.url === "string" && typeof line.port === "number");
    const readyStatus = async () => (await fetch(`${ready.url as string}/ready`)).status;

    // The test's own pool, which must also survive the restart (createPool handles dropped idle clients).
    pool = createPool(postgres.url, { ...loadConfig({}).db, poolMin: 0, poolMax: 4 });
    const { merchant, secret: apiKey } = await createMerchant(pool, { name: "Acme", email: "ops@acme.test", accounts: [Keypair.random().publicKey()] }, new Date());
    await insertEndpoint(pool, {
      id: newId("we"),
      merchantId: merchant.id,
      url: receiverUrl,
      description: null,
      enabledEvents: ["*"],
      disabled: false,
      secret: generateSecret(),
      now: new Date(),
    });

    // Emits an event every 10 ms until told to stop; an event counts once its transaction committed.
    const committed: string[] = [];
    let refused = 0;
    let emitting = true;
    const emitter = (async () => {
      while (emitting) {
        try {
          const event = await transaction(pool!, (tx) =>
            recordEvent(tx, { merchantId: merchant.id, type: "payment.created", object: { id: "pay_x", amount: "1" }, now: new Date() }),
          );
          committed.push(event.id);
        } catch {
          refused++;
        }
        await sleep(10);
      }
    })();

    await until(() => committed.length >= 50 && received.size >= 20, "deliveries to be flowing");
    const { url } = postgres;
    await postgres.stop();
    const committedBefore = committed.length;
    // The server notices: it is not ready while its database is down.
    await until(async () => (await readyStatus()) === 503, "/ready to report the database down");
    // The API says so too: retry, nothing broke (not a 500 with a stack trace in the log).
    const down = await fetch(`${ready.url as string}/v1/payments`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBe("1");
    expect(((await down.json()) as { error: { code: string } }).error.code).toBe("database_unavailable");
    await sleep(1000);
    postgres = await startEmbeddedPostgres({ dataDir, log: quiet });
    // Same data dir, same port: the server reconnects to the URL it was given.
    expect(postgres.url).toBe(url);
    expect(refused).toBeGreaterThan(0);

    await until(() => committed.length >= committedBefore + 50, "events to commit again after the restart");
    emitting = false;
    await emitter;

    await until(() => committed.every((id) => received.has(id)), "every committed event to be delivered");
    const counts = async () =>
      (await pool!.query<{ status: string; n: number }>("select status, count(*)::int as n from webhook_deliveries group by status")).rows;
    // Every row, including those of events whose commit was acknowledged to nobody, ends succeeded.
    await until(async () => (await counts()).every((r) => r.status === "succeeded"), "every delivery row to be recorded");
    const [succeeded] = await counts();
    expect(succeeded!.n).toBeGreaterThanOrEqual(committed.length);
    expect(await readyStatus()).toBe(200);

    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});
