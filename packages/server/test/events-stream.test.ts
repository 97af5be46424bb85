import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { systemClock } from "../src/clock.js";
import { loadConfig, type Config } from "../src/config.js";
import { transaction } from "../src/db/pool.js";
import { recordEvent } from "../src/events/outbox.js";
import { eventRoutes } from "../src/events/routes.js";
import { lastSettledPosition, STREAM_START, streamEventsAfter } from "../src/events/store.js";
import { EVENT_STREAM_LIMITS, type EventStreamLimits } from "../src/events/stream.js";
import type { EventType } from "../src/events/types.js";
import { requireApiKey } from "../src/http/auth.js";
import { errorSchema, registerErrorHandler } from "../src/http/errors.js";
import { createLogger } from "../src/logger.js";
import { createMerchant } from "../src/merchants/service.js";
import { createMetrics } from "../src/metrics/registry.js";
import { createDeliveryWakeup } from "../src/webhooks/wakeup.js";
import { randomAccount } from "./support/app.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { waitFor } from "./support/wait.js";
import { openSse } from "./support/sse.js";

/**
 * GET /v1/events/stream over real connections: the whole app for what the route does, and the events
 * plugin alone with small bounds for the cap and heartbeats.
 */

let db: TestDatabase;
let config: Config;
let app: FastifyInstance;
let base: string;
beforeAll(async () => {
  db = await createTestDatabase();
  config = loadConfig({ LOG_LEVEL: "silent" });
  app = await buildApp({ config, pool: db.pool, clock: systemClock, logger: createLogger("silent"), directUrl: db.url });
  base = await app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const opened: Array<{ leave(): void }> = [];
const apps: FastifyInstance[] = [];
afterEach(async () => {
  opened.splice(0).forEach((s) => s.leave());
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** The events plugin alone, behind the API-key check, with `limits` instead of the defaults. */
async function pluginServer(limits: Partial<EventStreamLimits>): Promise<{ app: FastifyInstance; base: string }> {
  const plugin = Fastify();
  plugin.addSchema(errorSchema);
  registerErrorHandler(plugin);
  const logger = createLogger("silent");
  const wakeup = createDeliveryWakeup({ pool: db.pool, log: logger });
  const deps = { config, pool: db.pool, clock: systemClock, logger, metrics: createMetrics(db.pool), wakeup, directUrl: db.url };
  await plugin.register(
    async (v1) => {
      requireApiKey(v1, { pool: db.pool, clock: systemClock, ...config.api });
      await v1.register(eventRoutes, { ...deps, streamLimits: { ...EVENT_STREAM_LIMITS, ...limits } });
    },
    { prefix: "/v1" },
  );
  apps.push(plugin);
  return { app: plugin, base: await plugin.listen({ host: "127.0.0.1", port: 0 }) };
}

async function merchant(name = "Acme") {
  const { merchant: m, secret } = await createMerchant(db.pool, { name, email: "ops@acme.test", accounts: [randomAccount()] }, new Date());
  return { id: m.id, apiKey: secret, auth: { authorization: `Bearer ${secret}` } };
}

/** Commits one event of `type` for the merchant, dated `at` (now by default); returns its id. */
async function record(merchantId: string, type: EventType, at = new Date()): Promise<string> {
  const event = await transaction(db.pool, (tx) => recordEvent(tx, { merchantId, type, object: { note: type }, now: at }));
  return event.id;
}

const storedBody = async (id: string) => (await db.pool.query<{ body: string }>("select body from events where id = $1", [id])).rows[0]!.body;

interface Message {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  comment?: string;
}

function parse(block: string): Message {
  const message: Message = {};
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) message.comment = line.slice(1).trim();
    const [, field, value] = /^(\w+): ?(.*)$/.exec(line) ?? [];
    if (field === "id" || field === "event" || field === "data" || field === "retry") message[field] = value;
  }
  return message;
}

async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** GET `path` as an event stream, read message by message. `accept` is sent unless `headers` replaces it. */
async function openStream(server: string, path: string, headers: Record<string, string> = {}) {
  const sse = await openSse(`${server}${path}`, { accept: "text/event-stream", ...headers });
  const reader = sse.blocks;
  const stream = {
    status: sse.status,
    headers: sse.headers,
    /** The next block as text, or undefined once the stream ended. */
    next: async () => (await within(reader.next(), "block")).value as string | undefined,
    /** The next message with an event, skipping the opening message and heartbeats. */
    async nextEvent(): Promise<Required<Pick<Message, "id" | "event" | "data">>> {
      for (let block = await stream.next(); block !== undefined; block = await stream.next()) {
        const message = parse(block);
        if (message.event !== undefined) return message as Required<Pick<Message, "id" | "event" | "data">>;
      }
      throw new Error("the stream ended before an event");
    },
    async eventIds(count: number): Promise<string[]> {
      const ids: string[] = [];
      while (ids.length < count) ids.push((await stream.nextEvent()).id);
      return ids;
    },
    leave: sse.leave,
  };
  opened.push(stream);
  return stream;
}

/** The JSON error of a refused stream. */
async function refusal(server: string, path: string, headers: Record<string, string> = {}) {
  const stream = await openStream(server, path, headers);
  return { status: stream.status, body: JSON.parse((await stream.next()) ?? "null") as { error: { code: string; param?: string } } };
}

describe("GET /v1/events/stream", () => {
  it("needs an API key (401) and a client that asks for an event stream (406)", async () => {
    const m = await merchant();
    expect(await refusal(base, "/v1/events/stream")).toMatchObject({ status: 401, body: { error: { code: "missing_api_key" } } });
    expect(await refusal(base, "/v1/events/stream", { authorization: "Bearer sk_not_a_real_key" })).toMatchObject({
      status: 401,
      body: { error: { code: "invalid_api_key" } },
    });
    expect(await refusal(base, "/v1/events/stream", { ...m.auth, accept: "application/json" })).toMatchObject({
      status: 406,
      body: { error: { code: "not_acceptable" } },
    });
  });

  it("replays the events after Last-Event-ID, then sends new ones as they commit, with the bytes webhooks carry", async () => {
    const m = await merchant();
    const [e1, e2, e3] = [await record(m.id, "payment.created"), await record(m.id, "payment.confirmed"), await record(m.id, "endpoint.disabled")];

    const stream = await openStream(base, "/v1/events/stream", { ...m.auth, "last-event-id": e1 });
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(stream.headers["cache-control"]).toBe("no-store");
    expect(await stream.nextEvent()).toEqual({ id: e2, event: "payment.confirmed", data: await storedBody(e2) });
    expect(await stream.nextEvent()).toEqual({ id: e3, event: "endpoint.disabled", data: await storedBody(e3) });

    // Live, from the API's own write path.
    const created = await fetch(`${base}/v1/payments`, {
      method: "POST",
      headers: { ...m.auth, "content-type": "application/json" },
      body: JSON.stringify({ amount: "5", asset: "XLM" }),
    });
    expect(created.status).toBe(201);
    const payment = (await created.json()) as { id: string };
    const live = await stream.nextEvent();
    const { rows } = await db.pool.query<{ id: string; body: string }>("select id, body from events where payment_id = $1", [payment.id]);
    expect(live).toEqual({ id: rows[0]!.id, event: "payment.created", data: rows[0]!.body });
    expect(JSON.parse(live.data)).toMatchObject({ type: "payment.created", data: { object: { id: payment.id } } });

    // `after` does the same; the header, which EventSource resends on reconnecting, wins over it.
    expect(await (await openStream(base, `/v1/events/stream?after=${e2}`, m.auth)).eventIds(1)).toEqual([e3]);
    expect(await (await openStream(base, `/v1/events/stream?after=${e2}`, { ...m.auth, "last-event-id": e1 })).eventIds(1)).toEqual([e2]);
  });

  it("resumes in commit order: an event dated earlier but committed later is not skipped", async () => {
    const m = await merchant();
    const first = await record(m.id, "payment.created", new Date("2026-06-01T00:00:00Z"));
    // A writer whose clock is behind (or whose transaction started earlier and committed later).
    const later = await record(m.id, "payment.confirmed", new Date("2025-01-01T00:00:00Z"));
    const stream = await openStream(base, "/v1/events/stream", { ...m.auth, "last-event-id": first });
    expect(await stream.eventIds(1)).toEqual([later]);
  });

  it("holds an event back while an older transaction is open, then reads both in commit order", async () => {
    const m = await merchant();
    const read = async () => (await streamEventsAfter(db.pool, { merchantId: m.id, after: STREAM_START, enabledEvents: ["*"], limit: 10 })).map((r) => r.id);
    const open = await db.pool.connect();
    try {
      await open.query("begin");
      const older = (await recordEvent(open, { merchantId: m.id, type: "payment.created", object: {}, now: new Date() })).id;
      const newer = await record(m.id, "payment.confirmed");
      // Committed, but an older transaction could still commit an event before it: a reader that took it now would skip that one.
      expect(await read()).toEqual([]);
      await open.query("commit");
      // The horizon is the cluster's oldest running transaction: other test files' transactions on the
      // same server can hold `newer` back a little longer, but never reorder or skip: every read is a
      // prefix of the commit order until both are out.
      const seen = await waitFor(async () => {
        const ids = await read();
        expect([older, newer].slice(0, ids.length)).toEqual(ids);
        return ids.length === 2 && ids;
      }, "both events to be readable");
      expect(seen).toEqual([older, newer]);
    } finally {
      open.release();
    }
  });

  it("compares transaction ids as numbers, 9 before 10", async () => {
    const m = await merchant();
    const ids = ["tx9", "tx10"].map((tx) => `evt_${tx.padEnd(22, "0")}`);
    for (const [i, txId] of ["9", "10"].entries()) {
      await db.pool.query("insert into events (id, merchant_id, type, body, created_at, tx_id) values ($1, $2, 'payment.created', '{}', now(), $3)", [ids[i], m.id, txId]);
    }
    const read = await streamEventsAfter(db.pool, { merchantId: m.id, after: STREAM_START, enabledEvents: ["*"], limit: 10 });
    expect(read.map((r) => r.id)).toEqual(ids);
    expect(await lastSettledPosition(db.pool, m.id)).toMatchObject({ id: ids[1], txId: "10" });
  });

  it("filters by types, with groups (payment.*) as well as types; unknown ones are 400 invalid_event_type", async () => {
    const m = await merchant();
    const created = await record(m.id, "payment.created");
    await record(m.id, "webhook.test");
    const disabled = await record(m.id, "endpoint.disabled");
    const confirmed = await record(m.id, "payment.confirmed");
    const stream = await openStream(base, "/v1/events/stream?after=start&types=payment.*,endpoint.disabled", m.auth);
    expect(await stream.eventIds(3)).toEqual([created, disabled, confirmed]);

    for (const types of ["payment.nope", "payment.created,", "*,payment.created", "nope.*"]) {
      expect(await refusal(base, `/v1/events/stream?types=${types}`, m.auth), types).toMatchObject({
        status: 400,
        body: { error: { code: "invalid_event_type", param: "types" } },
      });
    }
  });

  it("never shows another merchant's events, nor resumes from one of its ids", async () => {
    const a = await merchant("Alpha");
    const b = await merchant("Bravo");
    const own = [await record(a.id, "payment.created")];
    const theirs = await record(b.id, "payment.created");
    own.push(await record(a.id, "payment.confirmed"));

    const stream = await openStream(base, "/v1/events/stream?after=start", a.auth);
    expect(await stream.eventIds(2)).toEqual(own);
    await record(b.id, "payment.expired");
    const next = await record(a.id, "payment.expired");
    expect(await stream.eventIds(1)).toEqual([next]);

    expect(await refusal(base, "/v1/events/stream", { ...a.auth, "last-event-id": theirs })).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_last_event_id", param: "last-event-id" } },
    });
    expect(await refusal(base, `/v1/events/stream?after=${theirs}`, a.auth)).toMatchObject({ status: 400, body: { error: { code: "invalid_after" } } });
  });

  it("without a position sends only new events, opening with the id of the latest one to resume from", async () => {
    const m = await merchant();
    await record(m.id, "payment.created");
    const latest = await record(m.id, "payment.confirmed");
    // A stream announces the latest settled event: one committed while any transaction older than it
    // still runs on the server (another test file's, on a loaded machine) is not settled yet.
    await waitFor(async () => (await lastSettledPosition(db.pool, m.id))?.id === latest, "the latest event to settle");
    const stream = await openStream(base, "/v1/events/stream", m.auth);
    expect(parse((await stream.next())!)).toEqual({ retry: String(EVENT_STREAM_LIMITS.retryMs), id: latest });
    const fresh = await record(m.id, "payment.expired");
    expect(await stream.eventIds(1)).toEqual([fresh]);

    // A merchant without events: no id to announce; `start` is then where the stream began.
    const empty = await merchant();
    const quiet = await openStream(base, "/v1/events/stream", empty.auth);
    expect(parse((await quiet.next())!)).toEqual({ retry: String(EVENT_STREAM_LIMITS.retryMs) });
    quiet.leave();
    const missed = await record(empty.id, "payment.created");
    expect(await (await openStream(base, "/v1/events/stream", { ...empty.auth, "last-event-id": "start" })).eventIds(1)).toEqual([missed]);
  });

  it("is documented in the OpenAPI document as text/event-stream with its parameters", async () => {
    const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json();
    const op = doc.paths["/v1/events/stream"].get;
    expect(op.responses["200"].content).toHaveProperty(["text/event-stream"]);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["400", "401", "406", "429", "503"]));
    expect(op.parameters.map((p: { in: string; name: string }) => `${p.in}:${p.name}`).sort()).toEqual(["header:last-event-id", "query:after", "query:types"]);
  });
});

