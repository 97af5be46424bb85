import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { migrate } from "../../src/db/migrate.js";


declare module "vitest" {
  export interface ProvidedContext {
    /** Admin URL of the test PostgreSQL server (its `postgres` database). */
    testDatabaseUrl: string;
    /** Migrated database that each test file clones; one per run, so concurrent runs never collide. */
    testTemplateDatabase: string;
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Runs once per `npm test`: builds the packages (the tests' child processes run the built CLI, and
 * tsc -b redoes only what changed), finds the PostgreSQL server (TEST_DATABASE_URL, or an embedded
 * one), and builds a migrated template database that every test file clones in milliseconds.
 */
export default async function setup(project: TestProject) {
  execFileSync("npm", ["run", "-s", "build"], { cwd: fileURLToPath(new URL("../../../..", import.meta.url)), stdio: "inherit" });
  let adminUrl = process.env.TEST_DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!adminUrl) {
    const { startEmbeddedPostgres } = await import("../../src/db/embedded.js");
    const embedded = await startEmbeddedPostgres({
      dataDir: fileURLToPath(new URL("../../../../.lumenpay/test-postgres", import.meta.url)),
      log: { info: () => undefined, warn: (m: string) => console.warn(m) },
    });
    adminUrl = embedded.url;
    stopEmbedded = embedded.stop;
  }
  const url = adminUrl;
  const template = `lumenpay_test_template_${process.pid}`;
  const adminQuery = async (sql: string) => {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(sql);
    } finally {
      await admin.end();
    }
  };
  await adminQuery(`drop database if exists ${template} with (force)`);
  await adminQuery(`create database ${template}`);
  const pool = new pg.Pool({ connectionString: withDatabase(url, template), max: 1 });
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  project.provide("testDatabaseUrl", url);
  project.provide("testTemplateDatabase", template);
  return async () => {
    await adminQuery(`drop database if exists ${template} with (force)`);
    await stopEmbedded?.();
  };
}
