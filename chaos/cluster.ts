/**
 * The chaos run's processes, each a real OS process on loopback: a PostgreSQL of the run's own (so it
 * can be restarted), the standalone local network, and Lumenpay processes that can be SIGKILLed and
 * started again on the same port.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../packages/server/src/db/embedded.js";
import { closedPort, startNetworkProcess, startServerProcess, type ServerProcess } from "../packages/server/test/support/process.js";

const quiet = { info: () => undefined, warn: () => undefined };

/** A PostgreSQL in a directory of the run's own; `restart` keeps its data and port. */
export class Database {
  private constructor(
    private readonly dataDir: string,
    private postgres: EmbeddedPostgres,
  ) {}

  static async start(root: string): Promise<Database> {
    const dataDir = path.join(root, "postgres");
    return new Database(dataDir, await startEmbeddedPostgres({ dataDir, log: quiet }));
  }

  get url(): string {
    return this.postgres.url;
  }

  async stop(): Promise<void> {
    await this.postgres.stop();
  }

  async start(): Promise<void> {
    this.postgres = await startEmbeddedPostgres({ dataDir: this.dataDir, log: quiet });
  }
}

/** The local network as a process of its own; SIGSTOP/SIGCONT pause it without losing its chain. */
export interface Network {
  horizonUrl: string;
  /** Where it journals every ledger with transactions (`ledger.jsonl`): the oracle's ledger. */
  dataDir: string;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export async function startNetwork(root: string): Promise<Network> {
  const dataDir = path.join(root, "network");
  const port = await closedPort();
  const rpcPort = await closedPort();
  const child = startNetworkProcess({ LOG_LEVEL: "info" }, ["--port", String(port), "--rpc-port", String(rpcPort), "--data-dir", dataDir]);
  const ready = await child.waitForLog((line) => typeof line.horizon_url === "string");
  return {
    horizonUrl: ready.horizon_url as string,
    dataDir,
    pause: () => child.child.kill("SIGSTOP"),
    resume: () => child.child.kill("SIGCONT"),
    stop: async () => {
      child.child.kill("SIGCONT");
      child.child.kill("SIGTERM");
      await child.exited;
    },
  };
}

/** One `lumenpay start` process with fixed roles and port, which the run kills and starts again. */
export class Lumenpay {
  private process: ServerProcess | undefined;
  readonly url: string;
  /** Exits nobody asked for (a crash), with their code or signal and the end of stderr. */
  readonly crashes: string[] = [];

  private constructor(
    readonly name: string,
    private readonly env: Record<string, string>,
    private readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async create(name: string, env: Record<string, string>): Promise<Lumenpay> {
    return new Lumenpay(name, env, await closedPort());
  }

  get pid(): number | undefined {
    return this.process?.child.pid;
  }

  async start(): Promise<void> {
    const started = startServerProcess({ ...this.env, PORT: String(this.port) });
    this.process = started;
    void started.exited.then((exit) => {
      if (this.process === started) this.crashes.push(`exited ${exit.code ?? exit.signal}: ${started.stderr().slice(-2000)}`);
    });
    await started.waitForLog((line) => typeof line.url === "string" && line.port === this.port);
  }

  /** SIGKILL: no shutdown, no drain; whatever it held in memory is gone. */
  kill(): Promise<void> {
    return this.end("SIGKILL");
  }

  stop(): Promise<void> {
    return this.end("SIGTERM");
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const running = this.process;
    if (!running) return;
    // Forgotten first, so its exit does not count as a crash.
    this.process = undefined;
    running.child.kill(signal);
    await running.exited;
  }

  /** Warnings and errors it logged, to explain a failure. */
  problems(): string {
    return this.process?.problems() ?? "";
  }
}

/** The environment every Lumenpay process of the run shares. */
export function lumenpayEnv(root: string, name: string, db: Database, network: Network, retrySchedule: string, encryptionKey: string): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    LOG_LEVEL: "info",
    STELLAR_NETWORK: "local",
    HORIZON_URL: network.horizonUrl,
    LUMENPAY_DATA_DIR: path.join(root, name),
    LUMENPAY_ENCRYPTION_KEY: encryptionKey,
    WEBHOOK_ALLOW_HTTP: "true",
    WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
    WEBHOOK_TIMEOUT_MS: "1000",
    WEBHOOK_LEASE_MS: "2500",
    WEBHOOK_RETRY_SCHEDULE: retrySchedule,
    API_RATE_LIMIT_PER_MINUTE: "10000000",
  };
}

export const newEncryptionKey = () => randomBytes(32).toString("base64");

/** A directory for the run, readable by the postgres user when running as root. */
export async function runDirectory(): Promise<{ root: string; remove(): Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), "lumenpay-chaos-"));
  await chmod(root, 0o755);
  return { root, remove: () => rm(root, { recursive: true, force: true }) };
}
