import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_SCHEDULE_MS, nextAttemptAt, parseRetryAfter, parseRetrySchedule } from "../src/webhooks/retry.js";

const now = new Date("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(now.getTime() + ms);

describe("nextAttemptAt", () => {
  it.each([
    // attempt, random, status, retryAfter, expected delay (ms) or null
    { attempt: 1, random: 0.5, expected: 5_000 },
    { attempt: 1, random: 0, expected: 4_000 },
    { attempt: 1, random: 0.999999, expected: 6_000 },
    { attempt: 2, random: 0.5, expected: 300_000 },
    { attempt: 9, random: 0.5, expected: 86_400_000 },
    { attempt: 10, random: 0.5, expected: null },
    { attempt: 2, random: 0.5, status: 429, retryAfter: "600", expected: 600_000 },
    { attempt: 2, random: 0.5, status: 503, retryAfter: "99999", expected: 600_000 },
    { attempt: 2, random: 0.5, status: 429, retryAfter: "1", expected: 300_000 },
    { attempt: 2, random: 0.5, status: 500, retryAfter: "600", expected: 300_000 },
    { attempt: 2, random: 0.5, status: 429, retryAfter: "garbage", expected: 300_000 },
    { attempt: 2, random: 0.5, status: 503, retryAfter: new Date(now.getTime() + 450_000).toUTCString(), expected: 450_000 },
  ])("attempt $attempt, random $random, status $status, Retry-After $retryAfter → $expected", (row) => {
    const next = nextAttemptAt({ ...row, now, schedule: DEFAULT_RETRY_SCHEDULE_MS, random: () => row.random });
    expect(next).toEqual(row.expected === null ? null : at(row.expected));
  });

  it("spans about three days over ten attempts", () => {
    const total = DEFAULT_RETRY_SCHEDULE_MS.reduce((a, b) => a + b, 0);
    expect(total / 3_600_000).toBeGreaterThan(75);
    expect(total / 3_600_000).toBeLessThan(80);
    expect(DEFAULT_RETRY_SCHEDULE_MS).toHaveLength(9);
  });
});

describe("parseRetrySchedule", () => {
  it("reads units", () => {
    expect(parseRetrySchedule("1s, 2s,500ms,5m,2h,1d")).toEqual({ ok: true, value: [1000, 2000, 500, 300_000, 7_200_000, 86_400_000] });
  });
  it.each(["", "1", "5x", "1s,,2s", "-1s", "1.5s"])("rejects %j", (text) => {
    expect(parseRetrySchedule(text).ok).toBe(false);
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and dates, ignores junk", () => {
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(new Date(now.getTime() - 5000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
  });
});
