import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The package as npm publishes it: packed (prepack builds it), installed into a project outside the
// workspace, then loaded from ESM and CommonJS, type-checked and bundled the way its users will.

const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
const BUNDLE_BUDGET_BYTES = 8 * 1024;

const execFileAsync = promisify(execFile);

// npm sets npm_* variables (the workspace's prefix among them) for `npm test`; left in place, they
// would point the npm commands below at the workspace instead of the temporary project.
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));

/** The command's stdout; a failure carries its whole output (tsc reports errors on stdout). */
async function run(command: string, args: string[], cwd: string): Promise<string> {
  try {
    return (await execFileAsync(command, args, { cwd, env, encoding: "utf8" })).stdout;
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed:\n${stdout}${stderr}`, { cause: error });
  }
}

// The versions the workspace already uses, so the install is served from the npm cache.
const workspaceRequire = createRequire(import.meta.url);
const versionOf = (name: string): string => (workspaceRequire(`${name}/package.json`) as { version: string }).version;

interface PackResult {
  filename: string;
  size: number;
  files: Array<{ path: string }>;
}

// One body for both module formats; each script's first lines load the modules. Given "Node 18" it runs
// as on Node 18 (no process.getBuiltinModule, no crypto global), where the SDK loads node:crypto with
// a dynamic import: generateTestHeaders works only once that import succeeded.
const VERIFY_BODY = `
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const payload = JSON.stringify({ id: "evt_1", type: "payment.confirmed", created_at: "2025-01-01T00:00:00Z", api_version: "2025-01-01", data: { object: { amount_received: "10" } } });
const signer = new Signer(secret);
const sentAt = new Date();
const headers = {
  "webhook-id": "evt_1",
  "webhook-timestamp": String(Math.floor(sentAt.getTime() / 1000)),
  "webhook-signature": signer.sign("evt_1", sentAt, payload),
};
const webhook = new Webhook({ secrets: [secret] });
const event = await webhook.verify(payload, headers);
const tampered = await webhook.verify(payload.replace('"10"', '"1000"'), headers).then(
  () => "accepted",
  (error) => (error instanceof WebhookVerificationError ? error.name : String(error)),
);
await ready;
signer.verify(payload, generateTestHeaders({ payload, secret })); // throws if standardwebhooks disagrees
console.log(JSON.stringify({ entry: entry.split("/node_modules/@lumenpay/webhooks/")[1], id: event.id, tampered }));
`;

const AS_ON_NODE_18 = `if (process.argv[2] === "Node 18") { delete process.getBuiltinModule; delete globalThis.crypto; }`;

const SCRIPTS = {
  "verify.mjs": `import { fileURLToPath } from "node:url";
${AS_ON_NODE_18}
const { Webhook: Signer } = await import("standardwebhooks");
const { Webhook, WebhookVerificationError, generateTestHeaders, ready } = await import("@lumenpay/webhooks");
const entry = fileURLToPath(import.meta.resolve("@lumenpay/webhooks"));
${VERIFY_BODY}`,
  "verify.cjs": `${AS_ON_NODE_18}
const { Webhook: Signer } = require("standardwebhooks");
const { Webhook, WebhookVerificationError, generateTestHeaders, ready } = require("@lumenpay/webhooks");
const entry = require.resolve("@lumenpay/webhooks");
(async () => {${VERIFY_BODY}})().catch((error) => { console.error(error); process.exitCode = 1; });`,
  // ts-expect-error lines fail the check if the package's types resolve to `any`.
  "types.mts": `import { createRouter, fetchHandler, Webhook, type EventOf, type WebhookEvent } from "@lumenpay/webhooks";

const webhook = new Webhook({ secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] });
export const event: WebhookEvent = await webhook.verify("{}", new Headers());
const router = createRouter({ webhook }).on("payment.confirmed", (confirmed: EventOf<"payment.confirmed">) => {
  const amount: string = confirmed.data.object.amount_received;
  return amount;
});
export const handler: (request: Request) => Promise<Response> = fetchHandler(router);
// @ts-expect-error secrets are strings
new Webhook({ secrets: [42] });
`,
  "types.cts": `import { createServer } from "node:http";
import { createRouter, nodeHandler, Webhook, WebhookVerificationError } from "@lumenpay/webhooks";

const webhook = new Webhook({ secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] });
export const server = createServer(nodeHandler(createRouter({ webhook })));
export async function eventId(body: string, headers: Record<string, string>): Promise<string> {
  try {
    return (await webhook.verify(body, headers)).id;
  } catch (error) {
    if (error instanceof WebhookVerificationError) return "rejected";
    throw error;
  }
}
// @ts-expect-error toleranceSeconds is a number
new Webhook({ secrets: [], toleranceSeconds: "300" });
`,
  "tsconfig.json": JSON.stringify({
    compilerOptions: { module: "nodenext", target: "es2022", lib: ["es2022"], types: ["node"], strict: true, noEmit: true },
    files: ["types.mts", "types.cts"],
  }),
};

/** Minified, gzipped size of a browser bundle of `contents`, resolved from the installed package. */
async function browserBundleSize(contents: string, project: string): Promise<number> {
  const result = await build({
    stdin: { contents, resolveDir: project, loader: "js" },
    bundle: true,
    minify: true,
    platform: "browser",
    format: "esm",
    write: false,
  });
  return gzipSync(result.outputFiles[0]!.contents).byteLength;
}

describe("@lumenpay/webhooks as published", () => {
  let work: string;
  let project: string;
  let packed: PackResult;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "lumenpay-webhooks-package-"));
    [packed] = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", work], PACKAGE_DIR)) as [PackResult];
    project = join(work, "project");
    await mkdir(project);
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true }));
    await run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        join(work, packed.filename),
        `standardwebhooks@${versionOf("standardwebhooks")}`,
        `typescript@${versionOf("typescript")}`,
        `@types/node@${versionOf("@types/node")}`,
      ],
      project,
    );
    await Promise.all(Object.entries(SCRIPTS).map(([name, text]) => writeFile(join(project, name), text)));
  }, 50_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("holds both builds with their declarations, the README, the licence and nothing else", () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "package.json",
        "README.md",
        "LICENSE",
        "dist/esm/index.js",
        "dist/esm/index.d.ts",
        "dist/cjs/index.js",
        "dist/cjs/index.d.ts",
        "dist/cjs/package.json",
      ]),
    );
    expect(paths.filter((path) => !/^dist\/(esm|cjs)\/.+\.(js|d\.ts|js\.map)$/.test(path)).sort()).toEqual([
      "LICENSE",
      "README.md",
      "dist/cjs/package.json",
      "package.json",
    ]);
    const manifest = workspaceRequire(join(project, "node_modules/@lumenpay/webhooks/package.json")) as Record<string, unknown>;
    expect(manifest.dependencies).toBeUndefined();
  });

  it.each([
    ["ESM", "this Node", "verify.mjs", "dist/esm/index.js"],
    ["ESM", "Node 18", "verify.mjs", "dist/esm/index.js"],
    ["CommonJS", "this Node", "verify.cjs", "dist/cjs/index.js"],
    ["CommonJS", "Node 18", "verify.cjs", "dist/cjs/index.js"],
  ])("from %s, as on %s, verifies a standardwebhooks delivery and rejects a tampered one", async (_format, runtime, script, entry) => {
    const output = await run(process.execPath, [script, runtime], project);
    expect(JSON.parse(output)).toEqual({ entry, id: "evt_1", tampered: "NoMatchingSignatureError" });
  });

  it("type-checks from .mts and .cts under module nodenext, each format with its own declarations", async () => {
    // tsc exits non-zero on any error, and run() then throws with its report.
    const listed = await run(process.execPath, ["node_modules/typescript/bin/tsc", "-p", ".", "--listFiles"], project);
    expect(listed).toContain("/node_modules/@lumenpay/webhooks/dist/esm/index.d.ts");
    expect(listed).toContain("/node_modules/@lumenpay/webhooks/dist/cjs/index.d.ts");
  }, 30_000);

  it(`bundles for browsers and Workers in under ${BUNDLE_BUDGET_BYTES / 1024} KB minified and gzipped`, async () => {
    // What a Workers receiver imports: bundlers leave out the rest (the Node adapters, signing).
    const receiver = await browserBundleSize(
      'export { Webhook, WebhookVerificationError, createRouter, fetchHandler } from "@lumenpay/webhooks";',
      project,
    );
    const wholeEntry = await browserBundleSize('export * from "@lumenpay/webhooks";', project);
    console.log(
      `@lumenpay/webhooks: packed ${packed.size} B; min+gz for the browser: Workers receiver ${receiver} B, whole entry ${wholeEntry} B`,
    );
    expect(receiver).toBeLessThan(BUNDLE_BUDGET_BYTES);
  });
});
