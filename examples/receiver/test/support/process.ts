import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export type JsonLine = Record<string, unknown>;

export interface JsonProcess {
  child: ChildProcess;
  /** Every JSON line written to stdout so far (other lines are skipped). */
  lines: JsonLine[];
  /** The first line matching `match`, already written or still to come; rejects if the process ends first. */
  waitForLine(match: (line: JsonLine) => boolean): Promise<JsonLine>;
  exited: Promise<number | null>;
  stderr(): string;
  stdout(): string;
}

/** Runs `node <args>` with only `env` (plus PATH and HOME), so the developer's own variables never leak in. */
export function spawnNode(args: string[], { env, cwd }: { env: Record<string, string>; cwd?: string }): JsonProcess {
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: JsonLine[] = [];
  const waiters = new Set<() => void>();
  let stdout = "";
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  createInterface({ input: child.stdout! }).on("line", (text) => {
    stdout += `${text}\n`;
    try {
      lines.push(JSON.parse(text) as JsonLine);
    } catch {
      return;
    }
    waiters.forEach((wake) => wake());
  });
  // "close", not "exit": by then every line the process wrote has been read.
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    stderr: () => stderr,
    stdout: () => stdout,
    waitForLine(match) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (!found) return;
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        check();
        void exited.then((code) => reject(new Error(`the process exited (${code}) before the expected line; stderr: ${stderr}`)));
      });
    },
  };
}

/** Runs `node <args>` to completion. */
export async function runNode(args: string[], options: { env: Record<string, string>; cwd?: string }) {
  const run = spawnNode(args, options);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr(), lines: run.lines };
}
