import { describe, expect, it } from "vitest";
import { MAX_RETRY_AFTER_MS, parseRetryAfter, retryDelay } from "../src/retry.js";

describe("retryDelay", () => {
  it.each([
    // retry, status, Retry-After (ms), random → delay (ms) or undefined (do not retry)
    [1, undefined, undefined, 0.5, 500],
    [2, 503, undefined, 0.5, 1000],
    [3, 500, undefined, 0.5, 2000],
    [5, 502, undefined, 0.5, 8000],
    [9, 502, undefined, 0.5, 8000],
    [1, 503, undefined, 0, 400],
    [1, 503, undefined, 0.999_999, 600],
    [1, 429, 3000, 0.5, 3000],
    [2, 503, 0, 0.5, 0],
    [1, 429, MAX_RETRY_AFTER_MS, 0.5, MAX_RETRY_AFTER_MS],
    [1, 429, MAX_RETRY_AFTER_MS + 1000, 0.5, undefined],
    [1, 400, undefined, 0.5, undefined],
    [1, 404, 1000, 0.5, undefined],
    [1, 409, undefined, 0.5, undefined],
    [1, 422, undefined, 0.5, undefined],
  ])("retry %i after %s (Retry-After %s ms, random %s) waits %s ms", (retry, status, retryAfterMs, random, expected) => {
    expect(retryDelay({ retry, status, retryAfterMs, random })).toBe(expected);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it.each([
    [null, undefined],
    ["0", 0],
    ["30", 30_000],
    [" 5 ", 5000],
    ["Thu, 01 Jan 2026 00:00:10 GMT", 10_000],
    ["Wed, 31 Dec 2025 23:59:00 GMT", 0],
    ["soon", undefined],
    ["-1", undefined],
  ])("reads %j as %s ms", (header, expected) => {
    expect(parseRetryAfter(header, now)).toBe(expected);
  });
});
