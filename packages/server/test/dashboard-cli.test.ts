import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyPassword } from "../src/dashboard/passwords.js";
import { buildTestApp, seedMerchant, type TestApp } from "./support/app.js";
import { postLogin } from "./support/dashboard.js";
import { runCliOnTerminal, runCliWithStdin } from "./support/process.js";

let t: TestApp;
let merchantId: string;
beforeAll(async () => {
  t = await buildTestApp();
  merchantId = (await seedMerchant(t)).merchant.id;
});
afterAll(() => t.close());

const PASSWORD = "a long and secret passphrase";
const users = (email: string) => t.db.pool.query("select id, merchant_id, email, role, password_hash from dashboard_users where email = $1", [email]);
const usersCreate = (args: string[], stdin: string | undefined) =>
  runCliWithStdin(["users", "create", "--merchant", merchantId, ...args], { DATABASE_URL: t.db.url, LOG_LEVEL: "silent" }, stdin);

describe("lumenpay users create", { timeout: 90_000 }, () => {
  it("reads the password from stdin with --password-stdin, stores only its scrypt hash, and the user can sign in", async () => {
    const result = await usersCreate(["--email", "Owner@Shop.test", "--password-stdin", "--json"], `${PASSWORD}\n`);
    expect(result.code, result.stderr).toBe(0);
    const { user } = JSON.parse(result.stdout);
    expect(user).toMatchObject({ id: expect.stringMatching(/^usr_\w{22}$/), object: "dashboard_user", merchant_id: merchantId, email: "owner@shop.test", role: "owner" });
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);

    const { rows } = await users("owner@shop.test");
    expect(rows[0].password_hash).toMatch(/^scrypt\$/);
    expect(rows[0].password_hash).not.toContain(PASSWORD);
    // The newline the shell added is not part of the password.
    expect(await verifyPassword(PASSWORD, rows[0].password_hash)).toBe(true);
    expect((await postLogin(t.app, "owner@shop.test", PASSWORD)).statusCode).toBe(303);
  });

  it("creates viewers with --role viewer", async () => {
    const result = await usersCreate(["--email", "viewer@shop.test", "--role", "viewer", "--password-stdin"], PASSWORD);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Created dashboard user usr_\w+ \(viewer@shop\.test, viewer\) for mer_\w+\.\nSign in at http:\/\/localhost:4000\/dashboard\n$/);
    expect((await users("viewer@shop.test")).rows[0].role).toBe("viewer");
  });

  it("refuses a password given as an argument, in either form, and creates nothing", async () => {
    for (const args of [["--password", PASSWORD], [`--password=${PASSWORD}`]]) {
      const result = await usersCreate(["--email", "argv@shop.test", ...args], undefined);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/--password is refused: a password given as an argument stays in shell history/);
      expect(result.stderr).not.toContain(PASSWORD);
    }
    expect((await users("argv@shop.test")).rowCount).toBe(0);
  });

  it("refuses before asking anything when there is no terminal and no --password-stdin, or the role is unknown", async () => {
    const [noTerminal, role] = await Promise.all([
      usersCreate(["--email", "x@shop.test"], ""),
      usersCreate(["--email", "x@shop.test", "--role", "admin", "--password-stdin"], PASSWORD),
    ]);
    expect(noTerminal.code).toBe(2);
    expect(noTerminal.stderr).toContain("stdin is not a terminal to type the password on; pipe it with --password-stdin");
    expect(role.code).toBe(2);
    expect(role.stderr).toContain('--role must be one of owner, viewer (got "admin")');
    expect((await users("x@shop.test")).rowCount).toBe(0);
  });

  it("refuses a short password, a taken email and an unknown merchant, creating nothing", async () => {
    const [short, first, unknown] = await Promise.all([
      usersCreate(["--email", "short@shop.test", "--password-stdin"], "too short"),
      usersCreate(["--email", "taken@shop.test", "--password-stdin"], PASSWORD),
      runCliWithStdin(["users", "create", "--merchant", "mer_0000000000000000000000", "--email", "y@shop.test", "--password-stdin"], { DATABASE_URL: t.db.url }, PASSWORD),
    ]);
    expect(short.code).toBe(1);
    expect(short.stderr).toContain("The password must be 12–1024 characters long. (invalid_password)");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("No merchant mer_0000000000000000000000.");
    expect(first.code, first.stderr).toBe(0);
    const taken = await usersCreate(["--email", "TAKEN@shop.test", "--password-stdin"], `${PASSWORD}2`);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain("--email: taken@shop.test already has a dashboard account. (email_in_use)");
    const { rows } = await t.db.pool.query("select email from dashboard_users where email in ('short@shop.test', 'y@shop.test', 'taken@shop.test')");
    expect(rows).toEqual([{ email: "taken@shop.test" }]);
    expect(await verifyPassword(PASSWORD, (await users("taken@shop.test")).rows[0].password_hash)).toBe(true);
  });

  it("asks twice on a terminal without echoing what is typed", async () => {
    const args = ["users", "create", "--merchant", merchantId, "--email", "tty@shop.test"];
    const env = { DATABASE_URL: t.db.url, LOG_LEVEL: "silent" };
    const ok = await runCliOnTerminal(args, env, [
      { prompt: "Password: ", type: PASSWORD },
      { prompt: "The same password again: ", type: PASSWORD },
    ]);
    expect(ok.code, ok.screen).toBe(0);
    expect(ok.screen).toContain("Created dashboard user");
    expect(ok.screen).not.toContain(PASSWORD);
    expect(await verifyPassword(PASSWORD, (await users("tty@shop.test")).rows[0].password_hash)).toBe(true);

    const differ = await runCliOnTerminal([...args.slice(0, -1), "tty2@shop.test"], env, [
      { prompt: "Password: ", type: PASSWORD },
      { prompt: "The same password again: ", type: `${PASSWORD}!` },
    ]);
    expect(differ.code).toBe(1);
    expect(differ.screen).toContain("the two passwords differ; nothing was created");
    expect((await users("tty2@shop.test")).rowCount).toBe(0);
  });
});
