import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The usual order (longest or largest files first), but the short chaos run before everything: it is the
 * longest file and mostly waits on its own processes, so it overlaps the others instead of running
 * alone at the end (where a first run, with no durations cached, would put so small a file).
 */
class ChaosFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isChaos = (file: TestSpecification) => file.moduleId.includes("/chaos/");
    return [...sorted.filter(isChaos), ...sorted.filter((file) => !isChaos(file))];
  }
}

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts", "chaos/*.test.ts"],
    globalSetup: ["packages/server/test/support/global-setup.ts"],
    pool: "forks",
    // Test files share their forks instead of each starting a fresh one: importing the server, Fastify
    // and the Stellar SDK anew for each of ~110 files cost ~90 s of CPU ("collect"), and the whole run
    // went from 525-541 s to 457 s. So a test file leaves no global state behind: what it changes
    // (timers, environment, listeners, globals) it restores, and what it starts it stops.
    isolate: false,
    // Vitest's default is one fork per core minus one: a single fork on a 2-core machine. Most test
    // time is spent waiting (PostgreSQL, child processes, Chromium), so two forks at least.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    minWorkers: 1,
    reporters: ["default", "./test-summary-reporter.ts"],
    sequence: { sequencer: ChaosFirst },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests hit real Postgres and real sockets; never let a test silently pass after a hang.
    teardownTimeout: 20_000,
  },
});
