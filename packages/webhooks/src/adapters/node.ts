import type { IncomingMessage, ServerResponse } from "node:http";
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

const encoder = new TextEncoder();

function send(res: ServerResponse, response: RouterResponse): void {
  if (res.headersSent) return;
  const { status, headers, text } = serialize(response);
  // After a 413 the rest of the body is still on its way; closing stops it being read to the end.
  res.writeHead(status, status === 413 ? { ...headers, connection: "close" } : headers);
  res.end(text);
}

/** The body, or undefined once it passes `limit`; rejects if the client goes away first. */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  const body = new BodyCollector(limit);
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Uint8Array | string) => {
      if (body.add(typeof chunk === "string" ? encoder.encode(chunk) : chunk)) return;
      cleanup();
      resolve(undefined);
    };
    const onEnd = () => {
      cleanup();
      resolve(body.bytes());
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => onError(new Error("The client closed the connection before sending the whole body"));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

const byteLength = (body: string | Uint8Array) => (typeof body === "string" ? encoder.encode(body).byteLength : body.byteLength);

/**
 * Shared by nodeHandler and expressHandler. `parsed` is what a framework already made of the body:
 * raw bytes or text are used as they are, anything else means a JSON parser got there first.
 */
export async function serveNode(
  router: Router,
  limit: number,
  req: IncomingMessage,
  res: ServerResponse,
  parsed: unknown,
  parsedHint: string,
): Promise<void> {
  if (req.method !== "POST") return send(res, methodNotAllowed);
  const early = rejectBeforeReading(req.headers["content-type"], req.headers["content-length"], limit);
  if (early) return send(res, early);
  let rawBody: string | Uint8Array | undefined;
  if (typeof parsed === "string" || parsed instanceof Uint8Array) {
    rawBody = parsed;
    if (byteLength(rawBody) > limit) return send(res, tooLarge(limit));
  } else if (parsed !== undefined && parsed !== null) {
    return send(res, alreadyParsed(parsedHint));
  } else if (req.readableEnded) {
    return send(res, alreadyParsed("Another middleware read the request stream before this route."));
  } else {
    rawBody = await readBody(req, limit);
    if (rawBody === undefined) return send(res, tooLarge(limit));
  }
  send(res, await router.handle({ rawBody, headers: req.headers }));
}

/** Answers an error nobody else handled: 500 if nothing was sent yet, else drop the connection. */
export function failed(res: ServerResponse): void {
  if (res.headersSent) res.destroy();
  else send(res, { status: 500, body: { error: "internal_error" } });
}

/**
 * A `node:http` request listener: `http.createServer(nodeHandler(router))`, or call it from your
 * own listener for the webhook path. Reads the raw body itself, at most `bodyLimit` bytes.
 */
export function nodeHandler(router: Router, options?: AdapterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const limit = bodyLimitOf(options);
  return (req, res) => {
    serveNode(router, limit, req, res, undefined, "").catch(() => failed(res));
  };
}
