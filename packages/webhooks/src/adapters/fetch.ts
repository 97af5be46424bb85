import type { Router, RouterResponse } from "../router.js";
import {
  alreadyParsed,
  BodyCollector,
  bodyLimitOf,
  methodNotAllowed,
  rejectBeforeReading,
  serialize,
  tooLarge,
  type AdapterOptions,
} from "./http.js";

/** The body, or undefined once it passes `limit` (then the stream is cancelled, not drained). */
async function readBody(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Uint8Array | undefined> {
  const collector = new BodyCollector(limit);
  if (!body) return collector.bytes();
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return collector.bytes();
    if (!collector.add(value)) {
      await reader.cancel();
      return undefined;
    }
  }
}

function toResponse(response: RouterResponse): Response {
  const { status, headers, text } = serialize(response);
  return new Response(text, { status, headers });
}

/**
 * A Fetch API handler, `(request) => Promise<Response>`: Hono (`(c) => handler(c.req.raw)`),
 * Next.js route handlers (`export const POST = handler`), Cloudflare Workers, Deno, Bun. The
 * Content-Length is checked first and the stream is counted as it is read, since a chunked body
 * announces no length.
 */
export function fetchHandler(router: Router, options?: AdapterOptions): (request: Request) => Promise<Response> {
  const limit = bodyLimitOf(options);
  return async (request) => {
    if (request.method !== "POST") return toResponse(methodNotAllowed);
    const early = rejectBeforeReading(request.headers.get("content-type"), request.headers.get("content-length"), limit);
    if (early) return toResponse(early);
    if (request.bodyUsed) {
      return toResponse(alreadyParsed("The request body was read before this handler (request.json(), or a middleware); pass the untouched Request."));
    }
    const rawBody = await readBody(request.body, limit);
    if (rawBody === undefined) return toResponse(tooLarge(limit));
    return toResponse(await router.handle({ rawBody, headers: request.headers }));
  };
}
