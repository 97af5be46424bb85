import { describe, expect, it } from "vitest";
import { Batcher } from "../src/db/batcher.js";

/** A writer whose statements finish when the test says so, recording what each was sent. */
function controlledWriter(fail?: (items: number[]) => unknown) {
  const calls: Array<{ items: number[]; finish(): void }> = [];
  const writeAll = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({
        items,
        finish: () => {
          const error = fail?.(items);
          if (error) reject(error);
          else resolve(items.map((i) => `row ${i}`));
        },
      });
    });
  return { calls, writeAll };
}

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

describe("Batcher", () => {
  it("writes at once while statements are free, then the items queued meanwhile together, each answered with its own result", async () => {
    const { calls, writeAll } = controlledWriter();
    const sizes: number[] = [];
    const batcher = new Batcher(writeAll, { maxInFlight: 2, maxBatch: 3, onBatch: (n) => sizes.push(n) });
    const results = [1, 2, 3, 4, 5, 6].map((i) => batcher.submit(i));
    expect(calls.map((c) => c.items)).toEqual([[1], [2]]);
    calls[0]!.finish();
    await until(() => calls.length === 3);
    expect(calls[2]!.items).toEqual([3, 4, 5]);
    calls[1]!.finish();
    await until(() => calls.length === 4);
    expect(calls[3]!.items).toEqual([6]);
    calls[2]!.finish();
    calls[3]!.finish();
    expect(await Promise.all(results)).toEqual(["row 1", "row 2", "row 3", "row 4", "row 5", "row 6"]);
    expect(sizes).toEqual([1, 1, 3, 1]);
  });

  it("with overlapAfterMs, holds what arrives while a statement has just started, and starts it beside one that runs long", async () => {
    const { calls, writeAll } = controlledWriter();
    const batcher = new Batcher(writeAll, { maxInFlight: 2, overlapAfterMs: 25, maxBatch: 10 });
    const results = [1, 2, 3].map((i) => batcher.submit(i));
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    // The first statement never finishes: 2 and 3 go beside it once it has run 25 ms.
    await until(() => calls.length === 2);
    expect(calls[1]!.items).toEqual([2, 3]);
    // Once the second finishes, only the long-running first is left: the next goes at once.
    const fourth = batcher.submit(4);
    expect(calls).toHaveLength(2);
    calls[1]!.finish();
    await until(() => calls.length === 3);
    expect(calls[2]!.items).toEqual([4]);
    for (const call of [calls[0]!, calls[2]!]) call.finish();
    expect(await Promise.all([...results, fourth])).toEqual(["row 1", "row 2", "row 3", "row 4"]);
  });

  it("with overlapAfterMs, sends what waited as soon as the running statement finishes", async () => {
    const { calls, writeAll } = controlledWriter();
    const batcher = new Batcher(writeAll, { maxInFlight: 2, overlapAfterMs: 60_000, maxBatch: 10 });
    const results = [1, 2, 3].map((i) => batcher.submit(i));
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    calls[0]!.finish();
    await until(() => calls.length === 2);
    expect(calls[1]!.items).toEqual([2, 3]);
    calls[1]!.finish();
    expect(await Promise.all(results)).toEqual(["row 1", "row 2", "row 3"]);
  });

  it("tries each item of a batch PostgreSQL refused for a row's sake on its own: only the row at fault fails", async () => {
    const violation = Object.assign(new Error("violates check constraint"), { code: "23514" });
    const { calls, writeAll } = controlledWriter((items) => (items.includes(3) ? violation : undefined));
    const batcher = new Batcher(writeAll, { maxInFlight: 1, maxBatch: 10 });
    const first = batcher.submit(1);
    const rest = Promise.allSettled([2, 3, 4].map((i) => batcher.submit(i)));
    calls[0]!.finish();
    await until(() => calls.length === 2);
    expect(calls[1]!.items).toEqual([2, 3, 4]);
    calls[1]!.finish();
    await until(() => calls.length === 5);
    expect(calls.slice(2).map((c) => c.items)).toEqual([[2], [3], [4]]);
    for (const call of calls.slice(2)) call.finish();
    expect(await first).toBe("row 1");
    expect(await rest).toEqual([
      { status: "fulfilled", value: "row 2" },
      { status: "rejected", reason: violation },
      { status: "fulfilled", value: "row 4" },
    ]);
  });

  it("fails every item of a batch whose connection was lost, without trying them again, and goes on with the next", async () => {
    const lost = new Error("Connection terminated unexpectedly");
    const { calls, writeAll } = controlledWriter((items) => (items.includes(1) ? lost : undefined));
    const batcher = new Batcher(writeAll, { maxInFlight: 1, maxBatch: 10 });
    const first = batcher.submit(0);
    const batch = Promise.allSettled([1, 2].map((i) => batcher.submit(i)));
    calls[0]!.finish();
    await until(() => calls.length === 2);
    const queued = Promise.all([3, 4].map((i) => batcher.submit(i)));
    calls[1]!.finish();
    await until(() => calls.length === 3);
    expect(calls[2]!.items).toEqual([3, 4]);
    calls[2]!.finish();
    expect(await first).toBe("row 0");
    expect(await batch).toEqual([
      { status: "rejected", reason: lost },
      { status: "rejected", reason: lost },
    ]);
    expect(await queued).toEqual(["row 3", "row 4"]);
    expect(calls).toHaveLength(3);
  });

  it("tries a lone item once more after a deadlock, and not after a constraint it broke", async () => {
    const deadlock = Object.assign(new Error("deadlock detected"), { code: "40P01" });
    const violation = Object.assign(new Error("violates check constraint"), { code: "23514" });
    let deadlocks = 1;
    const { calls, writeAll } = controlledWriter((items) => (items[0] === 1 && deadlocks-- > 0 ? deadlock : items[0] === 2 ? violation : undefined));
    const batcher = new Batcher(writeAll, { maxInFlight: 2, maxBatch: 10 });
    const [retried, refused] = [batcher.submit(1), batcher.submit(2).catch((error: unknown) => error)];
    calls[0]!.finish();
    calls[1]!.finish();
    await until(() => calls.length === 3);
    expect(calls[2]!.items).toEqual([1]);
    calls[2]!.finish();
    expect(await retried).toBe("row 1");
    expect(await refused).toBe(violation);
    expect(calls).toHaveLength(3);
  });
});
