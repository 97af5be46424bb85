/**
 * `npm run bench`: runs every benchmark (a folder with index.ts exporting `run()`) RUNS times, each
 * run in a process of its own, and writes BENCHMARKS.md: the machine, each printed figure as the
 * median of the runs with min–max, the peak RSS of each run's process, and the benchmark's
 * analysis.md (where the remaining time goes).
 * `npm run bench -- api delivery`: those benchmarks once, printed, no report.
 * `npm run bench -- --update verify`: that benchmark RUNS times, its section of BENCHMARKS.md
 * replaced and the others kept (each section says when it was measured).
 * Benchmarks use BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL in
 * .lumenpay/bench-postgres.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { medianLines, splitChaosSection } from "./support/report.js";
import { benchInt } from "./support/env.js";

const here = new URL(".", import.meta.url);
const RUNS = benchInt("BENCH_RUNS", 3);
const RSS_LINE = "peak RSS of this benchmark's process:";

const all = (await readdir(here, { withFileTypes: true })).filter((d) => d.isDirectory() && d.name !== "support").map((d) => d.name).sort();
const [first] = process.argv.slice(2);

if (first === "--child") {
  // One benchmark in this process; its peak RSS last, for the report.
  const name = process.argv[3]!;
  const mod = (await import(new URL(`./${name}/index.ts`, here).href)) as { run(): Promise<void> };
  await mod.run();
  console.log(`${RSS_LINE} ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  process.exit(0);
}

const update = process.argv[2] === "--update";
const wanted = process.argv.slice(update ? 3 : 2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`Unknown benchmark(s): ${unknown.join(", ")}. Available: ${all.join(", ")}`);
  process.exit(2);
}

/** Runs one benchmark in a child process, echoing its output; resolves with what it printed. */
function runChild(name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", name], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      process.stdout.write(d);
    });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`bench/${name} exited with ${code}`))));
  });
}

if (update && wanted.length === 0) {
  console.error("--update needs the benchmarks to measure again, e.g. npm run bench -- --update verify");
  process.exit(2);
}

if (wanted.length > 0 && !update) {
  for (const name of wanted) {
    console.log(`\n## bench/${name}`);
    await runChild(name);
  }
  process.exit(0);
}

const report = new URL("../BENCHMARKS.md", here);
const SECTION = "\n## bench/";
const current = splitChaosSection(existsSync(report) ? readFileSync(report, "utf8") : "");
/** The sections of the current report by benchmark name, kept when only some are measured again. */
const sections = new Map<string, string>(
  update
    ? current.benchmarks
        .split(SECTION)
        .slice(1)
        .map((text): [string, string] => [text.slice(0, text.indexOf("\n")), `## bench/${text.trimEnd()}`])
    : [],
);
for (const name of update ? wanted : all) {
  const outputs: string[] = [];
  for (let run = 1; run <= RUNS; run++) {
    console.log(`\n## bench/${name}, run ${run} of ${RUNS}`);
    outputs.push(await runChild(name));
  }
  const analysis = new URL(`./${name}/analysis.md`, here);
  sections.set(
    name,
    [
      `## bench/${name}`,
      `Measured on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "unknown CPU"}, Node.js ${process.version}.`,
      "```",
      medianLines(outputs.map((o) => o.trimEnd().split("\n"))).join("\n"),
      "```",
      existsSync(analysis) ? readFileSync(analysis, "utf8").trim() : "",
    ].join("\n"),
  );
}

const ordered = all.filter((name) => sections.has(name)).map((name) => sections.get(name)!);
await writeFile(report, `${await header()}\n\n${ordered.join("\n\n")}\n${current.chaos ? `\n${current.chaos.trimEnd()}\n` : ""}`);
console.log("\nwrote BENCHMARKS.md");

async function header(): Promise<string> {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const virtualisation = (() => {
    try {
      return execFileSync("systemd-detect-virt", { encoding: "utf8" }).trim();
    } catch {
      return /hypervisor/.test(readFileSync("/proc/cpuinfo", "utf8")) ? "a hypervisor (cpuinfo flag)" : "none seen";
    }
  })();
  let postgres = "embedded";
  const url = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    postgres = (await client.query<{ v: string }>("select version() as v")).rows[0]!.v.split(" on ")[0]!;
    await client.end();
  }
  return [
    "# Benchmarks",
    "",
    `Written by \`npm run bench\`; each section says when it was measured. Every figure is the median of ${RUNS} runs, each in a`,
    "process of its own, with the minimum and maximum in brackets; every ratio is against a baseline",
    "measured in the same run. Reproduce: `BENCH_DATABASE_URL=postgres://… npm run bench`; one benchmark,",
    "printed: `npm run bench -- api`; measured again into this file: `npm run bench -- --update api`.",
    "",
    "| machine | |",
    "|---|---|",
    `| CPU (of the latest run; each section names its own) | ${os.cpus().length} × ${cpu} |`,
    `| memory | ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB |`,
    `| virtualisation | ${virtualisation} |`,
    `| Node.js | ${process.version} |`,
    `| PostgreSQL | ${postgres} |`,
  ].join("\n");
}
