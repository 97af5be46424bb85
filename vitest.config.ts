import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    globalSetup: ["packages/server/test/support/global-setup.ts"],
    pool: "forks",
    reporters: ["default", "./test-summary-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests hit real Postgres and real sockets; never let a test silently pass after a hang.
    teardownTimeout: 20_000,
  },
});
