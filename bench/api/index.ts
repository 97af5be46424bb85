/**
 * bench/api: POST /v1/payments and GET /.well-known/stellar.toml through the real app on a real
 * database, each beside a bare node:http server answering the same request shape in the same run;
 * POST /v1/payments also beside a bare node:http + pg server that INSERTs one row per request
 * (autocommit, a pool as large as the app's) into the same database: the floor a server that must
 * store each request before answering cannot go below. POST /v1/payments is then measured again with
 * a new Idempotency-Key on each request (as @lumenpay/client sends), and for a merchant with one
 * webhook endpoint subscribed to every event: each payment also queues a
 * delivery and wakes the delivery workers. No worker runs in this process (as in an api-only
 * process), so the endpoint's URL is never requested and no delivery traffic competes: the
 * difference is what queuing costs the request.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { Keypair } from "@stellar/stellar-sdk";
import { buildApp } from "../../packages/server/src/app.js";
import { loadConfig } from "../../packages/server/src/config.js";
import { createLogger } from "../../packages/server/src/logger.js";
import { systemClock } from "../../packages/server/src/clock.js";
import { createMerchant } from "../../packages/server/src/merchants/service.js";
import { createBenchDatabase } from "../support/db.js";
import { formatResult, loadInProcess, type LoadRequest } from "../support/load.js";
import { benchInt } from "../support/env.js";

const DURATION_MS = benchInt("BENCH_DURATION_MS", 5000);

/** A bare node:http server answering `body`; with `pool`, after INSERTing the request's body as one row. */
async function bareServer(status: number, contentType: string, body: string, pool?: pg.Pool): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const answer = () => {
        res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
        res.end(body);
      };
      if (!pool) return answer();
      pool.query("insert into bench_requests (body) values ($1)", [Buffer.concat(chunks).toString("utf8")]).then(answer, (error: Error) => {
        res.writeHead(500).end(error.message);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export async function run(): Promise<void> {
  const db = await createBenchDatabase();
  const config = loadConfig({ LOG_LEVEL: "silent", API_RATE_LIMIT_PER_MINUTE: "100000000" });
  const app = await buildApp({ config, pool: db.pool, clock: systemClock, logger: createLogger("silent"), directUrl: db.url });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  try {
    const { merchant, secret } = await createMerchant(db.pool, {
      name: "Bench",
      email: "bench@example.test",
      accounts: [Keypair.random().publicKey()],
      home_domain: "bench.example",
    }, new Date());
    const createPayment: LoadRequest = {
      method: "POST",
      path: "/v1/payments",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: () => JSON.stringify({ amount: "12.50", asset: "XLM", description: "bench" }),
      expectStatus: 201,
    };
    const toml: LoadRequest = { method: "GET", path: `/.well-known/stellar.toml?merchant_id=${merchant.id}`, expectStatus: 200 };

    let noEndpoint = 0;
    console.log(`duration ${DURATION_MS} ms per run, 32 connections, closed loop, load generated in a process of its own`);
    for (const [label, req, contentType] of [
      ["POST /v1/payments", createPayment, "application/json"],
      ["GET /.well-known/stellar.toml", toml, "text/plain; charset=utf-8"],
    ] as const) {
      const sample = await fetch(origin + req.path, { method: req.method, headers: req.headers, body: req.body?.() });
      const sampleBody = await sample.text();
      const bare = await bareServer(req.expectStatus, contentType, sampleBody);
      const ours = await loadInProcess(origin, req, { durationMs: DURATION_MS });
      const baseline = await loadInProcess(bare.origin, req, { durationMs: DURATION_MS });
      await bare.close();
      console.log(formatResult(`lumenpay ${label}`, ours));
      console.log(formatResult(`bare node:http, same shape`, baseline));
      console.log(`ratio: ${((ours.perSecond / baseline.perSecond) * 100).toFixed(1)} % of bare node:http throughput`);
      if (req.method !== "POST") continue;
      await db.pool.query("create table bench_requests (id bigserial primary key, body text not null, created_at timestamptz not null default now())");
      const bareDb = await bareServer(req.expectStatus, contentType, sampleBody, db.pool);
      const stored = await loadInProcess(bareDb.origin, req, { durationMs: DURATION_MS });
      await bareDb.close();
      console.log(formatResult(`bare node:http + pg, one INSERT per request`, stored));
      console.log(`ratio: ${((ours.perSecond / stored.perSecond) * 100).toFixed(1)} % of bare node:http + pg throughput`);
      noEndpoint = ours.perSecond;
    }

    // @lumenpay/client sends an Idempotency-Key with every POST: such a creation runs in a transaction of its own, unbatched.
    const keyed = await loadInProcess(origin, { ...createPayment, idempotencyKeys: true }, { durationMs: DURATION_MS });
    console.log(formatResult("lumenpay POST /v1/payments, Idempotency-Key", keyed));
    console.log(`ratio: ${((keyed.perSecond / noEndpoint) * 100).toFixed(1)} % of POST /v1/payments without one`);

    const withEndpoint = await createMerchant(db.pool, { name: "Bench hooks", email: "hooks@example.test", accounts: [Keypair.random().publicKey()] }, new Date());
    const hookAuth = { authorization: `Bearer ${withEndpoint.secret}`, "content-type": "application/json" };
    const endpoint = await fetch(`${origin}/v1/webhook_endpoints`, {
      method: "POST",
      headers: hookAuth,
      body: JSON.stringify({ url: "https://hooks.bench.example/lumenpay", enabled_events: ["*"] }),
    });
    if (endpoint.status !== 201) throw new Error(`creating the webhook endpoint answered ${endpoint.status}: ${await endpoint.text()}`);
    const hooked = await loadInProcess(origin, { ...createPayment, headers: hookAuth }, { durationMs: DURATION_MS });
    console.log(formatResult("lumenpay POST /v1/payments, 1 webhook endpoint", hooked));
    console.log(`ratio: ${((hooked.perSecond / noEndpoint) * 100).toFixed(1)} % of POST /v1/payments without endpoints`);
  } finally {
    await app.close();
    await db.close();
  }
}
