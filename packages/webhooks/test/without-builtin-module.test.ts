import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const sdk = fileURLToPath(new URL("../src/index.ts", import.meta.url));

describe("on Node releases without process.getBuiltinModule (Node 18)", () => {
  it("loads node:crypto without a top-level await: signing waits for `ready`, verifying waits by itself", () => {
    // A fresh process without getBuiltinModule and the crypto global when the SDK loads, as on Node 18.
    const script = `
      delete process.getBuiltinModule;
      delete globalThis.crypto;
      const { Webhook, generateTestHeaders, ready } = await import(${JSON.stringify(sdk)});
      let early;
      try { generateTestHeaders({ payload: "{}", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }); } catch (error) { early = error.message; }
      await ready;
      const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
      const payload = JSON.stringify({ id: "evt_1", type: "webhook.test", created_at: "", api_version: "", data: { object: {} } });
      const headers = generateTestHeaders({ payload, secret });
      const event = await new Webhook({ secrets: [secret] }).verify(payload, headers);
      console.log(typeof process.getBuiltinModule, typeof globalThis.crypto, event.id, early);
    `;
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(out.trim()).toBe("undefined undefined evt_1 generateTestHeaders needs node:crypto, which is still loading on this runtime: await ready first");
  });
});
