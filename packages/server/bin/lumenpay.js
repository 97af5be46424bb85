#!/usr/bin/env node
// The compiled CLI (npm run build, which npm ci runs through the root's prepare script).
import { existsSync } from "node:fs";

const cli = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(cli)) {
  console.error("Lumenpay is not built: run `npm run build` in the repository first.");
  process.exit(1);
}
await import(cli.href);
