/**
 * Merges the printed output of several runs of one benchmark into one: where a line has the same
 * words in every run, each number that varies becomes "median (min–max)", with the first run's
 * decimals. A line whose words differ between runs is kept as the first run printed it.
 */
const NUMBER = /-?\d+(?:\.\d+)?/g;

export function medianLines(runs: string[][]): string[] {
  const lines = Math.min(...runs.map((r) => r.length));
  const merged: string[] = [];
  for (let i = 0; i < lines; i++) merged.push(mergeLine(runs.map((r) => r[i]!)));
  return merged.concat(runs[0]!.slice(lines));
}

function mergeLine(versions: string[]): string {
  // Numbers are padded to columns: a wider one shifts the spaces around it, not the words.
  const skeleton = (line: string) => line.replace(NUMBER, "#").replace(/\s+/g, " ");
  const first = versions[0]!;
  if (versions.some((v) => skeleton(v) !== skeleton(first))) return first;
  const numbers = versions.map((v) => v.match(NUMBER) ?? []);
  let index = 0;
  return first.replace(NUMBER, (text) => {
    const values = numbers.map((n) => Number(n[index]));
    index++;
    const decimals = text.includes(".") ? text.length - text.indexOf(".") - 1 : 0;
    const sorted = [...values].sort((a, b) => a - b);
    const min = sorted[0]!;
    const max = sorted.at(-1)!;
    if (min === max) return text;
    const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
    return `${median.toFixed(decimals)} (${min.toFixed(decimals)}–${max.toFixed(decimals)})`;
  });
}

/** Where `npm run chaos` writes its summary in BENCHMARKS.md: the last section, which `npm run bench` keeps as it is. */
const CHAOS_HEADING = "\n## npm run chaos";

/** Splits a report into its benchmarks' part and the chaos run's section (empty when there is none). */
export function splitChaosSection(report: string): { benchmarks: string; chaos: string } {
  const at = report.indexOf(CHAOS_HEADING);
  return at < 0 ? { benchmarks: report, chaos: "" } : { benchmarks: report.slice(0, at), chaos: report.slice(at + 1) };
}

/** `report` with its chaos section replaced by one made of `lines` (under the heading). */
export function withChaosSection(report: string, lines: string[]): string {
  return `${splitChaosSection(report).benchmarks.trimEnd()}\n\n${CHAOS_HEADING.trim()}\n${lines.join("\n")}\n`;
}
