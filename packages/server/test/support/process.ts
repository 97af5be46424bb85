import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/**
 * The `lumenpay` CLI as users run it: the package's `bin` over dist/ with plain node (node's arguments
 * before the CLI's own). The suite's global setup builds first; starting from the sources through tsx
 * cost each of the suite's ~200 child processes 0.7 s of CPU more.
 */
export const LUMENPAY_BIN = [fileURLToPath(new URL("../../bin/lumenpay.js", import.meta.url))];

/** Only what a test sets (plus PATH and HOME), so a developer's own DATABASE_URL or PORT never leaks in. */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs `lumenpay <args>` to completion. */
export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runCliWithStdin(args, env, undefined);
}

/** Runs `lumenpay <args>` to completion with `stdin` piped to it (undefined: no stdin at all). */
export function runCliWithStdin(args: string[], env: Record<string, string>, stdin: string | undefined): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...LUMENPAY_BIN, ...args], { env: childEnv(env), stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    child.stdin?.end(stdin);
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export interface ServerProcess {
  child: ChildProcess;
  /** Resolves with the first stdout JSON log line matching `match`. */
  waitForLog(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exited: Promise<Exit>;
  /** Everything written to stderr so far, to explain a failure. */
  stderr(): string;
  /** Warnings and errors logged so far, to explain a failure. */
  problems(): string;
}

/**
 * Runs `lumenpay <args>` on a pseudo-terminal (util-linux `script`), as a person at a terminal would:
 * each answer is typed, with Enter, once its prompt has appeared. Returns everything the terminal showed
 * (stdout and stderr together, and any echo of what was typed).
 */
export function runCliOnTerminal(args: string[], env: Record<string, string>, answers: Array<{ prompt: string; type: string }>) {
  const command = [process.execPath, ...LUMENPAY_BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], { env: childEnv(env), stdio: ["pipe", "pipe", "pipe"] });
  let screen = "";
  let answered = 0;
  let from = 0;
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    screen += d;
    const next = answers[answered];
    const at = next ? screen.indexOf(next.prompt, from) : -1;
    // Typed only once its prompt shows: before that, the terminal would still echo (raw mode is not set yet).
    if (next && at >= 0) {
      from = at + next.prompt.length;
      answered++;
      child.stdin.write(`${next.type}\r`);
    }
  });
  return new Promise<{ code: number | null; screen: string }>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, screen }));
  });
}

/** Starts `lumenpay start [args]` as a real child process; its stdout carries pino's JSON lines. */
export function startServerProcess(env: Record<string, string>, args: string[] = []): ServerProcess {
  return startLongRunning(["start", ...args], env);
}

/** Starts `lumenpay network start [args]`, the local network as a process of its own. */
export function startNetworkProcess(env: Record<string, string>, args: string[] = []): ServerProcess {
  return startLongRunning(["network", "start", ...args], env);
}

/** Starts a command that runs until signalled (`start`, `network start`) as a real child process. */
function startLongRunning(args: string[], env: Record<string, string>): ServerProcess {
  const child = spawn(process.execPath, [...LUMENPAY_BIN, ...args], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  const seen: Record<string, unknown>[] = [];
  const waiters: { match: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  createInterface({ input: child.stdout! }).on("line", (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    seen.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  // "close", not "exit": by then every line the process wrote has been read.
  const exited = new Promise<Exit>((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  return {
    child,
    exited,
    stderr: () => stderr,
    problems: () =>
      [stderr, ...seen.filter((line) => Number(line.level) >= 40).map((line) => JSON.stringify(line))].filter(Boolean).join("\n"),
    waitForLog(match) {
      const found = seen.find(match);
      if (found) return Promise.resolve(found);
      return Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.push({ match, resolve })),
        exited.then((exit) => {
          throw new Error(`lumenpay exited (${exit.code ?? exit.signal}) before the expected log line; stderr: ${stderr}`);
        }),
      ]);
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago), for a server that does not answer. */
/**
 * Runs `script` (an ES module importing the sources through tsx) as a child process with `env`, its
 * output inherited; `cleanups` gets a function that SIGTERMs it unless it has ended, and waits.
 */
export function spawnScript(script: string, env: Record<string, string>, cleanups: Array<() => Promise<unknown>>): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "--eval", script], {
    cwd: fileURLToPath(new URL("../../../..", import.meta.url)),
    env: childEnv(env),
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  });
  return child;
}

/** A source file of the server, as a module specifier a spawned script can import. */
export const sourceModule = (path: string) => JSON.stringify(fileURLToPath(new URL(`../../src/${path}`, import.meta.url)));

export async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
