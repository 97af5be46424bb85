import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config.js";
import { HttpError } from "./http/errors.js";
import { createLogger } from "./logger.js";
import { startServer } from "./server.js";
import { exitOnSignals } from "./signals.js";
import { commandUsage, stringValue, usageLine, UsageError, type Command } from "./cli/args.js";
import { withDatabase } from "./cli/database.js";
import { keysCreate, keysRevoke, keysRotate } from "./cli/keys.js";
import { listen } from "./cli/listen.js";
import { merchantsCheckAccount } from "./cli/check-account.js";
import { ingestBackfill } from "./cli/ingest.js";
import { merchantsCreate, merchantsList } from "./cli/merchants.js";
import { networkStart } from "./cli/network.js";
import { simulatePay } from "./cli/simulate.js";
import { usersCreate } from "./cli/users.js";

const start: Command = {
  name: "start",
  summary: "Run the API server (with an embedded PostgreSQL in LUMENPAY_DATA_DIR unless DATABASE_URL is set).",
  synopsis: "[--roles api,deliver,ingest,maintenance] [--network testnet|public|custom|local] [--horizon-url URL] [--network-passphrase TEXT]",
  optionHelp: [
    "  --roles LIST             overrides LUMENPAY_ROLES: what this process runs, comma-separated (default all four);",
    "                           without api it serves only /health, /ready and /metrics",
    "  --network NAME           overrides STELLAR_NETWORK; local runs a local Stellar network and its Horizon in-process,",
    "                           unless --horizon-url names one (`lumenpay network start`)",
    "  --horizon-url URL        overrides HORIZON_URL",
    "  --network-passphrase TEXT",
    "                           overrides STELLAR_NETWORK_PASSPHRASE; without --network it means custom",
  ],
  options: { roles: { type: "string" }, network: { type: "string" }, "horizon-url": { type: "string" }, "network-passphrase": { type: "string" } },
  async run({ config }) {
    const logger = createLogger(config.logLevel, undefined, config.logFormat);
    // Handlers first: a signal sent as soon as "listening" is logged must find them in place.
    const server = startServer({ config, logger });
    exitOnSignals(server, logger, `shutting down (in-flight requests get up to ${config.shutdownTimeoutMs} ms)`);
    await server;
  },
};

const migrateCommand: Command = {
  name: "migrate",
  summary: "Apply pending database migrations and exit (`start` also does this).",
  synopsis: "",
  optionHelp: [],
  options: {},
  async run({ config, print }) {
    const applied = await withDatabase(config, async (_pool, applied) => applied);
    print(applied.length === 0 ? "The database is up to date." : `Applied ${applied.join(", ")}.`);
  },
};

const COMMANDS = [
  start,
  networkStart,
  migrateCommand,
  merchantsCreate,
  merchantsList,
  merchantsCheckAccount,
  keysCreate,
  keysRevoke,
  keysRotate,
  usersCreate,
  simulatePay,
  listen,
  ingestBackfill,
];
/** Commands that keep the process running until a signal; main leaves the exit to them. */
const LONG_RUNNING = new Set([start, networkStart]);
const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0]));

const NAME_WIDTH = Math.max(...COMMANDS.map((c) => c.name.length));

function usage(commands = COMMANDS): string {
  return [
    "Usage: lumenpay <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(NAME_WIDTH)} ${c.summary}`),
    "",
    "Run `lumenpay <command> --help` for a command's options.",
    "Configuration comes from the environment (see .env.example).",
  ].join("\n");
}

/**
 * Options that stand for an environment variable and win over it, so the configuration is still validated in one
 * place. An option means the same variable in every command that has it (`--port` is only `network start`'s).
 */
const OPTION_ENV: Record<string, string> = {
  roles: "LUMENPAY_ROLES",
  network: "STELLAR_NETWORK",
  "horizon-url": "HORIZON_URL",
  "rpc-url": "STELLAR_RPC_URL",
  "network-passphrase": "STELLAR_NETWORK_PASSPHRASE",
  port: "LOCAL_HORIZON_PORT",
  "rpc-port": "LOCAL_RPC_PORT",
  "data-dir": "LUMENPAY_DATA_DIR",
};

/** Service errors name API fields; on the command line the user typed flags. */
const PARAM_FLAGS: Record<string, string> = {
  name: "--name",
  email: "--email",
  accounts: "--account",
  home_domain: "--home-domain",
  accepted_assets: "--asset",
  types: "--events",
};

function describeHttpError(error: HttpError): string {
  const field = error.param?.split(".")[0];
  const flag = field === undefined ? undefined : (PARAM_FLAGS[field] ?? error.param);
  return `${flag ? `${flag}: ` : ""}${error.message} (${error.code})`;
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError && !error.message) return error.errors.map(describeError).join("; ");
  return error instanceof Error ? error.message || error.name : String(error);
}

const isHelp = (arg: string | undefined) => arg === "--help" || arg === "-h";

/** Runs one command; resolves to the exit code, or undefined when the command keeps the process running. */
async function main(argv: string[]): Promise<number | undefined> {
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const err = (text: string) => process.stderr.write(`${text}\n`);
  const [first, second] = argv;
  if (first === undefined || isHelp(first) || first === "help") {
    (first === undefined ? err : out)(usage());
    return first === undefined ? 2 : 0;
  }

  const grouped = GROUPS.has(first);
  if (grouped && (second === undefined || second.startsWith("-"))) {
    (isHelp(second) ? out : err)(usage(COMMANDS.filter((c) => c.name.startsWith(`${first} `))));
    return isHelp(second) ? 0 : 2;
  }
  const name = grouped ? `${first} ${second}` : first;
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    err(`lumenpay: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }

  try {
    const { values, positionals } = parseArgs({
      args: argv.slice(grouped ? 2 : 1),
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      out(commandUsage(command));
      return 0;
    }
    const expected = command.positionals?.count ?? 0;
    const omitted = command.positionals?.optional === true && positionals.length === 0;
    if (positionals.length !== expected && !omitted) {
      throw new UsageError(
        expected === 0 ? `unexpected argument "${positionals[0]}"` : `expected ${command.positionals?.name}, got ${positionals.length} argument(s)`,
      );
    }
    const overrides = Object.entries(OPTION_ENV).flatMap(([option, name]) => {
      const value = stringValue(values, option);
      return value === undefined ? [] : [[name, value]];
    });
    const config = loadConfig({ ...process.env, ...Object.fromEntries(overrides) });
    await command.run({ values, positionals, config, print: out });
    return LONG_RUNNING.has(command) ? undefined : 0;
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      // parseArgs appends advice about `--` that only confuses here.
      const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, ".");
      err(`lumenpay ${command.name}: ${message}\n${usageLine(command)}\nRun \`lumenpay ${command.name} --help\` for details.`);
      return 2;
    }
    if (error instanceof ConfigError) {
      err(error.message);
      return 2;
    }
    err(`lumenpay ${command.name}: ${error instanceof HttpError ? describeHttpError(error) : describeError(error)}`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code !== undefined) {
  // Exit explicitly, so a stray handle cannot keep a finished command alive; flush first, since
  // writes to a pipe may still be pending.
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise((resolve) => s.write("", resolve))));
  process.exit(code);
}
