import type { IncomingMessage, ServerResponse } from "node:http";
import { StrKey } from "@stellar/stellar-sdk";
import { friendbot, mint } from "./faucet.js";
import { type PageQuery, pageOf, paymentsTopic } from "./history.js";
import { type LocalNetwork, PROTOCOL_VERSION, type Submission } from "./network.js";
import { badRequest, LocalHorizonError, notFound, type Problem, serverError } from "./problems.js";
import { accountJson, effectJson, isoSeconds, type Json, link, operationJson, pageJson, recordHash, transactionJson } from "./records.js";
import { BASE_FEE } from "./state.js";
import type { StreamHub } from "./sse.js";
import type { EffectRow, OpRow } from "./types.js";

const MAX_BODY_BYTES = 256 * 1024;
const MAX_INT64 = 9_223_372_036_854_775_807n;

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  base: string;
  params: string[];
}

const fail = (problem: Problem) => new LocalHorizonError(problem);

function send(res: ServerResponse, status: number, contentType: string, body: unknown): void {
  res.writeHead(status, { "content-type": `${contentType}; charset=utf-8` });
  res.end(JSON.stringify(body));
}

const sendJson = (res: ServerResponse, body: Json) => send(res, 200, "application/hal+json", body);
const sendProblem = (res: ServerResponse, problem: Problem) => send(res, problem.status, "application/problem+json", problem);

/** Answers a submission as `POST /transactions` does: the record, or Horizon's problem (also for an included failure). */
function sendSubmission(res: ServerResponse, outcome: Submission, base: string): void {
  if (outcome.kind === "rejected") return sendProblem(res, outcome.problem);
  if (outcome.problem) return sendProblem(res, outcome.problem);
  sendJson(res, transactionJson(outcome.row, base, recordHash(outcome.row)));
}

const wantsStream = (req: IncomingMessage) => (req.headers.accept ?? "").includes("text/event-stream");

/** Effects sort by operation id, then index: both fit one bigint key. */
const effectKey = (opId: bigint, index: number) => (opId << 16n) | BigInt(index);

interface ListParams {
  query: PageQuery;
  /** The cursor as requested, echoed in the page links. */
  cursorText: string;
  includeFailed: boolean;
  join: boolean;
  stream: boolean;
}

function listParams(ctx: Context, network: LocalNetwork, kind: "toid" | "effect"): ListParams {
  const params = ctx.url.searchParams;
  const stream = wantsStream(ctx.req);
  // Streams only run forwards.
  const order = stream ? "asc" : params.get("order") || "asc";
  if (order !== "asc" && order !== "desc") throw fail(badRequest("order", "order: must be asc or desc"));
  const limitText = params.get("limit") || "10";
  const limit = /^\d{1,3}$/.test(limitText) ? Number(limitText) : 0;
  if (limit < 1 || limit > 200) throw fail(badRequest("limit", "limit: must be between 1 and 200"));
  const includeFailed = params.get("include_failed") ?? "";
  if (!["", "true", "false"].includes(includeFailed)) throw fail(badRequest("include_failed", "include_failed: must be true or false"));
  const join = params.get("join") ?? "";
  if (join !== "" && join !== "transactions") throw fail(badRequest("join", "join: accepted values are transactions"));
  // A reconnecting EventSource resumes from the last id it saw, as Horizon honours.
  const lastEventId = stream ? ctx.req.headers["last-event-id"] : undefined;
  const cursorText = (typeof lastEventId === "string" && lastEventId) || params.get("cursor") || "";
  return { query: { cursor: parseCursor(cursorText, kind, order, network), order, limit }, cursorText, includeFailed: includeFailed === "true", join: join !== "", stream };
}

function parseCursor(text: string, kind: "toid" | "effect", order: "asc" | "desc", network: LocalNetwork): bigint | null {
  if (text === "") return null;
  if (text === "now") {
    if (order === "desc") return null;
    // Everything up to the last closed ledger is in the past.
    const now = (BigInt(network.chain.openSequence) << 32n) - 1n;
    return kind === "effect" ? effectKey(now, 0xffff) : now;
  }
  const match = /^(\d{1,19})(?:-(\d{1,5}))?$/.exec(text);
  const id = match ? BigInt(match[1]!) : -1n;
  if (!match || id > MAX_INT64 || (match[2] !== undefined && kind !== "effect")) throw fail(badRequest("cursor", "cursor: not a valid paging token"));
  return kind === "effect" ? effectKey(id, Number(match[2] ?? 0)) : id;
}

