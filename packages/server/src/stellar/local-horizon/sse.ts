import type { ServerResponse } from "node:http";
import type { History } from "./history.js";

/** What a stream serves: records after a cursor, and the topic under which new ones are announced. */
export interface StreamSource {
  /** Null when the set never grows (a transaction's operations). */
  topic: string | null;
  after(cursor: bigint | null, max: number): Array<{ key: bigint; id: string; data: unknown }>;
}

// Horizon's framing, byte for byte.
const HELLO = 'retry: 1000\nevent: open\ndata: "hello"\n\n';
const BYEBYE = 'event: close\ndata: "byebye"\n\n';
const BATCH = 100;

const drained = (res: ServerResponse) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });

/** Open server-sent-event streams: each sends the records after its cursor, then new ones as ledgers close. */
export class StreamHub {
  private readonly open = new Set<ServerResponse>();

  constructor(private readonly history: History) {}

  serve(res: ServerResponse, source: StreamSource, cursor: bigint | null): void {
    // The connection ends with the stream, so that closing the server waits for nothing else.
    res.shouldKeepAlive = false;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    res.write(HELLO);
    let position = cursor;
    let pumping = false;
    let again = false;
    let closed = false;
    // One writer at a time; a ledger closing mid-write sets `again` instead of interleaving frames.
    const pump = async () => {
      if (pumping) {
        again = true;
        return;
      }
      pumping = true;
      do {
        again = false;
        for (let batch = source.after(position, BATCH); batch.length > 0 && !closed; batch = source.after(position, BATCH)) {
          let flushed = true;
          for (const record of batch) {
            flushed = res.write(`id: ${record.id}\ndata: ${JSON.stringify(record.data)}\n\n`);
            position = record.key;
          }
          if (!flushed) await drained(res);
        }
      } while (again && !closed);
      pumping = false;
    };
    const unsubscribe = source.topic === null ? () => {} : this.history.subscribe(source.topic, () => void pump());
    this.open.add(res);
    res.on("close", () => {
      closed = true;
      unsubscribe();
      this.open.delete(res);
    });
    void pump();
  }

  /** Says goodbye on every stream and resolves once each connection is closed. */
  async closeAll(): Promise<void> {
    const closed = [...this.open].map(
      (res) =>
        new Promise<void>((resolve) => {
          res.once("close", resolve);
          res.end(BYEBYE);
        }),
    );
    await Promise.all(closed);
  }
}
