// `npm run fuzz -- [--runs N] [--seed S]`: the API fuzzer of the test suite (api-fuzz.test.ts), longer.
// Without --seed a random one is used and printed, so a failure can be replayed with it.
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { runs: { type: "string", default: "20000" }, seed: { type: "string" } } });
const runs = Number(values.runs);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed)) {
  console.error("usage: npm run fuzz -- [--runs N] [--seed S]  (whole numbers)");
  process.exit(2);
}
const result = spawnSync("npx", ["vitest", "run", "packages/server/test/api-fuzz.test.ts"], {
  stdio: "inherit",
  env: { ...process.env, FUZZ_RUNS: String(runs), FUZZ_SEED: String(seed) },
});
process.exit(result.status ?? 1);
