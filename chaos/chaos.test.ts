import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";

let run: ChildProcess | undefined;

// A run the test gave up on (its timeout) is told to stop, so that its Lumenpay processes and PostgreSQL
// do not go on taking the machine's CPU from the rest of the suite.
afterAll(async () => {
  if (run && run.exitCode === null && run.signalCode === null) {
    const exited = once(run, "exit");
    run.kill("SIGTERM");
    await exited;
  }
}, 60_000);

/**
 * The short chaos run (`npm run chaos -- --short`) as part of the suite: a thousand payments through two
 * API processes and a deliver process while they are SIGKILLed, PostgreSQL restarts and the network
 * pauses, every state then checked against the network's own ledger, with the fuzz stage throughout.
 * It runs as its own process, as the script does, and uses the built server (the suite's global setup builds it).
 */
it("loses, double-confirms and mis-states nothing, and the fuzzer breaks nothing, while processes are killed", { timeout: 900_000 }, async () => {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("run.ts", import.meta.url)), "--short"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  run = child;
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  // The run's own summary (or, if it never got there, how it ended) in the suite's log.
  const summary = output.indexOf("\nchaos run");
  console.log(summary >= 0 ? output.slice(summary) : output.slice(-4000));
  expect(output).toMatch(/^PASSED$/m);
  expect(code).toBe(0);
});
