import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");
const envExample = read("../../../.env.example");
const operations = read("../../../docs/operations.md");
// Every variable config.ts reads is named in a string literal there.
const variables = [...new Set([...read("../src/config.ts").matchAll(/"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|PORT|HOST)"/g)].map((m) => m[1]!))];

describe("configuration documentation", () => {
  it("names every variable the config reads, in .env.example and docs/operations.md", () => {
    expect(variables.length).toBeGreaterThan(30);
    const missing = variables.flatMap((name) => [
      ...(envExample.includes(name) ? [] : [`.env.example: ${name}`]),
      ...(operations.includes(`\`${name}\``) ? [] : [`docs/operations.md: ${name}`]),
    ]);
    expect(missing).toEqual([]);
  });

  it("ships an .env.example whose values are a valid configuration", () => {
    const env = Object.fromEntries([...envExample.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(Object.keys(env).length).toBeGreaterThan(20);
    expect(() => loadConfig(env)).not.toThrow();
  });
});
