import type { IncomingMessage, ServerResponse } from "node:http";
import type { Router } from "../router.js";
import { bodyLimitOf, type AdapterOptions } from "./http.js";
import { failed, serveNode } from "./node.js";

const PARSED_HINT =
  "express.json() (or another body parser) ran before this route: mount it after the webhook route, " +
  "or on other routes only, or use express.raw({ type: \"application/json\" }) here.";

/**
 * An Express route handler: `app.post("/webhooks/lumenpay", expressHandler(router))`. Reads the
 * raw body from the stream, or takes the Buffer `express.raw()` left in `req.body`; a body that
 * `express.json()` already parsed gets a 500 that says so, since its signature cannot be checked.
 * Typed structurally, so this package does not depend on Express.
 */
export function expressHandler(
  router: Router,
  options?: AdapterOptions,
): (req: IncomingMessage & { body?: unknown }, res: ServerResponse, next?: (error?: unknown) => void) => void {
  const limit = bodyLimitOf(options);
  return (req, res, next) => {
    serveNode(router, limit, req, res, req.body, PARSED_HINT).catch((error: unknown) => (next ? next(error) : failed(res)));
  };
}
