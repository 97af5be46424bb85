import type { ParseArgsConfig } from "node:util";
import type { Config } from "../config.js";
import { type Asset, parseAsset } from "../stellar/assets.js";

/** A mistake in how the command was typed: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CommandContext {
  values: Values;
  positionals: string[];
  config: Config;
  /** Writes one line to stdout. */
  print(line: string): void;
}

export interface Command {
  /** As typed: `start`, `merchants create`. */
  name: string;
  summary: string;
  /** Everything after `lumenpay <name>` in the usage line. */
  synopsis: string;
  /** One line per option, already aligned. */
  optionHelp: string[];
  options: NonNullable<ParseArgsConfig["options"]>;
  /** How many positional arguments the command takes (0 unless said); `optional`: all of them or none. */
  positionals?: { count: number; name: string; optional?: boolean };
  run(ctx: CommandContext): Promise<void>;
}

export const usageLine = (command: Command) => `Usage: lumenpay ${command.name} ${command.synopsis}`.trimEnd();

export function commandUsage(command: Command): string {
  const lines = [usageLine(command), "", command.summary];
  const options = [...command.optionHelp, "  -h, --help               show this help"];
  return [...lines, "", "Options:", ...options].join("\n");
}

export function stringValue(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

export function requiredString(values: Values, name: string): string {
  const value = stringValue(values, name);
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

export function stringList(values: Values, name: string): string[] {
  const value = values[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export function integerValue(values: Values, name: string, { min, max }: { min: number; max: number }): number | undefined {
  const value = stringValue(values, name);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be a whole number between ${min} and ${max} (got "${value}")`);
  }
  return Number(value);
}

/** An asset typed as `XLM` or `CODE:ISSUER` (`--asset`); a UsageError otherwise. */
export function assetArgument(text: string): Asset {
  if (text.toUpperCase() === "XLM") return { code: "XLM", issuer: null };
  const [code, issuer, ...rest] = text.split(":");
  try {
    if (!code || !issuer || rest.length > 0) throw new Error("not CODE:ISSUER");
    return parseAsset({ code, issuer }, "asset");
  } catch {
    throw new UsageError(`--asset must be XLM or CODE:ISSUER with a G… issuer (got "${text}")`);
  }
}
