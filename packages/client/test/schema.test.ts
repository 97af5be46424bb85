import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSchema, publishedDocument, readSchemaFile } from "../scripts/generate.js";
import { buildTestApp, type TestApp } from "../../server/test/support/app.js";

/** The generated types against what the server publishes now, so neither changes alone. */

const REGENERATE = "node --import tsx packages/client/scripts/generate.ts";

/** Where two texts first differ, as a line number and both lines; undefined when they are equal. */
function firstDifference(actual: string, expected: string): string | undefined {
  if (actual === expected) return undefined;
  const a = actual.split("\n");
  const e = expected.split("\n");
  const line = e.findIndex((text, i) => a[i] !== text);
  const at = line === -1 ? e.length : line;
  return `line ${at + 1}:\n  schema.ts has:       ${a[at] ?? "(end of file)"}\n  the server implies: ${e[at] ?? "(end of file)"}`;
}

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

describe("src/schema.ts", () => {
  it("is what openapi-typescript makes of the server's OpenAPI document today", async () => {
    const difference = firstDifference(await readSchemaFile(), await generateSchema());
    expect(
      difference,
      `packages/client/src/schema.ts no longer matches the server's /openapi.json; regenerate it with \`${REGENERATE}\` and review the client. First difference at ${difference}`,
    ).toBeUndefined();
  });

  it("is generated from the same document the running server publishes", async () => {
    const served = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(await publishedDocument()).toEqual(served);
  });
});