describe("event streams, bounded", () => {
  it("send heartbeat comments while idle", async () => {
    const { base: server } = await pluginServer({ heartbeatMs: 50, pollMs: 20 });
    const stream = await openStream(server, "/v1/events/stream", (await merchant()).auth);
    await stream.next();
    expect(parse((await stream.next())!)).toEqual({ comment: "heartbeat" });
  });

  it("are capped per process: 503 too_many_streams, and a slot frees when a client leaves", async () => {
    const { base: server } = await pluginServer({ maxStreams: 1 });
    const m = await merchant();
    const first = await openStream(server, "/v1/events/stream", m.auth);
    expect(first.status).toBe(200);
    const refused = await refusal(server, "/v1/events/stream", m.auth);
    expect(refused).toMatchObject({ status: 503, body: { error: { code: "too_many_streams" } } });

    first.leave();
    await expect
      .poll(async () => {
        const again = await openStream(server, "/v1/events/stream", m.auth);
        again.leave();
        return again.status;
      })
      .toBe(200);
  });

  it("end when the server closes, instead of holding its shutdown", async () => {
    const { app: plugin, base: server } = await pluginServer({});
    const stream = await openStream(server, "/v1/events/stream", (await merchant()).auth);
    await stream.next();
    await within(plugin.close(), "shutdown", 5_000);
    expect(await stream.next()).toBeUndefined();
  });
});
