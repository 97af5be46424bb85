import { randomBytes } from "node:crypto";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import {
  createRouter,
  HandlerTimeoutError,
  MemoryReplayStore,
  NonRetryableError,
  RedisReplayStore,
  Webhook,
  type Payment,
  type ReplayStore,
  type RouterOptions,
  type WebhookEndpoint,
} from "../src/index.js";
import { confirmedEvent, deferred, delivery, newSecret, nextTurn } from "./support/fixtures.js";

const secret = newSecret();
const webhook = new Webhook({ secrets: [secret] });
const quiet = (errors: unknown[] = []): Partial<RouterOptions> => ({ onError: (e) => errors.push(e), retryDelaysMs: [0] });
const request = (d: { body: string; headers: Record<string, string> }) => ({ rawBody: d.body, headers: d.headers });

describe("router.handle", () => {
  it("hands each handler its narrowed event type", async () => {
    const seen: string[] = [];
    const router = createRouter({ webhook, ...quiet() })
      .on("payment.confirmed", (event) => {
        expectTypeOf(event.data.object).toEqualTypeOf<Payment>();
        seen.push(event.data.object.amount_received);
      })
      .on("endpoint.disabled", (event) => {
        expectTypeOf(event.data.object).toEqualTypeOf<WebhookEndpoint>();
        seen.push(event.data.object.url);
      });
    const endpoint = { ...confirmedEvent(), type: "endpoint.disabled", data: { object: { url: "https://shop.example/hook" } } };
    expect((await router.handle(request(delivery(secret)))).status).toBe(200);
    expect((await router.handle(request(delivery(secret, endpoint)))).status).toBe(200);
    expect(seen).toEqual(["12.5", "https://shop.example/hook"]);
  });

  it("maps each verification failure to its status", async () => {
    const router = createRouter({ webhook, ...quiet() }).on("payment.confirmed", () => undefined);
    const good = delivery(secret);
    expect((await router.handle({ rawBody: good.body, headers: {} })).status).toBe(401);
    expect((await router.handle({ rawBody: `${good.body} `, headers: good.headers })).status).toBe(401);
    const noType = delivery(secret, JSON.stringify({ id: "evt_1", data: {} }));
    expect(await router.handle(request(noType))).toMatchObject({ status: 400, body: { error: "invalid_payload" } });
    const parsed = await router.handle({ rawBody: JSON.parse(good.body) as string, headers: good.headers });
    expect(parsed).toMatchObject({ status: 500, body: { error: "payload_not_raw" } });
  });

  it("retries a failing handler within the request, then answers 200", async () => {
    const errors: unknown[] = [];
    const attempts: number[] = [];
    const router = createRouter({ webhook, ...quiet(errors) }).on(
      "payment.confirmed",
      (_event, { attempt }) => {
        attempts.push(attempt);
        if (attempt < 3) throw new Error(`flaky ${attempt}`);
      },
      { retries: 3 },
    );
    expect((await router.handle(request(delivery(secret)))).status).toBe(200);
    expect(attempts).toEqual([1, 2, 3]);
    expect(errors).toEqual([new Error("flaky 1"), new Error("flaky 2")]);
  });

  it("gives up after its retries with a 500, and at once on a NonRetryableError", async () => {
    const attempts: string[] = [];
    const router = createRouter({ webhook, ...quiet() })
      .on(
        "payment.canceled",
        () => {
          attempts.push("canceled");
          throw new Error("always");
        },
        { retries: 2 },
      )
      .on(
        "payment.expired",
        () => {
          attempts.push("expired");
          throw new NonRetryableError("unknown order");
        },
        { retries: 2 },
      );
    expect((await router.handle(request(delivery(secret, { ...confirmedEvent(), type: "payment.canceled" })))).status).toBe(500);
    expect((await router.handle(request(delivery(secret, { ...confirmedEvent(), type: "payment.expired" })))).status).toBe(500);
    expect(attempts).toEqual(["canceled", "canceled", "canceled", "expired"]);
  });

  it("waits the configured delays between tries", async () => {
    const started: number[] = [];
    const router = createRouter({ webhook, ...quiet(), retryDelaysMs: [30] }).on(
      "payment.confirmed",
      () => {
        started.push(performance.now());
        if (started.length < 3) throw new Error("again");
      },
      { retries: 2 },
    );
    await router.handle(request(delivery(secret)));
    // The last delay repeats; timers may fire late but never early (a millisecond of rounding aside).
    expect(started[1]! - started[0]!).toBeGreaterThanOrEqual(29);
    expect(started[2]! - started[1]!).toBeGreaterThanOrEqual(29);
  });

  it("never runs one event's handler twice at once: a concurrent duplicate gets 409 processing", async () => {
    const gate = deferred();
    let runs = 0;
    const router = createRouter({ webhook, ...quiet() }).on("payment.confirmed", async () => {
      runs++;
      await gate.promise;
    });
    const signed = delivery(secret);
    const first = router.handle(request(signed));
    await nextTurn();
    expect(await router.handle(request(signed))).toMatchObject({ status: 409, body: { status: "processing" } });
    gate.resolve();
    expect((await first).status).toBe(200);
    expect(await router.handle(request(signed))).toMatchObject({ status: 200, body: { status: "duplicate" } });
    expect(runs).toBe(1);
  });

  it("answers 503 to a handler past its timeout, and records what it did once it ends", async () => {
    for (const outcome of ["succeeds", "fails"] as const) {
      const gate = deferred();
      let runs = 0;
      let signal: AbortSignal | undefined;
      const errors: unknown[] = [];
      const router = createRouter({ webhook, ...quiet(errors) }).on(
        "payment.confirmed",
        async (_event, context) => {
          runs++;
          signal = context.signal;
          if (runs === 1) await gate.promise;
        },
        { timeoutMs: 20, retries: 2 },
      );
      const signed = delivery(secret);
      expect(await router.handle(request(signed))).toMatchObject({ status: 503, body: { status: "timeout" } });
      expect(runs).toBe(1);
      expect(signal?.aborted).toBe(true);
      expect(errors[0]).toBeInstanceOf(HandlerTimeoutError);
      expect((await router.handle(request(signed))).status).toBe(409);

      if (outcome === "succeeds") gate.resolve();
      else gate.reject(new Error("gave up"));
      await nextTurn();
      const retry = await router.handle(request(signed));
      expect(retry.body).toEqual({ status: outcome === "succeeds" ? "duplicate" : "processed" });
      expect(runs).toBe(outcome === "succeeds" ? 1 : 2);
    }
  });

  it("runs the handler again once a crashed process's reservation expires", async () => {
    let now = 0;
    const store = new MemoryReplayStore({ now: () => now });
    const event = confirmedEvent();
    // What a process that died mid-handler leaves behind.
    await store.checkAndRemember(`processing:${event.id}`, 60);
    await store.checkAndRemember(event.id, 60);
    let runs = 0;
    const router = createRouter({ webhook, replayStore: store, processingTtlSeconds: 60, ...quiet() }).on("payment.confirmed", () => {
      runs++;
    });
    expect((await router.handle(request(delivery(secret, event)))).status).toBe(409);
    now += 60_000;
    expect((await router.handle(request(delivery(secret, event)))).body).toEqual({ status: "processed" });
    expect(runs).toBe(1);
  });

  it("remembers a handled id for replayTtlSeconds", async () => {
    let now = 0;
    const router = createRouter({ webhook, replayStore: new MemoryReplayStore({ now: () => now }), replayTtlSeconds: 3600, ...quiet() });
    let runs = 0;
    router.on("payment.confirmed", () => void runs++);
    const signed = delivery(secret);
    await router.handle(request(signed));
    now += 3599_000;
    expect((await router.handle(request(signed))).body).toEqual({ status: "duplicate" });
    now += 1000;
    expect((await router.handle(request(signed))).body).toEqual({ status: "processed" });
    expect(runs).toBe(2);
  });

  it("answers 500 without running the handler when the replay store fails", async () => {
    const errors: unknown[] = [];
    const broken: ReplayStore = {
      checkAndRemember: () => Promise.reject(new Error("redis down")),
      remember: () => Promise.resolve(),
      forget: () => Promise.resolve(),
    };
    let runs = 0;
    const router = createRouter({ webhook, replayStore: broken, ...quiet(errors) }).on("payment.confirmed", () => void runs++);
    expect(await router.handle(request(delivery(secret)))).toEqual({ status: 500, body: { error: "internal_error" } });
    expect(runs).toBe(0);
    expect(errors).toEqual([new Error("redis down")]);
  });

  it("rejects misuse with TypeError", () => {
    const router = createRouter({ webhook });
    router.on("payment.confirmed", () => undefined);
    expect(() => router.on("payment.confirmed", () => undefined)).toThrow(TypeError);
    // 4 tries of 100 s cannot fit in a 300 s reservation.
    expect(() => router.on("payment.expired", () => undefined, { timeoutMs: 100_000, retries: 3 })).toThrow(/processingTtlSeconds/);
    expect(() => router.on("payment.canceled", () => undefined, { retries: -1 })).toThrow(TypeError);
    expect(() => createRouter({ webhook, onDuplicate: "ignore" as "reject" })).toThrow(TypeError);
    expect(() => createRouter({} as RouterOptions)).toThrow(TypeError);
  });
});

