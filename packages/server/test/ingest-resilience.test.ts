import net from "node:net";
import type { AddressInfo } from "node:net";
import { Memo } from "@stellar/stellar-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ingestLockKey } from "../src/stellar/ingest.js";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";
import { createTestDatabase, type TestDatabase } from "./support/db.js";
import { connected, metricValue, newMerchant, opToken, startIngestion, storedCursor } from "./support/ingest.js";
import { waitFor } from "./support/wait.js";

let db: TestDatabase;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query(
    "create table applied (id bigserial primary key, instance text not null, account text not null, paging_token bigint not null, memo text)",
  );
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await db?.drop();
});

/** Starts an ingesting instance whose apply records each record under the instance's name. */
function start(instance: string, horizonUrl: string, networkPassphrase: string, watchdogMs = 20_000) {
  const started = startIngestion(db, {
    apply: async (tx, record) => {
      await tx.query("insert into applied (instance, account, paging_token, memo) values ($1, $2, $3, $4)", [
        instance,
        "to" in record ? record.to : "",
        record.paging_token,
        record.transaction_attr?.memo ?? null,
      ]);
    },
    horizonUrl,
    networkPassphrase,
    watchdogMs,
  });
  cleanups.push(started.stop);
  return started;
}

const cursorOf = (networkPassphrase: string, account: string) => storedCursor(db.pool, networkPassphrase, account);

async function appliedTo(account: string): Promise<Array<{ instance: string; memo: string | null }>> {
  const { rows } = await db.pool.query<{ instance: string; memo: string | null }>(
    "select instance, memo from applied where account = $1 order by id",
    [account],
  );
  return rows;
}

async function newHorizon(port = 0): Promise<LocalHorizon> {
  const horizon = await startLocalHorizon({ port });
  cleanups.push(() => horizon.close());
  return horizon;
}

/**
 * A TCP proxy to `target` whose `stallStreams()` silently stops passing Horizon's bytes on the
 * event streams open at that moment: the connection stays up, only the watchdog can notice.
 */
async function startStallingProxy(target: string) {
  const { hostname, port } = new URL(target);
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; stream: boolean; stalled: boolean }>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    const pair = { client, upstream, stream: false, stalled: false };
    pairs.add(pair);
    client.on("data", (chunk: Buffer) => {
      if (chunk.toString("latin1").includes("text/event-stream")) pair.stream = true;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!pair.stalled) client.write(chunk);
    });
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) socket.on("close", close).on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const proxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stallStreams: () => {
      for (const pair of pairs) if (pair.stream) pair.stalled = true;
    },
    close: async () => {
      for (const pair of pairs) pair.client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  cleanups.push(proxy.close);
  return proxy;
}

describe("payment ingestion resilience", () => {
  it("reconnects after Horizon says goodbye and comes back on the same port", async () => {
    const first = await newHorizon();
    const port = Number(new URL(first.url).port);
    const passphrase = first.networkPassphrase;
    const { account } = await newMerchant(db.pool, first);
    const payer = await first.newAccount("100");
    const instance = start("a", first.url, passphrase);
    await waitFor(async () => (await connected(instance, account)) === 1, "the stream");
    const before = await first.pay({ from: payer, to: account, amount: "1", memo: Memo.text("before") });
    await waitFor(async () => (await cursorOf(passphrase, account)) === opToken(before), "the first payment");

    await first.close();
    await waitFor(async () => (await connected(instance, account)) === 0, "the stream to drop");
    const second = await newHorizon(port);
    // The same network would carry on from the same ledger: bring the fresh one past the cursor.
    for (let ledger = 0n; ledger <= BigInt(opToken(before)) >> 32n; ledger++) second.closeLedger();
    const payer2 = await second.newAccount("100");
    const after = await second.pay({ from: payer2, to: account, amount: "1", memo: Memo.text("after") });
    await waitFor(async () => (await cursorOf(passphrase, account)) === opToken(after), "the payment after the restart");

    expect(await appliedTo(account)).toEqual([
      { instance: "a", memo: "before" },
      { instance: "a", memo: "after" },
    ]);
    expect(await metricValue(instance.metrics, "horizon_stream_reconnects_total", { reason: "error" })).toBeGreaterThanOrEqual(1);
  });

  it("reconnects a stream that has gone silent", async () => {
    const horizon = await newHorizon();
    const proxy = await startStallingProxy(horizon.url);
    const { account } = await newMerchant(db.pool, horizon);
    const payer = await horizon.newAccount("100");
    const instance = start("a", proxy.url, horizon.networkPassphrase, 1000);
    await waitFor(async () => (await connected(instance, account)) === 1, "the stream");
    const first = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("first") });
    await waitFor(async () => (await cursorOf(horizon.networkPassphrase, account)) === opToken(first), "the first payment");

    const silencesBefore = (await metricValue(instance.metrics, "horizon_stream_reconnects_total", { reason: "silence" })) ?? 0;
    proxy.stallStreams();
    const second = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text("second") });
    await waitFor(async () => (await cursorOf(horizon.networkPassphrase, account)) === opToken(second), "the stalled payment");
    expect(await metricValue(instance.metrics, "horizon_stream_reconnects_total", { reason: "silence" })).toBeGreaterThan(silencesBefore);
    expect((await appliedTo(account)).map((r) => r.memo)).toEqual(["first", "second"]);
  });

  it("lets one instance at a time ingest an account, the other taking over from the cursor", async () => {
    const horizon = await newHorizon();
    const passphrase = horizon.networkPassphrase;
    const { account } = await newMerchant(db.pool, horizon);
    const payer = await horizon.newAccount("100");
    const instances = { a: start("a", horizon.url, passphrase), b: start("b", horizon.url, passphrase) };
    const holderOf = async () => {
      const holders = [];
      for (const [name, instance] of Object.entries(instances)) if ((await connected(instance, account)) !== undefined) holders.push(name);
      return holders.length === 1 && (await connected(instances[holders[0] as "a" | "b"], account)) === 1 && (holders[0] as "a" | "b");
    };
    const lockHolders = async () => {
      const { rows } = await db.pool.query<{ pid: number }>(
        "select pid from pg_locks where locktype = 'advisory' and granted and ((classid::int8 << 32) | objid::int8) = $1::int8",
        [ingestLockKey(passphrase, account)],
      );
      return rows.map((r) => r.pid);
    };
    const pay = async (memo: string) => {
      const tx = await horizon.pay({ from: payer, to: account, amount: "1", memo: Memo.text(memo) });
      await waitFor(async () => (await cursorOf(passphrase, account)) === opToken(tx), `payment ${memo}`);
    };

    const first = await waitFor(holderOf, "a holder");
    const other = first === "a" ? "b" : "a";
    expect(await lockHolders()).toHaveLength(1);
    await pay("one");

    // The holder's lock connection dies: it must stop, and the other instance takes over.
    const [pid] = await lockHolders();
    await db.pool.query("select pg_terminate_backend($1)", [pid]);
    expect(await waitFor(async () => (await holderOf()) === other && other, "the takeover")).toBe(other);
    expect(await lockHolders()).toHaveLength(1);
    await pay("two");

    // A graceful stop hands the account back.
    await instances[other].stop();
    expect(await waitFor(async () => (await holderOf()) === first && first, "the handback")).toBe(first);
    await pay("three");

    expect(await appliedTo(account)).toEqual([
      { instance: first, memo: "one" },
      { instance: other, memo: "two" },
      { instance: first, memo: "three" },
    ]);
  });
});
