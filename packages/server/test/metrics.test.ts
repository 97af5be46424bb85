import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";

const TOKEN = "metrics-token-for-tests";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ env: { METRICS_TOKEN: TOKEN } });
});
afterAll(() => t.close());

const scrape = (authorization = `Bearer ${TOKEN}`) =>
  t.app.inject({ method: "GET", url: "/metrics", headers: { authorization } });

/** The value of an unlabelled sample in Prometheus text format. */
function sample(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no sample ${name}`);
  return Number(line.slice(name.length + 1));
}

async function poolSamples() {
  const res = await scrape();
  expect(res.statusCode).toBe(200);
  return {
    total: sample(res.body, "pg_pool_total_connections"),
    idle: sample(res.body, "pg_pool_idle_connections"),
    waiting: sample(res.body, "pg_pool_waiting_requests"),
    utilization: sample(res.body, "pg_pool_utilization_percent"),
  };
}

describe("GET /metrics", () => {
  it("refuses a missing or wrong token with a JSON 401", async () => {
    for (const authorization of ["", "Bearer wrong", `Bearer ${TOKEN}x`, TOKEN, `Basic ${TOKEN}`]) {
      const res = await scrape(authorization);
      expect(res.statusCode, authorization).toBe(401);
      expect(res.json().error.code).toBe("invalid_metrics_token");
      expect(res.headers["www-authenticate"]).toMatch(/^Bearer/);
    }
  });

  it("serves Prometheus text with the app's metrics to the token's bearer", async () => {
    await t.app.inject({ method: "GET", url: "/health" });
    const res = await scrape();
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(res.body).toContain('http_request_duration_seconds_count{method="GET",route="/health",status_class="2xx"} 1');
    expect(res.body).toContain("# TYPE payments_created_total counter");
    expect(res.body).toMatch(/^process_cpu_user_seconds_total \d/m);
  });

  it("reflects the pool's state at the moment of the scrape", async () => {
    const { pool } = t.db;
    const max = pool.options.max!;
    const held: pg.PoolClient[] = await Promise.all(Array.from({ length: max }, () => pool.connect()));
    // Two more callers than the pool can serve: they queue until a client is released.
    const queued = [pool.connect(), pool.connect()];
    try {
      expect(await poolSamples()).toEqual({ total: max, idle: 0, waiting: 2, utilization: 100 });
    } finally {
      for (const client of held) client.release();
      for (const client of await Promise.all(queued)) client.release();
    }
    expect(await poolSamples()).toEqual({ total: max, idle: max, waiting: 0, utilization: 0 });
  });
});

describe("GET /metrics without METRICS_TOKEN", () => {
  it.each([
    ["in development", {}, 200],
    ["in production", { NODE_ENV: "production" }, 403],
    ["in production with METRICS_PUBLIC=true", { NODE_ENV: "production", METRICS_PUBLIC: "true" }, 200],
  ] as const)("%s answers %i", async (_name, env, status) => {
    const app = await buildTestApp({ env });
    try {
      const res = await app.app.inject({ method: "GET", url: "/metrics" });
      expect(res.statusCode).toBe(status);
      if (status === 200) expect(res.body).toContain("# TYPE pg_pool_total_connections gauge");
      else expect(res.json().error.code).toBe("metrics_not_public");
    } finally {
      await app.close();
    }
  });
});
