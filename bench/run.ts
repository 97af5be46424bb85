/**
 * `npm run bench [-- name…]`: runs each benchmark (a folder with index.ts exporting `run()`), in turn,
 * and prints its figures. Benchmarks use BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an
 * embedded PostgreSQL in .lumenpay/bench-postgres.
 */
import { readdir } from "node:fs/promises";

const here = new URL(".", import.meta.url);
const all = (await readdir(here, { withFileTypes: true })).filter((d) => d.isDirectory() && d.name !== "support").map((d) => d.name).sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`Unknown benchmark(s): ${unknown.join(", ")}. Available: ${all.join(", ")}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : all) {
  console.log(`\n## bench/${name}`);
  const mod = (await import(new URL(`./${name}/index.ts`, here).href)) as { run(): Promise<void> };
  await mod.run();
}
