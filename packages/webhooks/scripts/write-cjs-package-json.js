// Runs after tsc (root `npm run build`, and `prepack`). The package is "type": "module", so Node
// would load dist/cjs/*.js as ES modules; this nearer package.json makes them CommonJS.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = join(dirname(fileURLToPath(import.meta.url)), "../dist/cjs");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);
