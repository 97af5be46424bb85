import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Networks } from "@stellar/stellar-sdk";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createMetrics } from "../src/metrics/registry.js";
import { createFollowerMetrics } from "../src/stellar/follower.js";
import { createIngestMetrics } from "../src/stellar/ingest.js";
import { createRpcSource } from "../src/stellar/rpc-source.js";
import { createWebhookMetrics } from "../src/webhooks/metrics.js";

/** docs/alerts.yml: the Prometheus rules docs/scaling.md recommends. */
const docs = fileURLToPath(new URL("../../../docs/", import.meta.url));
const text = readFileSync(`${docs}alerts.yml`, "utf8");

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}
const groups = (parse(text) as { groups: Array<{ name: string; rules: Rule[] }> }).groups;
const rules = groups.flatMap((g) => g.rules);

/** Every series name a process can export: each metric's own, a histogram's _bucket/_count/_sum. */
async function exportedSeries(): Promise<Set<string>> {
  // Nothing here connects: gauges read the pool only when scraped.
  const pool = new pg.Pool({ connectionString: "postgres://127.0.0.1:1/none" });
  const { registry } = createMetrics(pool);
  createWebhookMetrics(registry, pool);
  createIngestMetrics(registry);
  createFollowerMetrics(registry);
  createRpcSource({ url: "http://127.0.0.1:1", networkPassphrase: Networks.STANDALONE, registry });
  const names = new Set<string>();
  for (const metric of registry.getMetricsAsArray() as unknown as Array<{ name: string; type: string }>) {
    names.add(metric.name);
    if (metric.type === "histogram") for (const suffix of ["_bucket", "_count", "_sum"]) names.add(metric.name + suffix);
  }
  await pool.end();
  return names;
}

/** The series an expression selects: names followed by a label matcher or used bare, minus PromQL's own words. */
function seriesNamed(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/\b(?:by|without)\s*\([^)]*\)/g, "")
    .replace(/\[[^\]]*\]/g, "");
  const words = bare.match(/\b[a-z_][a-z0-9_]*\b(?=\s*\{|\s*[><=)]|\s*$|\s+(?:and|or)\b)/g) ?? [];
  const promql = new Set(["and", "or", "unless"]);
  return [...new Set(words.filter((w) => !promql.has(w)))];
}

function promtool(): boolean {
  try {
    execFileSync("promtool", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("docs/alerts.yml", () => {
  it("names an alert, a severity, a summary and a description for every rule, each alert once", () => {
    expect(rules.length).toBeGreaterThanOrEqual(10);
    for (const rule of rules) {
      expect(rule.alert).toMatch(/^Lumenpay[A-Z]\w+$/);
      expect(["critical", "warning", "info"]).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length).toBeGreaterThan(10);
      expect(rule.annotations.description.length).toBeGreaterThan(10);
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it("watches only series the server exports (and Prometheus's own `up`)", async () => {
    const exported = await exportedSeries();
    exported.add("up");
    const named = rules.flatMap((r) => seriesNamed(r.expr).map((series) => ({ alert: r.alert, series })));
    expect(named.length).toBeGreaterThanOrEqual(rules.length);
    expect(named.filter(({ series }) => !exported.has(series))).toEqual([]);
    // The reader: a name the server does not export is caught.
    expect(seriesNamed('max(webhook_queue_oldest_age_second{job="lumenpay"}) > 300').filter((s) => !exported.has(s))).toEqual(["webhook_queue_oldest_age_second"]);
  });

  it("is accepted by promtool, whose rule tests fire each paging alert on the series that should fire it", () => {
    // promtool comes with Debian's prometheus package, which .ci/run installs; elsewhere the checks above stand alone.
    if (!promtool()) return;
    expect(execFileSync("promtool", ["check", "rules", `${docs}alerts.yml`], { encoding: "utf8" })).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(execFileSync("promtool", ["test", "rules", `${docs}alerts.test.yml`], { encoding: "utf8" })).toContain("SUCCESS");
  });
});
