import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

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
