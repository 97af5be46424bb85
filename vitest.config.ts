import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    globalSetup: ["packages/server/test/support/global-setup.ts"],
    pool: "forks",
    // Vitest's default is one fork per core minus one: a single fork on a 2-core machine. Most test
    // time is spent waiting (PostgreSQL, child processes, Chromium), so two forks at least.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    minWorkers: 1,
    reporters: ["default", "./test-summary-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests hit real Postgres and real sockets; never let a test silently pass after a hang.
    teardownTimeout: 20_000,
  },
});
