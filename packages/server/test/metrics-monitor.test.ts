import type pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createLogger } from "../src/logger.js";
import { startPoolMonitor } from "../src/metrics/monitor.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";

interface Line {
  level: number;
  msg: string;
  pool: { total: number; idle: number; waiting: number; max: number; utilizationPercent: number };
}

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
});
afterAll(() => db.drop());
afterEach(() => {
  vi.useRealTimers();
});

function capturedLogger() {
  const lines: Line[] = [];
  const log = createLogger("info", { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { lines, log };
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("startPoolMonitor", () => {
  it("logs the pool's statistics every interval until the signal aborts", async () => {
    // Only the interval is faked: pg's own timers keep running for real.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { lines, log } = capturedLogger();
    const controller = new AbortController();
    const held: pg.PoolClient[] = [await db.pool.connect(), await db.pool.connect()];
    try {
      startPoolMonitor({ pool: db.pool, intervalMs: 5_000, log, signal: controller.signal });
      vi.advanceTimersByTime(4_999);
      expect(lines).toHaveLength(0);
      vi.advanceTimersByTime(1);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 30,
        msg: "database pool statistics",
        pool: { total: 2, idle: 0, waiting: 0, max: 10, utilizationPercent: 20 },
      });

      held.pop()!.release();
      vi.advanceTimersByTime(5_000);
      expect(lines[1]?.pool).toMatchObject({ total: 2, idle: 1, utilizationPercent: 10 });

      controller.abort();
      vi.advanceTimersByTime(60_000);
      expect(lines).toHaveLength(2);
    } finally {
      controller.abort();
      for (const client of held) client.release();
    }
  });

  it("warns while queries wait for a connection", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { lines, log } = capturedLogger();
    const controller = new AbortController();
    const held = await Promise.all(Array.from({ length: 10 }, () => db.pool.connect()));
    const queued = db.pool.connect();
    try {
      startPoolMonitor({ pool: db.pool, intervalMs: 1_000, log, signal: controller.signal });
      vi.advanceTimersByTime(1_000);
      expect(lines).toEqual([expect.objectContaining({ level: 40, pool: expect.objectContaining({ waiting: 1, utilizationPercent: 100 }) })]);
    } finally {
      controller.abort();
      for (const client of held) client.release();
      (await queued).release();
    }
  });

  it("never keeps the process alive and does not start on an aborted signal", () => {
    const { lines, log } = capturedLogger();
    const controller = new AbortController();
    const before = timeouts();
    const ref = setInterval(() => undefined, 60_000);
    // Sanity check of the probe: a referenced timer is counted.
    expect(timeouts()).toBe(before + 1);
    clearInterval(ref);
    startPoolMonitor({ pool: db.pool, intervalMs: 60_000, log, signal: controller.signal });
    expect(timeouts()).toBe(before);
    controller.abort();

    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    startPoolMonitor({ pool: db.pool, intervalMs: 1_000, log, signal: AbortSignal.abort() });
    vi.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(0);
  });
});
