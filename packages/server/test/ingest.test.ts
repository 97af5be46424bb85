import { Keypair, Memo } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createMerchant } from "../src/merchants/service.js";
import { accountOwner, setMerchantAccounts } from "../src/merchants/store.js";
import { backoffMs } from "../src/backoff.js";
import { RECONNECT_BACKOFF } from "../src/stellar/ingest-account.js";
import { type ApplyRecord, ingestLockKey, parsePagingToken } from "../src/stellar/ingest.js";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { connected, metricValue, newMerchant, opToken, pastTheSecondOf, startIngestion, storedCursor } from "./support/ingest.js";
import { waitFor as waitUntil } from "./support/wait.js";
import { startFailingProxy } from "./support/failing-proxy.js";

let db: TestDatabase;
let horizon: LocalHorizon;
const running: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  // What the recording apply writes: one row per application, so a repeat shows as a second row.
  await db.pool.query("create table applied (id bigserial primary key, account text not null, paging_token bigint not null, memo text)");
  horizon = await startLocalHorizon();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((stop) => stop()));
});
afterAll(async () => {
  await horizon?.close();
  await db?.drop();
});

/** This file's waits give up after 15 s. */
const waitFor = <T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000) => waitUntil(check, what, timeoutMs);

/** Records each payment applied. */
const recording: ApplyRecord<void> = async (tx, record) => {
  await tx.query("insert into applied (account, paging_token, memo) values ($1, $2, $3)", [
    "to" in record ? record.to : "account" in record ? record.account : null,
    record.paging_token,
    record.transaction_attr?.memo ?? null,
  ]);
};

function start(apply: ApplyRecord<void> = recording) {
  const instance = startIngestion(db, { apply, horizonUrl: horizon.url, networkPassphrase: horizon.networkPassphrase, watchdogMs: 10_000 });
  running.push(instance.stop);
  return instance;
}

const cursorOf = (account: string) => storedCursor(db.pool, horizon.networkPassphrase, account);

/** A merchant account whose ingestion applied one payment (memo "before") and stopped: what follows is a catch-up from its cursor. */
async function ingestedOnceAndStopped() {
  const payer = await horizon.newAccount("100");
  const { account } = await newMerchant(db.pool, horizon);
  const first = start();
  await waitFor(async () => (await connected(first, account)) === 1, "the stream");
  const before = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("before") });
  await waitFor(async () => (await cursorOf(account)) === opToken(before), "the payment before the stop");
  await first.stop();
  return { account, payer };
}

async function appliedTo(account: string): Promise<Array<{ paging_token: string; memo: string | null }>> {
  const { rows } = await db.pool.query<{ paging_token: string; memo: string | null }>(
    "select paging_token, memo from applied where account = $1 order by id",
    [account],
  );
  return rows;
}

