import { systemClock } from "../clock.js";
import { ROLES, type DashboardUser } from "../dashboard/store.js";
import { createUser } from "../dashboard/users.js";
import { requiredString, stringValue, UsageError, type Command } from "./args.js";
import { withDatabase } from "./database.js";

/** Reads everything piped to stdin, without the line ending a shell or `echo` adds. */
async function readStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin.setEncoding("utf8")) text += chunk as string;
  return text.replace(/\r?\n$/, "");
}

/** Asks on the terminal with echo off (raw mode), as `passwd` does; Ctrl-C or Ctrl-D gives up. */
function askHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Raw mode first: what is typed once the prompt shows must never be echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  stdin.setEncoding("utf8");
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = "";
    const finish = (error?: Error) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: string) => {
      for (const c of chunk) {
        if (c === "\r" || c === "\n") return finish();
        if (c === "\u0003" || (c === "\u0004" && typed === "")) return finish(new Error("canceled"));
        if (c === "\u007f" || c === "\b") typed = [...typed].slice(0, -1).join("");
        else if (c >= " ") typed += c;
      }
    };
    stdin.on("data", onData);
  });
}

async function promptPassword(): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError("stdin is not a terminal to type the password on; pipe it with --password-stdin");
  const password = await askHidden("Password: ");
  if ((await askHidden("The same password again: ")) !== password) throw new Error("the two passwords differ; nothing was created");
  return password;
}

const userOut = (u: DashboardUser) => ({
  id: u.id,
  object: "dashboard_user" as const,
  merchant_id: u.merchantId,
  email: u.email,
  role: u.role,
  created_at: u.createdAt.toISOString(),
});

export const usersCreate: Command = {
  name: "users create",
  summary: "Create a dashboard user of a merchant (the password is asked on the terminal, or read with --password-stdin).",
  synopsis: "--merchant mer_… --email EMAIL [--role owner|viewer] [--password-stdin] [--json]",
  optionHelp: [
    "  --merchant mer_…         the merchant whose dashboard the user signs in to (required)",
    "  --email EMAIL            what the user signs in with (required)",
    "  --role owner|viewer      owner (default) changes anything; viewer sees everything and changes nothing",
    "  --password-stdin         read the password from stdin (e.g. piped from a secret store) instead of asking for it;",
    "                           it is never an argument, which shell history and the process list would keep",
    '  --json                   print {"user": {…}}',
  ],
  options: {
    merchant: { type: "string" },
    email: { type: "string" },
    role: { type: "string" },
    "password-stdin": { type: "boolean" },
    // Declared only to refuse it with an explanation rather than a bare "unknown option".
    password: { type: "string" },
    json: { type: "boolean" },
  },
  async run(ctx) {
    if (ctx.values.password !== undefined) {
      throw new UsageError("--password is refused: a password given as an argument stays in shell history and the process list. Type it when asked, or use --password-stdin");
    }
    const merchantId = requiredString(ctx.values, "merchant");
    const email = requiredString(ctx.values, "email");
    const role = stringValue(ctx.values, "role") ?? "owner";
    if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(", ")} (got "${role}")`);
    const password = ctx.values["password-stdin"] ? await readStdin() : await promptPassword();
    const user = await withDatabase(ctx.config, (pool) => createUser(pool, { merchantId, email, role, password }, systemClock.now()));
    if (ctx.values.json) return ctx.print(JSON.stringify({ user: userOut(user) }));
    ctx.print(`Created dashboard user ${user.id} (${user.email}, ${user.role}) for ${user.merchantId}.`);
    ctx.print(`Sign in at ${ctx.config.publicBaseUrl}/dashboard`);
  },
};