interface Listing<T> {
  rows: () => readonly T[];
  key: (row: T) => bigint;
  token: (row: T) => string;
  render: (row: T) => Json;
  /** Where new rows are announced; null when the list never grows. */
  topic: string | null;
}

function list<T>(ctx: Context, streams: StreamHub, params: ListParams, listing: Listing<T>): void {
  if (params.stream) {
    streams.serve(
      ctx.res,
      {
        topic: listing.topic,
        after: (cursor, max) =>
          pageOf(listing.rows(), listing.key, { cursor, order: "asc", limit: max }).map((row) => ({
            key: listing.key(row),
            id: listing.token(row),
            data: listing.render(row),
          })),
      },
      params.query.cursor,
    );
    return;
  }
  const records = pageOf(listing.rows(), listing.key, params.query).map(listing.render);
  sendJson(ctx.res, pageJson({ base: ctx.base, path: ctx.url.pathname, params: ctx.url.searchParams, cursor: params.cursorText, query: params.query }, records));
}

function accountId(text: string): string {
  if (!StrKey.isValidEd25519PublicKey(text)) throw fail(badRequest("account_id", "account_id: must be a G… account"));
  return text;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw fail(badRequest("tx", "request body too large"));
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function rootJson(network: LocalNetwork, base: string): Json {
  const latest = network.chain.latest;
  return {
    _links: {
      account: link(`${base}/accounts/{account_id}`, true),
      fee_stats: link(`${base}/fee_stats`),
      friendbot: link(`${base}/friendbot{?addr}`, true),
      operation: link(`${base}/operations/{id}`, true),
      payments: link(`${base}/payments{?cursor,limit,order}`, true),
      self: link(`${base}/`),
      transaction: link(`${base}/transactions/{hash}`, true),
    },
    horizon_version: "lumenpay-local",
    core_version: "lumenpay-local",
    ingest_latest_ledger: latest.sequence,
    history_latest_ledger: latest.sequence,
    history_latest_ledger_closed_at: isoSeconds(latest.closedAt),
    history_elder_ledger: 1,
    core_latest_ledger: latest.sequence,
    network_passphrase: network.options.networkPassphrase,
    current_protocol_version: PROTOCOL_VERSION,
    core_supported_protocol_version: PROTOCOL_VERSION,
    supported_protocol_version: PROTOCOL_VERSION,
  };
}

/** The local network never surge-prices: every percentile is the base fee. */
function feeStatsJson(network: LocalNetwork): Json {
  const fee = BASE_FEE.toString();
  const distribution = Object.fromEntries(["max", "min", "mode", "p10", "p20", "p30", "p40", "p50", "p60", "p70", "p80", "p90", "p95", "p99"].map((k) => [k, fee]));
  return {
    last_ledger: String(network.chain.latest.sequence),
    last_ledger_base_fee: fee,
    ledger_capacity_usage: "0.00",
    fee_charged: distribution,
    max_fee: distribution,
  };
}

type Route = [method: string, pattern: RegExp, handler: (ctx: Context) => void | Promise<void>];

/** The request handler of the local Horizon: routes, query validation, JSON pages and streams. */
export function createHandler(network: LocalNetwork, streams: StreamHub, fallbackBase: string) {
  const history = network.history;
  const operation = (text: string): OpRow => {
    const op = /^\d{1,19}$/.test(text) ? history.operation(BigInt(text)) : undefined;
    if (!op) throw fail(notFound());
    return op;
  };
  const transaction = (text: string) => {
    const hash = text.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hash)) throw fail(badRequest("tx_id", "tx_id: must be a 64-character hex hash"));
    const row = history.transaction(hash);
    if (!row) throw fail(notFound());
    return { row, hash };
  };
  const operations = (ctx: Context, params: ListParams, rows: () => readonly OpRow[], topic: string | null) =>
    list(ctx, streams, params, {
      rows,
      key: (op) => op.id,
      token: (op) => op.id.toString(),
      render: (op) => operationJson(op, ctx.base, params.join),
      topic,
    });

  const routes: Route[] = [
    ["GET", /^\/$/, (ctx) => sendJson(ctx.res, rootJson(network, ctx.base))],
    ["GET", /^\/fee_stats$/, (ctx) => sendJson(ctx.res, feeStatsJson(network))],
    [
      "GET",
      /^\/accounts\/([^/]+)$/,
      (ctx) => {
        const account = network.state.accounts.get(accountId(ctx.params[0]!));
        if (!account) throw fail(notFound());
        const modifiedAt = network.chain.closeTimeOf(account.lastModifiedLedger) ?? network.options.clock();
        sendJson(ctx.res, accountJson(account, ctx.base, modifiedAt));
      },
    ],
    [
      "GET",
      /^\/accounts\/([^/]+)\/payments$/,
      (ctx) => {
        const id = accountId(ctx.params[0]!);
        const params = listParams(ctx, network, "toid");
        operations(ctx, params, () => {
          const index = history.paymentsOf(id);
          return index ? (params.includeFailed ? index.all : index.successful) : [];
        }, paymentsTopic(id));
      },
    ],
    [
      "GET",
      /^\/payments$/,
      (ctx) => {
        const params = listParams(ctx, network, "toid");
        operations(ctx, params, () => (params.includeFailed ? history.payments.all : history.payments.successful), paymentsTopic());
      },
    ],
    [
      "GET",
      /^\/transactions\/([^/]+)$/,
      (ctx) => {
        const { row, hash } = transaction(ctx.params[0]!);
        sendJson(ctx.res, transactionJson(row, ctx.base, hash));
      },
    ],
    [
      "GET",
      /^\/transactions\/([^/]+)\/operations$/,
      (ctx) => {
        const { row } = transaction(ctx.params[0]!);
        // A transaction's own operations are listed whether or not it succeeded.
        operations(ctx, listParams(ctx, network, "toid"), () => row.ops, null);
      },
    ],
    ["GET", /^\/operations\/([^/]+)$/, (ctx) => sendJson(ctx.res, operationJson(operation(ctx.params[0]!), ctx.base, ctx.url.searchParams.get("join") === "transactions"))],
    [
      "GET",
      /^\/operations\/([^/]+)\/effects$/,
      (ctx) => {
        const op = operation(ctx.params[0]!);
        list<EffectRow>(ctx, streams, listParams(ctx, network, "effect"), {
          rows: () => op.effects,
          key: (effect) => effectKey(op.id, effect.index),
          token: (effect) => `${op.id}-${effect.index}`,
          render: (effect) => effectJson(effect, ctx.base),
          topic: null,
        });
      },
    ],
    [
      "POST",
      /^\/transactions$/,
      async (ctx) => {
        const envelope = new URLSearchParams(await readBody(ctx.req)).get("tx");
        if (!envelope) throw fail(badRequest("tx", "tx: a base64 transaction envelope is required"));
        sendSubmission(ctx.res, await network.submit(envelope), ctx.base);
      },
    ],
    ["GET", /^\/friendbot$/, async (ctx) => sendSubmission(ctx.res, await friendbot(network, ctx.url.searchParams), ctx.base)],
    ["POST", /^\/_local\/mint$/, async (ctx) => sendSubmission(ctx.res, await mint(network, new URLSearchParams(await readBody(ctx.req))), ctx.base)],
  ];

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const base = req.headers.host ? `http://${req.headers.host}` : fallbackBase;
    const url = new URL(req.url ?? "/", base);
    for (const [method, pattern, handler] of routes) {
      const match = pattern.exec(url.pathname);
      if (match && req.method === method) return handler({ req, res, url, base, params: match.slice(1).map(decodeURIComponent) });
    }
    throw fail(notFound());
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    dispatch(req, res).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      sendProblem(res, error instanceof LocalHorizonError ? error.problem : serverError());
    });
  };
}
