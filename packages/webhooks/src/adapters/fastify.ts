import type { IncomingHttpHeaders } from "node:http";
import type { Router } from "../router.js";
import { bodyLimitOf, rejectBeforeReading, serialize, type AdapterOptions } from "./http.js";

/** The parts of a Fastify instance the plugin uses, so this package does not depend on Fastify. */
export interface FastifyInstanceLike {
  removeAllContentTypeParsers(): void;
  addContentTypeParser(
    contentType: string,
    options: { parseAs: "buffer"; bodyLimit: number },
    parser: (request: unknown, body: Uint8Array, done: (error: Error | null, body?: Uint8Array) => void) => void,
  ): void;
  post(
    path: string,
    options: { bodyLimit: number },
    handler: (request: { body: unknown; headers: IncomingHttpHeaders }, reply: FastifyReplyLike) => Promise<unknown>,
  ): unknown;
}

export interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  headers(headers: Record<string, string>): FastifyReplyLike;
  send(payload: string): FastifyReplyLike;
}

export interface FastifyPluginOptions extends AdapterOptions {
  /** Route of the webhook inside the plugin (its register `prefix` applies). Default "/". */
  path?: string;
}

/**
 * A Fastify plugin: `app.register(fastifyPlugin(router, { path: "/webhooks/lumenpay" }))`. Its
 * content-type parser keeps the body as a Buffer, and being registered inside the plugin it stays
 * there: the rest of the app keeps parsing JSON as usual. Fastify answers 413 past `bodyLimit`.
 */
export function fastifyPlugin(router: Router, options: FastifyPluginOptions = {}): (fastify: FastifyInstanceLike) => Promise<void> {
  const limit = bodyLimitOf(options);
  const path = options.path ?? "/";
  return async function lumenpayWebhooks(fastify) {
    // Every type is read as bytes, so the answer to a wrong content-type is the same 415 as elsewhere.
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: limit }, (_request, body, done) => done(null, body));
    fastify.post(path, { bodyLimit: limit }, async (request, reply) => {
      const { headers } = request;
      const response =
        rejectBeforeReading(headers["content-type"], headers["content-length"], limit) ??
        (await router.handle({ rawBody: request.body instanceof Uint8Array ? request.body : new Uint8Array(0), headers }));
      const { status, headers: responseHeaders, text } = serialize(response);
      return reply.code(status).headers(responseHeaders).send(text);
    });
  };
}
