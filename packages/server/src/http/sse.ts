import { Readable } from "node:stream";
import type { FastifyReply } from "fastify";

/** Server-sent event streams, shared by the checkout's live status and the merchant's event stream. */

/**
 * Counts this process's open streams against `max`; `take` returns the slot's release (idempotent),
 * or undefined when none is free. Create one per plugin instance: the count is that app's alone.
 */
export function streamSlots(max: number) {
  let open = 0;
  return {
    take(): (() => void) | undefined {
      if (open >= max) return undefined;
      open++;
      let released = false;
      return () => {
        if (!released) open--;
        released = true;
      };
    },
  };
}

/** Answers with `chunks` as a server-sent event stream, pulled as the client reads. */
export function sendEventStream(reply: FastifyReply, chunks: AsyncIterable<string>): FastifyReply {
  return reply
    .header("content-type", "text/event-stream; charset=utf-8")
    .header("cache-control", "no-store")
    // Proxies such as nginx would otherwise hold events back in their buffers.
    .header("x-accel-buffering", "no")
    .send(Readable.from(chunks));
}
