import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { medianLines, splitChaosSection, withChaosSection } from "../../../bench/support/report.js";

describe("the benchmark report", () => {
  it("gives each varying number as median (min–max) with the first run's decimals, keeping constant ones", () => {
    const runs = [
      ["20000 events", "lumenpay   861 req/s   p50   36.19 ms", "ratio: 14.4 %"],
      ["20000 events", "lumenpay   350 req/s   p50   85.39 ms", "ratio: 10.1 %"],
      ["20000 events", "lumenpay   541 req/s   p50   54.80 ms", "ratio: 12.0 %"],
    ];
    expect(medianLines(runs)).toEqual([
      "20000 events",
      "lumenpay   541 (350–861) req/s   p50   54.80 (36.19–85.39) ms",
      "ratio: 12.0 (10.1–14.4) %",
    ]);
  });

  it("keeps the first run's line where the words differ, and an even number of runs takes the middle two", () => {
    expect(medianLines([["a 1", "skipped"], ["a 3", "ran 2 times"]])).toEqual(["a 2 (1–3)", "skipped"]);
    expect(medianLines([["x"], ["x", "extra"]])).toEqual(["x"]);
  });

  it("matches lines whose numbers were padded to other widths", () => {
    expect(medianLines([["p99    7.44 ms"], ["p99   11.02 ms"], ["p99    9.16 ms"]])).toEqual(["p99    9.16 (7.44–11.02) ms"]);
  });

  it("keeps the chaos run's section last, replacing only it", () => {
    const benches = "# Benchmarks\n\n## bench/api\nfigures\n";
    const once = withChaosSection(benches, ["run 1: PASSED"]);
    expect(once).toBe("# Benchmarks\n\n## bench/api\nfigures\n\n## npm run chaos\nrun 1: PASSED\n");
    const twice = withChaosSection(once, ["run 2: PASSED"]);
    expect(twice).toBe("# Benchmarks\n\n## bench/api\nfigures\n\n## npm run chaos\nrun 2: PASSED\n");
    expect(splitChaosSection(twice)).toEqual({ benchmarks: "# Benchmarks\n\n## bench/api\nfigures\n", chaos: "## npm run chaos\nrun 2: PASSED\n" });
    expect(splitChaosSection(benches)).toEqual({ benchmarks: benches, chaos: "" });
  });

  it("holds each benchmark's analysis.md word for word in its section of BENCHMARKS.md", () => {
    const bench = new URL("../../../bench/", import.meta.url);
    const report = readFileSync(new URL("../BENCHMARKS.md", bench), "utf8");
    const names = readdirSync(bench, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(new URL(`${d.name}/analysis.md`, bench)));
    expect(names.length).toBeGreaterThan(0);
    for (const { name } of names) {
      const start = report.indexOf(`\n## bench/${name}\n`);
      expect(start, `BENCHMARKS.md has a section for bench/${name}`).toBeGreaterThan(-1);
      const end = report.indexOf("\n## ", start + 1);
      const section = report.slice(start, end === -1 ? undefined : end);
      expect(section, `bench/${name}/analysis.md is in its section`).toContain(readFileSync(new URL(`${name}/analysis.md`, bench), "utf8").trim());
    }
  });
});
