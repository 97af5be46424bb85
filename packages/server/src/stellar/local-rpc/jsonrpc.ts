import type { IncomingMessage, ServerResponse } from "node:http";

/** JSON-RPC 2.0's error codes, the ones stellar-rpc answers with. */
export const RPC_ERRORS = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
} as const;

/** Every refusal of the local RPC: answered as a JSON-RPC error object, with HTTP 200 as stellar-rpc does. */
export class RpcError extends Error {
  override name = "RpcError";
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export const invalidParams = (message: string) => new RpcError(RPC_ERRORS.invalidParams, message);

/** A method's by-name parameters, read with the checks Go's JSON decoding makes in stellar-rpc. */
export class Params {
  constructor(
    private readonly values: Record<string, unknown>,
    private readonly path = "",
  ) {}

  private name(key: string) {
    return `${this.path}${key}`;
  }

  private wrong(key: string, expected: string): RpcError {
    return invalidParams(`invalid parameters: ${this.name(key)} must be ${expected}`);
  }

  /** A uint32, 0 when absent (Go's zero value: stellar-rpc cannot tell the two apart either). */
  uint32(key: string): number {
    const value = this.values[key];
    if (value === undefined || value === null) return 0;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw this.wrong(key, "an integer between 0 and 4294967295");
    return value;
  }

  string(key: string): string | undefined {
    const value = this.values[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") throw this.wrong(key, "a string");
    return value;
  }

  object(key: string): Params | undefined {
    const value = this.values[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "object" || Array.isArray(value)) throw this.wrong(key, "an object");
    return new Params(value as Record<string, unknown>, `${this.name(key)}.`);
  }

  array(key: string): unknown[] {
    const value = this.values[key];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw this.wrong(key, "an array");
    return value;
  }
}

export type Method = (params: Params) => unknown;

// Generous for by-name parameters; a runaway body is cut off instead of buffered.
const MAX_BODY_BYTES = 1024 * 1024;

type Id = string | number | null;

const reply = (id: Id, result: unknown) => ({ jsonrpc: "2.0", id, result });
const replyError = (id: Id, error: RpcError) => ({ jsonrpc: "2.0", id, error: { code: error.code, message: error.message } });

function call(methods: ReadonlyMap<string, Method>, request: unknown): object {
  if (request === null || typeof request !== "object" || Array.isArray(request)) {
    return replyError(null, new RpcError(RPC_ERRORS.invalidRequest, "invalid request: not a JSON-RPC request object"));
  }
  const { jsonrpc, id = null, method, params } = request as Record<string, unknown>;
  const validId = id === null || typeof id === "string" || typeof id === "number";
  if (jsonrpc !== "2.0" || typeof method !== "string" || !validId) {
    return replyError(validId ? id : null, new RpcError(RPC_ERRORS.invalidRequest, 'invalid request: needs "jsonrpc": "2.0", a string method and a string, number or null id'));
  }
  try {
    const run = methods.get(method);
    if (!run) throw new RpcError(RPC_ERRORS.methodNotFound, `no such method "${method}"`);
    // Parameters go by name; no parameters may also come as null or an empty list.
    const byName = params === undefined || params === null || (Array.isArray(params) && params.length === 0) ? {} : params;
    if (typeof byName !== "object" || Array.isArray(byName)) throw invalidParams("invalid parameters: they go by name, in an object");
    return reply(id, run(new Params(byName as Record<string, unknown>)));
  } catch (error) {
    return replyError(id, error instanceof RpcError ? error : new RpcError(RPC_ERRORS.internalError, "internal error"));
  }
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}

/** JSON-RPC 2.0 over HTTP POST, single requests and batches, dispatched to `methods`. */
export function createJsonRpcHandler(methods: ReadonlyMap<string, Method>) {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== "POST") {
      res.writeHead(405, { allow: "POST" });
      return void res.end();
    }
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, replyError(null, new RpcError(RPC_ERRORS.invalidRequest, "request body too large")));
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return send(res, 200, replyError(null, new RpcError(RPC_ERRORS.parseError, "parse error: the body is not JSON")));
    }
    if (!Array.isArray(parsed)) return send(res, 200, call(methods, parsed));
    if (parsed.length === 0) return send(res, 200, replyError(null, new RpcError(RPC_ERRORS.invalidRequest, "invalid request: empty batch")));
    send(res, 200, parsed.map((request) => call(methods, request)));
  };
  return (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => {
      if (res.headersSent) return void res.destroy();
      send(res, 200, replyError(null, new RpcError(RPC_ERRORS.internalError, "internal error")));
    });
  };
}