describe("two routers sharing one Redis (two processes)", () => {
  const client = createClient({ url: "redis://127.0.0.1:6379" });
  const prefix = `lumenpay-test:${randomBytes(6).toString("hex")}:`;
  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
    await client.quit();
  });

  it("run the handler once for concurrent deliveries of one event, and again after it failed", async () => {
    const gate = deferred();
    const runs: string[] = [];
    const routers = ["a", "b"].map((name) =>
      createRouter({ webhook, replayStore: new RedisReplayStore({ client, prefix }), ...quiet() }).on("payment.confirmed", async () => {
        runs.push(name);
        await gate.promise;
        if (runs.length === 1) throw new Error("first try fails");
      }),
    );
    const signed = delivery(secret);
    const first = routers[0]!.handle(request(signed));
    // Until the first router holds the lock the second might win it instead; either way only one runs.
    while (runs.length === 0) await nextTurn();
    const concurrent = await routers[1]!.handle(request(signed));
    expect(concurrent).toMatchObject({ status: 409, body: { status: "processing" } });
    gate.resolve();
    expect((await first).status).toBe(500);
    expect((await routers[1]!.handle(request(signed))).status).toBe(200);
    expect(await routers[0]!.handle(request(signed))).toMatchObject({ status: 200, body: { status: "duplicate" } });
    expect(runs).toEqual(["a", "b"]);
    expect(await client.ttl(`${prefix}${JSON.parse(signed.body).id}`)).toBeGreaterThan(259_200);
  });
});
