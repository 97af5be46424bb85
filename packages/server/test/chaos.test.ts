import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { childEnv } from "./support/process.js";

/**
 * `npm run chaos -- --short`: a thousand payments through separate processes (two API processes and a
 * deliver process over a PostgreSQL of its own, the local network, three receivers) while each process is
 * SIGKILLed and restarted, PostgreSQL restarts and the network pauses past an expiry; every payment is then
 * checked against the network's own ledger and every event against what each receiver verified.
 */
describe("npm run chaos -- --short", () => {
  it("loses nothing, confirms nothing twice and mis-states nothing", { timeout: 10 * 60_000 }, async () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", "chaos/run.ts", "--short"], { cwd: root, env: childEnv({}), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    const summary = out.slice(out.indexOf("chaos run (short)"));
    expect(code, summary || out.slice(-4000)).toBe(0);
    expect(summary).toMatch(/^mis-stated payments: 0; wrong or missing settlements: 0; payments without exactly one payment.confirmed when confirmed \(none otherwise\): 0$/m);
    expect(summary).toMatch(/lost per receiver healthy 0, flaky 0, late 0;/);
    expect(summary).toMatch(/signatures that did not verify: 0$/m);
    expect(summary).toMatch(/^PASSED$/m);
  });
});
