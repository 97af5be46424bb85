import { Horizon, Memo } from "@stellar/stellar-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalHorizon, startLocalHorizon } from "../src/stellar/local-horizon/index.js";

const HELLO = 'retry: 1000\nevent: open\ndata: "hello"\n\n';
const BYEBYE = 'event: close\ndata: "byebye"\n\n';

let horizon: LocalHorizon;
beforeAll(async () => {
  horizon = await startLocalHorizon();
});
afterAll(() => horizon.close());

/** Reads an event stream's body frame by frame (frames end with a blank line). */
function frames(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    async next(): Promise<string | null> {
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const frame = buffer.slice(0, end + 2);
          buffer = buffer.slice(end + 2);
          return frame;
        }
        const { done, value } = await reader.read();
        if (done) return buffer === "" ? null : buffer;
        buffer += decoder.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

describe("server-sent events", () => {
  it("streams a new payment through the SDK, with the transaction joined", async () => {
    const payer = await horizon.newAccount("100");
    const merchant = await horizon.newAccount("1");
    const server = new Horizon.Server(horizon.url, { allowHttp: true });
    const existing = await server.payments().forAccount(merchant.publicKey()).order("desc").limit(1).call();

    const received: Horizon.ServerApi.PaymentOperationRecord[] = [];
    let arrived: () => void = () => {};
    const twoArrived = new Promise<void>((resolve) => (arrived = resolve));
    const errors: unknown[] = [];
    const stop = server
      .payments()
      .forAccount(merchant.publicKey())
      .cursor(existing.records[0]!.paging_token)
      .join("transactions")
      .stream({
        onmessage: (record) => {
          received.push(record as Horizon.ServerApi.PaymentOperationRecord);
          if (received.length === 2) arrived();
        },
        onerror: (error) => errors.push(error),
      });
    try {
      // One payment may land before the stream connects and one after: the cursor makes both arrive.
      await horizon.pay({ from: payer, to: merchant.publicKey(), amount: "1.5", memo: Memo.text("first") });
      await horizon.pay({ from: payer, to: merchant.publicKey(), amount: "2.5", memo: Memo.text("second") });
      await twoArrived;
    } finally {
      stop();
    }
    expect(received.map((r) => [r.amount, (r as unknown as { transaction_attr: { memo: string } }).transaction_attr.memo])).toEqual([
      ["1.5000000", "first"],
      ["2.5000000", "second"],
    ]);
    expect(errors).toEqual([]);
  });

  it("frames hello, records and byebye exactly as Horizon does, and cursor=now skips the past", async () => {
    const own = await startLocalHorizon();
    let closed = false;
    try {
      const payer = await own.newAccount("100");
      const merchant = await own.newAccount("1");
      await own.pay({ from: payer, to: merchant.publicKey(), amount: "9" });

      const res = await fetch(`${own.url}/accounts/${merchant.publicKey()}/payments?cursor=now&join=transactions`, {
        headers: { accept: "text/event-stream" },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
      const stream = frames(res.body!);
      expect(await stream.next()).toBe(HELLO);

      const record = await own.pay({ from: payer, to: merchant.publicKey(), amount: "3", memo: Memo.id("12") });
      const frame = await stream.next();
      const match = /^id: (\d+)\ndata: (.+)\n\n$/.exec(frame ?? "");
      expect(match).not.toBeNull();
      const data = JSON.parse(match![2]!) as { paging_token: string; amount: string; transaction: { hash: string; memo: string } };
      expect(data.paging_token).toBe(match![1]);
      expect(data).toMatchObject({ amount: "3.0000000", transaction: { hash: record.hash, memo: "12" } });
      // The operation's TOID is the transaction's with operation index 1.
      expect(BigInt(data.paging_token)).toBe(BigInt(record.paging_token) + 1n);

      await own.close();
      closed = true;
      expect(await stream.next()).toBe(BYEBYE);
      expect(await stream.next()).toBeNull();
    } finally {
      if (!closed) await own.close();
    }
  });

  it("sends the records after the cursor on connect and resumes from Last-Event-ID", async () => {
    const payer = await horizon.newAccount("100");
    const merchant = await horizon.newAccount("1");
    const first = await horizon.pay({ from: payer, to: merchant.publicKey(), amount: "1" });
    await horizon.pay({ from: payer, to: merchant.publicKey(), amount: "2" });
    const controller = new AbortController();
    const res = await fetch(`${horizon.url}/accounts/${merchant.publicKey()}/payments?cursor=${BigInt(first.paging_token) + 1n}`, {
      headers: { accept: "text/event-stream" },
      signal: controller.signal,
    });
    const stream = frames(res.body!);
    try {
      expect(await stream.next()).toBe(HELLO);
      const frame = await stream.next();
      expect(JSON.parse(frame!.split("\ndata: ")[1]!)).toMatchObject({ amount: "2.0000000" });
      // A reconnecting EventSource resumes after Last-Event-ID rather than the URL's cursor.
      const resumed = await fetch(`${horizon.url}/accounts/${merchant.publicKey()}/payments?cursor=0`, {
        headers: { accept: "text/event-stream", "last-event-id": String(BigInt(first.paging_token) + 1n) },
        signal: controller.signal,
      });
      const resumedFrames = frames(resumed.body!);
      expect(await resumedFrames.next()).toBe(HELLO);
      expect(JSON.parse((await resumedFrames.next())!.split("\ndata: ")[1]!)).toMatchObject({ amount: "2.0000000" });
    } finally {
      controller.abort();
    }
  });
});
