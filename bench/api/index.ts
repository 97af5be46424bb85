/**
 * bench/api: POST /v1/payments and GET /.well-known/stellar.toml through the real app on a real
 * database, each beside a bare node:http server answering the same request shape in the same run.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Keypair } from "@stellar/stellar-sdk";
import { buildApp } from "../../packages/server/src/app.js";
import { loadConfig } from "../../packages/server/src/config.js";
import { createLogger } from "../../packages/server/src/logger.js";
import { systemClock } from "../../packages/server/src/clock.js";
import { createMerchant } from "../../packages/server/src/merchants/service.js";
import { createBenchDatabase } from "../support/db.js";
import { formatResult, loadInWorker, type LoadRequest } from "../support/load.js";

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5000);

async function bareServer(status: number, contentType: string, body: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
      res.end(body);
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
  const app = await buildApp({ config, pool: db.pool, clock: systemClock, logger: createLogger("silent") });
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

    console.log(`duration ${DURATION_MS} ms per run, 32 connections, closed loop, load generated in a worker thread`);
    for (const [label, req, contentType] of [
      ["POST /v1/payments", createPayment, "application/json"],
      ["GET /.well-known/stellar.toml", toml, "text/plain; charset=utf-8"],
    ] as const) {
      const sample = await fetch(origin + req.path, { method: req.method, headers: req.headers, body: req.body?.() });
      const sampleBody = await sample.text();
      const bare = await bareServer(req.expectStatus, contentType, sampleBody);
      const ours = await loadInWorker(origin, req, { durationMs: DURATION_MS });
      const baseline = await loadInWorker(bare.origin, req, { durationMs: DURATION_MS });
      await bare.close();
      console.log(formatResult(`lumenpay ${label}`, ours));
      console.log(formatResult(`bare node:http, same shape`, baseline));
      console.log(`ratio: ${((ours.perSecond / baseline.perSecond) * 100).toFixed(1)} % of bare node:http throughput`);
    }
  } finally {
    await app.close();
    await db.close();
  }
}
