import { describe, expect, it } from "vitest";
import type { ClaimedDelivery } from "../src/webhooks/queue.js";
import { createDeliveryWorker } from "../src/webhooks/worker.js";

const delivery = (n: number, endpointId: string): ClaimedDelivery => ({
  id: `del_${n}`,
  lease: "w/1",
  eventId: `evt_${n}`,
  endpointId,
  attempt: 1,
  eventCreatedAt: new Date(0),
  body: "{}",
  url: "https://receiver.example/hook",
  secret: "",
  previousSecret: null,
  previousSecretExpiresAt: null,
});

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

/**
 * The worker's scheduling alone: a queue in memory, and attempts whose requests end and whose
 * outcomes are recorded when the test says so.
 */
function harness(queue: ClaimedDelivery[], options: { concurrency: number; maxPerEndpoint: number }, claimIgnoresRoom = false) {
  const controller = new AbortController();
  const attempts = new Map<string, { answer(): void; record(): void }>();
  const requesting = new Set<string>();
  const unrecorded = new Set<string>();
  let most = { requesting: 0, unrecorded: 0 };
  let sleeps = 0;
  const worker = createDeliveryWorker({
    ...options,
    claim: async (limit, room) => {
      const busyNow = new Map(room.inFlight);
      const taken = queue.filter((d) => {
        const busy = busyNow.get(d.endpointId) ?? 0;
        if (busy >= room.maxPerEndpoint) return false;
        // A claim that only skips endpoints at their cap, as the worker's did before it was told their room.
        if (!claimIgnoresRoom) busyNow.set(d.endpointId, busy + 1);
        return true;
      }).slice(0, limit);
      for (const d of taken) queue.splice(queue.indexOf(d), 1);
      return taken;
    },
    release: async (claimed) => void queue.unshift(...claimed),
    deliver: (d, _signal, answered) =>
      new Promise<void>((resolve) => {
        requesting.add(d.id);
        unrecorded.add(d.id);
        most = { requesting: Math.max(most.requesting, requesting.size), unrecorded: Math.max(most.unrecorded, unrecorded.size) };
        attempts.set(d.id, {
          answer: () => {
            requesting.delete(d.id);
            answered();
          },
          record: () => {
            unrecorded.delete(d.id);
            resolve();
          },
        });
      }),
    waitForWork: (ms, signal) => new Promise((resolve) => {
      sleeps += 1;
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    }),
    pollIntervalMs: 10_000,
    signal: controller.signal,
    log: { error: () => undefined },
  });
  /** Answers and records every attempt, as they come, until the queue is empty; then stops the worker. */
  const drainAndStop = async () => {
    while (queue.length > 0 || unrecorded.size > 0) {
      for (const id of [...requesting]) attempts.get(id)!.answer();
      for (const id of [...unrecorded]) if (!requesting.has(id)) attempts.get(id)!.record();
      await new Promise((resolve) => setImmediate(resolve));
    }
    controller.abort();
    await worker.done;
  };
  return { attempts, requesting, unrecorded, most: () => most, sleeps: () => sleeps, drainAndStop };
}

describe("the delivery worker's slots", () => {
  it("sends the next requests once the last are answered, before their outcomes are recorded, within twice its concurrency", async () => {
    const queue = Array.from({ length: 20 }, (_, i) => delivery(i, `we_${i % 5}`));
    const h = harness(queue, { concurrency: 4, maxPerEndpoint: 4 });
    await until(() => h.requesting.size === 4);
    for (const id of [...h.requesting]) h.attempts.get(id)!.answer();
    // Answered but not recorded: four more requests go out, and no more while eight are unrecorded.
    await until(() => h.requesting.size === 4 && h.unrecorded.size === 8);
    const sleeps = h.sleeps();
    for (const id of [...h.requesting]) h.attempts.get(id)!.answer();
    // The worker goes back to sleep without sending anything.
    await until(() => h.sleeps() > sleeps);
    expect(h.requesting.size).toBe(0);
    expect(h.unrecorded.size).toBe(8);
    // Recording frees room for the rest.
    for (const id of [...h.unrecorded]) h.attempts.get(id)!.record();
    await until(() => h.requesting.size === 4);
    await h.drainAndStop();
    expect(h.attempts.size).toBe(20);
    expect(h.most()).toEqual({ requesting: 4, unrecorded: 8 });
  });

  it("counts an endpoint's slot until its request is answered, so a hung endpoint holds only its own", async () => {
    const queue = [...Array.from({ length: 6 }, (_, i) => delivery(i, "we_hung")), ...Array.from({ length: 6 }, (_, i) => delivery(10 + i, "we_ok"))];
    const h = harness(queue, { concurrency: 6, maxPerEndpoint: 2 });
    await until(() => h.requesting.size === 4);
    const hung = [...h.requesting].filter((id) => Number(id.slice(4)) < 10);
    expect(hung).toHaveLength(2);
    for (let round = 0; round < 3; round++) {
      const ok = [...h.requesting].filter((id) => !hung.includes(id));
      for (const id of ok) {
        h.attempts.get(id)!.answer();
        h.attempts.get(id)!.record();
      }
      if (round < 2) await until(() => [...h.requesting].filter((id) => !hung.includes(id)).length === 2);
    }
    await until(() => h.requesting.size === 2);
    expect([...h.requesting].sort()).toEqual([...hung].sort());
    expect(queue.map((d) => d.endpointId)).toEqual(Array(4).fill("we_hung"));
    await h.drainAndStop();
    expect(h.attempts.size).toBe(12);
  });

  it("hands back what a claim returns beyond an endpoint's room, and never sends an endpoint more than its cap", async () => {
    const queue = Array.from({ length: 8 }, (_, i) => delivery(i, "we_one"));
    const h = harness(queue, { concurrency: 8, maxPerEndpoint: 3 }, true);
    await until(() => h.requesting.size === 3);
    // The five rows beyond the cap went back to the queue, ahead of nothing else.
    await until(() => queue.length === 5);
    expect(h.requesting.size).toBe(3);
    await h.drainAndStop();
    expect(h.attempts.size).toBe(8);
    expect(h.most().requesting).toBe(3);
  });
});