describe("payment ingestion", () => {
  it("applies a payment made while ingesting exactly once, storing the cursor in the same transaction", async () => {
    const payer = await horizon.newAccount("100");
    const { account } = await newMerchant(db.pool, horizon);
    let killed = false;
    let reachedRetry: () => void = () => {};
    const retryReached = new Promise<void>((resolve) => (reachedRetry = resolve));
    let releaseRetry: () => void = () => {};
    const retryReleased = new Promise<void>((resolve) => (releaseRetry = resolve));
    const instance = start(async (tx, record, ctx) => {
      if (record.transaction_attr?.memo === "kill") {
        if (!killed) {
          killed = true;
          await recording(tx, record, ctx);
          // The database ends this session mid-transaction, after the row was written.
          await tx.query("select pg_terminate_backend(pg_backend_pid())");
        }
        reachedRetry();
        await retryReleased;
      }
      await recording(tx, record, ctx);
    });
    await waitFor(async () => (await connected(instance, account)) === 1, "the stream");

    const first = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("first") });
    await horizon.pay({ from: payer, to: account, amount: "2", memo: Memo.text("failed"), successful: false });
    await waitFor(async () => (await cursorOf(account)) === opToken(first), "the first payment");
    expect(await appliedTo(account)).toEqual([{ paging_token: opToken(first), memo: "first" }]);

    const kill = await horizon.pay({ from: payer, to: account, amount: "3", memo: Memo.text("kill") });
    await retryReached;
    // The killed transaction took its row with it, and the cursor stayed behind the payment.
    expect(await appliedTo(account)).toEqual([{ paging_token: opToken(first), memo: "first" }]);
    expect(await cursorOf(account)).toBe(opToken(first));
    releaseRetry();
    await waitFor(async () => (await cursorOf(account)) === opToken(kill), "the retried payment");
    // A failed transaction is never applied; each successful payment is applied exactly once.
    expect(await appliedTo(account)).toEqual([
      { paging_token: opToken(first), memo: "first" },
      { paging_token: opToken(kill), memo: "kill" },
    ]);
    expect(await metricValue(instance.metrics, "horizon_ingest_lag_seconds", {})).toBeGreaterThanOrEqual(0);
    // Merchant accounts are not for /metrics: no series names one.
    expect(await instance.metrics.registry.metrics()).not.toContain(account);
  });

  it("on an account's first start, reaches back to when it was attached: earlier payments are skipped, later ones applied", async () => {
    const payer = await horizon.newAccount("100");
    const account = (await horizon.newAccount("1")).publicKey();
    const before = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("before-attach") });
    await pastTheSecondOf(before.created_at);
    await createMerchant(db.pool, { name: "Shop", email: "shop@example.test", accounts: [account] }, new Date());
    const attached = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("after-attach") });
    const instance = start();
    await waitFor(async () => (await connected(instance, account)) === 1, "the stream");
    expect(await cursorOf(account)).toBe(opToken(attached));

    const fresh = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("new") });
    await waitFor(async () => (await cursorOf(account)) === opToken(fresh), "the new payment");
    expect(await appliedTo(account)).toEqual([
      { paging_token: opToken(attached), memo: "after-attach" },
      { paging_token: opToken(fresh), memo: "new" },
    ]);
    expect(BigInt(opToken(before))).toBeLessThan(BigInt(opToken(attached)));
  });

  it("finds the payments made while it was stopped on restart, none missed and none repeated", async () => {
    const { account, payer } = await ingestedOnceAndStopped();

    // More than two pages (of 200), so resuming has to follow the page links.
    const generated = await horizon.generatePayments(account, 450, { memo: (i) => Memo.text(`down-${i}`), perLedger: 70 });
    const second = start();
    await waitFor(async () => (await cursorOf(account)) === generated.lastPagingToken, "the catch-up", 30_000);
    const after = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("after") });
    await waitFor(async () => (await cursorOf(account)) === opToken(after), "the payment after the restart");
    await second.stop();

    const rows = await appliedTo(account);
    expect(rows.map((r) => r.memo)).toEqual(["before", ...Array.from({ length: 450 }, (_, i) => `down-${i}`), "after"]);
    expect(new Set(rows.map((r) => r.paging_token)).size).toBe(rows.length);
  });

  it("commits the pages a catch-up read ahead together, and after a page request fails resumes from its last commit", async () => {
    const { account } = await ingestedOnceAndStopped();

    // 13 pages of 200; Horizon (through a proxy) fails the 9th page request of the catch-up once.
    const count = 2_550;
    const generated = await horizon.generatePayments(account, count, { memo: (i) => Memo.text(`batch-${i}`), perLedger: 250 });
    let pageRequests = 0;
    const proxy = await startFailingProxy(horizon.url, (path) => path.includes("/payments?") && path.includes("cursor=") && ++pageRequests === 9);
    await db.pool.query("create table applied_in (paging_token bigint not null, memo text, txid bigint not null default txid_current())");
    let firstCommit = true;
    const second = startIngestion(db, {
      apply: async (tx, record) => {
        // The first commit stays open until three more pages have been read: they go in the next one.
        if (firstCommit) {
          firstCommit = false;
          await waitFor(async () => pageRequests >= 4, "pages read ahead of the first commit");
        }
        await tx.query("insert into applied_in (paging_token, memo) values ($1, $2)", [record.paging_token, record.transaction_attr?.memo ?? null]);
      },
      horizonUrl: proxy.url,
      networkPassphrase: horizon.networkPassphrase,
      watchdogMs: 10_000,
    });
    running.push(second.stop, proxy.close);
    await waitFor(async () => (await cursorOf(account)) === generated.lastPagingToken, "the catch-up", 60_000);
    await second.stop();

    const { rows } = await db.pool.query<{ memo: string; txid: string }>("select memo, txid from applied_in order by paging_token");
    expect(rows.map((r) => r.memo)).toEqual(Array.from({ length: count }, (_, i) => `batch-${i}`));
    expect(proxy.failed).toBe(1);
    // Fewer transactions than pages: a commit takes every page read while the one before it was open.
    expect(new Set(rows.map((r) => r.txid)).size).toBeLessThanOrEqual(Math.ceil(count / 200) - 2);
  });

  it("compares paging tokens as 64-bit integers, never as text or floating point", async () => {
    expect(parsePagingToken("9223372036854775807")).toBe(9_223_372_036_854_775_807n);
    // As doubles these two are equal; as text "999999999" sorts after "85899350017".
    expect(parsePagingToken("9007199254740993") > parsePagingToken("9007199254740992")).toBe(true);
    expect(parsePagingToken("85899350017") > parsePagingToken("999999999")).toBe(true);
    expect(() => parsePagingToken("12-1")).toThrow(TypeError);
    expect(() => parsePagingToken("")).toThrow(TypeError);

    const payer = await horizon.newAccount("100");
    const { account: low } = await newMerchant(db.pool, horizon);
    const { account: high } = await newMerchant(db.pool, horizon);
    const toLow = await horizon.pay({ from: payer, to: low, amount: "1", memo: Memo.text("after-999999999") });
    await horizon.pay({ from: payer, to: high, amount: "1", memo: Memo.text("before-max") });
    await db.pool.query(
      "insert into stellar_cursors (network_passphrase, account, paging_token) values ($1, $2, 999999999), ($1, $3, 9223372036854775806)",
      [horizon.networkPassphrase, low, high],
    );
    const instance = start();
    // The stream opens once catching up from the stored cursor is done.
    await waitFor(async () => (await connected(instance, low)) === 1, "the low stream");
    await waitFor(async () => (await connected(instance, high)) === 1, "the high stream");
    expect((await appliedTo(low)).map((r) => r.paging_token)).toContain(opToken(toLow));
    expect(await cursorOf(low)).toBe(opToken(toLow));
    expect(await appliedTo(high)).toEqual([]);
    expect(await cursorOf(high)).toBe("9223372036854775806");
  });

  it("picks up a new merchant account and lets go of one no merchant uses any more", async () => {
    const payer = await horizon.newAccount("100");
    const instance = start();
    const { account } = await newMerchant(db.pool, horizon);
    const lockHeld = async (key: string) => {
      const { rows } = await db.pool.query(
        "select 1 from pg_locks where locktype = 'advisory' and granted and ((classid::int8 << 32) | objid::int8) = $1::int8",
        [key],
      );
      return rows.length === 1;
    };
    await waitFor(async () => (await connected(instance, account)) === 1, "the new account's stream");
    expect(await lockHeld(ingestLockKey(horizon.networkPassphrase, account))).toBe(true);
    const paid = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("new merchant") });
    await waitFor(async () => (await cursorOf(account)) === opToken(paid), "the payment");

    await setMerchantAccounts(db.pool, (await accountOwner(db.pool, account))!, [Keypair.random().publicKey()], new Date());
    await waitFor(async () => !(await lockHeld(ingestLockKey(horizon.networkPassphrase, account))), "the lock release");
    expect(await connected(instance, account)).toBeUndefined();
  });

  it("backs off exponentially, with jitter and a ceiling", () => {
    const delay = (n: number, random: () => number) => backoffMs(n, RECONNECT_BACKOFF, random);
    expect([1, 2, 3, 4].map((n) => delay(n, () => 0.5))).toEqual([500, 1000, 2000, 4000]);
    expect(delay(30, () => 0.5)).toBe(30_000);
    expect(delay(1, () => 0)).toBe(400);
    expect(delay(1, () => 1)).toBe(600);
  });
});
