import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config.js";
import type { Clock } from "../../src/clock.js";
import { createLogger } from "../../src/logger.js";
import { createMerchant, type MerchantIn } from "../../src/merchants/service.js";
import { createTestDatabase, type TestDatabase } from "./db.js";
import { Keypair } from "@stellar/stellar-sdk";

/** A clock tests can move. */
export class TestClock implements Clock {
  constructor(private current = new Date("2026-01-01T00:00:00Z")) {}
  now(): Date {
    return new Date(this.current);
  }
  set(date: Date): void {
    this.current = new Date(date);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

export interface TestApp {
  app: FastifyInstance;
  db: TestDatabase;
  config: Config;
  clock: Clock;
  close(): Promise<void>;
}

/** A whole app over a fresh database; `env` overrides configuration as the environment would. */
export async function buildTestApp(opts: { env?: Record<string, string>; clock?: Clock } = {}): Promise<TestApp> {
  const db = await createTestDatabase();
  const config = loadConfig({ LOG_LEVEL: "silent", ...opts.env });
  const clock = opts.clock ?? { now: () => new Date() };
  const app = await buildApp({ config, pool: db.pool, clock, logger: createLogger(config.logLevel) });
  await app.ready();
  return {
    app,
    db,
    config,
    clock,
    async close() {
      await app.close();
      await db.drop();
    },
  };
}

export const randomAccount = () => Keypair.random().publicKey();

/** Creates a merchant directly (as the CLI does) and returns it with its API key. */
export async function seedMerchant(t: TestApp, input: Partial<MerchantIn> = {}) {
  const { merchant, secret } = await createMerchant(t.db.pool, {
    name: "Acme",
    email: "ops@acme.test",
    accounts: [randomAccount()],
    ...input,
  }, t.clock.now());
  return { merchant, apiKey: secret, auth: { authorization: `Bearer ${secret}` } };
}
