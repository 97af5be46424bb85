import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../src/ids.js";
import { createApiKey, revokeApiKey, rotateApiKey } from "../src/merchants/service.js";
import { buildTestApp, seedMerchant, TestClock, type TestApp } from "./support/app.js";

const clock = new TestClock(new Date("2026-03-01T00:00:00Z"));
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

const status = async (secret: string) =>
  (await t.app.inject({ method: "GET", url: "/v1/merchant", headers: { authorization: `Bearer ${secret}` } })).statusCode;

describe("API keys", () => {
  it("are stored only as a hash", async () => {
    const m = await seedMerchant(t);
    const { rows } = await t.db.pool.query<{ hash: Buffer; prefix: string }>("select hash, prefix from api_keys where merchant_id = $1", [m.merchant.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.hash.equals(hashToken(m.apiKey))).toBe(true);
    const dump = JSON.stringify(await t.db.pool.query("select * from api_keys where merchant_id = $1", [m.merchant.id]).then((r) => r.rows));
    expect(dump).not.toContain(m.apiKey);
    expect(m.apiKey.startsWith(rows[0]!.prefix)).toBe(true);
  });

  it("stop working at their expiry", async () => {
    const m = await seedMerchant(t);
    const { secret } = await createApiKey(t.db.pool, m.merchant.id, new Date(clock.now().getTime() + 60_000));
    expect(await status(secret)).toBe(200);
    clock.advance(61_000);
    expect(await status(secret)).toBe(401);
    expect(await status(m.apiKey)).toBe(200);
  });

  it("stop working once revoked", async () => {
    const m = await seedMerchant(t);
    const { key, secret } = await createApiKey(t.db.pool, m.merchant.id, null);
    await revokeApiKey(t.db.pool, key.id, clock.now());
    expect(await status(secret)).toBe(401);
  });

  it("keep working for the grace period after a rotation, then not", async () => {
    const m = await seedMerchant(t);
    const { key } = await createApiKey(t.db.pool, m.merchant.id, null);
    const { rows } = await t.db.pool.query<{ id: string }>("select id from api_keys where merchant_id = $1 and id <> $2", [m.merchant.id, key.id]);
    const rotated = await rotateApiKey(t.db.pool, rows[0]!.id, 2, clock.now());
    expect(await status(m.apiKey)).toBe(200);
    expect(await status(rotated.secret)).toBe(200);
    clock.advance(2 * 3_600_000 + 1000);
    expect(await status(m.apiKey)).toBe(401);
    expect(await status(rotated.secret)).toBe(200);
  });
});
