import http from "node:http";
import { Keypair } from "@stellar/stellar-sdk";
import fc from "fast-check";
import type pg from "pg";
import { newId } from "../../src/ids.js";
import { createMerchant } from "../../src/merchants/service.js";
import { insertUnmatched } from "../../src/payments/unmatched-store.js";
import { fromSchema, hostileText, hostileValue, type Hostility, type JsonSchema } from "./fuzz-inputs.js";

/**
 * The API fuzzer: requests generated from the OpenAPI document (so a new route is fuzzed without new
 * code), sent over real HTTP to a running server, each checked against properties that must hold for
 * any input. Tenant A's data is the control: every request comes from tenant B, or from nobody.
 */

export interface Tenant {
  /** Bearer token. */
  apiKey: string;
  merchantId: string;
  /** Existing ids by prefix (`pay`, `evt`, `we`, `del`, `unm`, `rcv`…). */
  ids: Record<string, string[]>;
}

export interface FuzzRequest {
  method: string;
  /** Path and query string as sent, percent-encoded. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** The operation it was generated from, for reports. */
  operation: string;
}

/**
 * A merchant with some of everything the API can address — payments (one canceled), an endpoint, its
 * deliveries, events, an unmatched payment, a recovery — made through the API of the server at `origin`.
 * `endpointUrl` is where its webhooks go (by default a name that does not resolve).
 */
export async function createTenant(db: pg.Pool, origin: URL, name: string, options: { account?: string; endpointUrl?: string } = {}): Promise<Tenant> {
  const account = options.account ?? Keypair.random().publicKey();
  const { merchant, secret } = await createMerchant(db, { name, email: `${name}@example.test`, accounts: [account] }, new Date());
  const call = async (method: "POST" | "GET", path: string, payload?: object) => {
    const res = await fetch(new URL(path, origin), {
      method,
      headers: { authorization: `Bearer ${secret}`, ...(payload && { "content-type": "application/json" }) },
      ...(payload && { body: JSON.stringify(payload) }),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`setting up tenant ${name}: ${method} ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text);
  };
  const endpoint = await call("POST", "/v1/webhook_endpoints", { url: options.endpointUrl ?? `https://${name}.example.test/hooks`, enabled_events: ["*"] });
  const payments = [await call("POST", "/v1/payments", { amount: "1", asset: "XLM" }), await call("POST", "/v1/payments", { amount: "2.5", asset: "XLM", memo_type: "text", memo: "order-1" })];
  await call("POST", `/v1/payments/${payments[1].id}/cancel`);
  const recovery = await call("POST", `/v1/webhook_endpoints/${endpoint.id}/recover`, { since: "2020-01-01T00:00:00Z" });
  // In a ledger no test network reaches, so it never takes the id of a real operation.
  const ledger = 2 ** 30 + Math.floor(Math.random() * 2 ** 20);
  const unmatched = await insertUnmatched(db, {
    id: newId("unm"),
    merchantId: merchant.id,
    op: {
      operationId: String((BigInt(ledger) << 32n) | 4097n),
      transactionHash: "ab".repeat(32),
      ledger,
      closedAt: new Date(),
      to: account,
      muxedId: null,
      memo: null,
      shownMemo: { type: "none", value: null },
      asset: { code: "XLM", issuer: null },
      amountStroops: 10_000_000n,
      from: Keypair.random().publicKey(),
      createsAccount: false,
    },
    reason: "no_memo",
    paymentId: null,
    now: new Date(),
  });
  const events = (await call("GET", "/v1/events?limit=100")).data.map((e: { id: string }) => e.id);
  const deliveries = (await call("GET", `/v1/webhook_endpoints/${endpoint.id}/deliveries?limit=100`)).data.map((d: { id: string }) => d.id);
  return {
    apiKey: secret,
    merchantId: merchant.id,
    ids: { pay: payments.map((p: { id: string }) => p.id), we: [endpoint.id], evt: events, del: deliveries, unm: [unmatched!.id], rcv: [recovery.id], account: [account] },
  };
}

interface Operation {
  method: string;
  template: string;
  parameters: Array<{ in: string; name: string; required?: boolean; schema: JsonSchema }>;
  body?: JsonSchema;
}

interface OpenApi {
  paths: Record<string, Record<string, { parameters?: Operation["parameters"]; requestBody?: { content?: Record<string, { schema: JsonSchema }> } }>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

function operations(doc: OpenApi): Operation[] {
  return Object.entries(doc.paths).flatMap(([template, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      template,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content?.["application/json"]?.schema,
    })),
  );
}

/** Percent-encodes text for a URL, sometimes leaving malformed escapes in. */
const encoded = (text: string) => encodeURIComponent(text.replace(/[\ud800-\udfff]/g, "\ufffd"));
const urlPart = fc.oneof(
  { arbitrary: hostileText.map(encoded), weight: 8 },
  { arbitrary: fc.constantFrom("%", "%E0%A4%A", "%ZZ", "%00", "%C0%AF", "%FF%FE", "..%2F..%2F"), weight: 1 },
);

/** A path-parameter value: one of B's ids, one of A's, or something else. */
function idValue(a: Tenant, b: Tenant): fc.Arbitrary<string> {
  const all = (t: Tenant) => Object.values(t.ids).flat();
  return fc.oneof(
    { arbitrary: fc.constantFrom(...all(b)).map(encodeURIComponent), weight: 4 },
    { arbitrary: fc.constantFrom(...all(a)).map(encodeURIComponent), weight: 2 },
    { arbitrary: urlPart, weight: 2 },
  );
}

/** One of B's ids of the kind the parameter takes (its pattern names the prefix). */
function ownId(b: Tenant, schema: JsonSchema): fc.Arbitrary<string> {
  const all = Object.values(b.ids).flat();
  const fitting = schema.pattern ? all.filter((id) => new RegExp(schema.pattern!).test(id)) : all;
  return fc.constantFrom(...(fitting.length > 0 ? fitting : all)).map(encodeURIComponent);
}

/** A raw body: the JSON of a value, or bytes no JSON parser should accept. */
function rawBody(value: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { arbitrary: value.map((v) => Buffer.from(JSON.stringify(v) ?? "null")), weight: 12 },
    {
      arbitrary: fc.constantFrom(
        Buffer.from('{"amount":"1","amount":"2","asset":"XLM"}'),
        Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0x22, 0x7d]),
        Buffer.from('{"__proto__":{"admin":true}}'),
        Buffer.from('{"constructor":{"prototype":{"x":1}}}'),
        Buffer.from("{"),
        Buffer.from(""),
        Buffer.from("[".repeat(200_000)),
        Buffer.from(`{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}`),
        Buffer.from(`${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}`),
      ),
      weight: 1,
    },
    { arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)), weight: 1 },
  );
}

const contentTypes = fc.constantFrom(
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json; charset=latin1",
  "application/JSON",
  "",
  "application/json, text/plain",
);

/**
 * Requests for every operation of `doc`, authenticated as B (or not at all), aimed at A's and B's ids:
 * half of them well-formed (to reach the handlers and their SQL), half hostile at every level.
 */
export function requestArbitrary(doc: OpenApi, a: Tenant, b: Tenant): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(...operations(doc).flatMap((op) => [operationRequests(doc, op, a, b, 0), operationRequests(doc, op, a, b, 20)]));
}

function operationRequests(doc: OpenApi, op: Operation, a: Tenant, b: Tenant, hostility: Hostility): fc.Arbitrary<FuzzRequest> {
  const resolve = (ref: string) => doc.components?.schemas?.[ref.split("/").pop()!] ?? {};
  const sometimes = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) => (hostility === 0 ? usual : fc.oneof({ arbitrary: usual, weight: 12 }, { arbitrary: odd, weight: 1 }));
  const auth = sometimes(
    fc.constant(`Bearer ${b.apiKey}`),
    fc.constantFrom("", "Bearer", "Bearer sk_", "Basic Zm9vOmJhcg==", `Bearer ${b.apiKey}x`, `bearer  ${b.apiKey}`),
  );
  const params = op.parameters.filter((p) => p.in === "path");
  const query = op.parameters.filter((p) => p.in === "query");
  const schemaValue = (p: { schema: JsonSchema }) => {
    const value = fromSchema(p.schema, resolve, hostility).map((v) => encoded(typeof v === "string" ? v : (JSON.stringify(v) ?? "")));
    return hostility === 0 ? value : fc.oneof({ arbitrary: value, weight: 3 }, { arbitrary: urlPart, weight: 1 });
  };
  const body = op.body ? fromSchema(op.body, resolve, hostility) : hostileValue;
  return fc
    .record({
      params: fc.tuple(...params.map((p) => (hostility === 0 ? ownId(b, p.schema) : idValue(a, b)))),
      query: fc.tuple(...query.map((p) => fc.option(schemaValue(p), { freq: 2 }))),
      extraQuery: hostility === 0 ? fc.constant(null) : fc.option(fc.tuple(fc.string({ maxLength: 8 }), urlPart), { freq: 8 }),
      body: op.body ? (hostility === 0 ? body.map((v) => Buffer.from(JSON.stringify(v))) : fc.option(rawBody(body), { freq: 10 })) : hostility === 0 ? fc.constant(null) : fc.option(rawBody(body), { freq: 2 }),
      auth,
      contentType: sometimes(fc.constant("application/json"), contentTypes),
      idempotencyKey: fc.option(fc.oneof(fc.string({ maxLength: 20 }), fc.constant("k".repeat(300))), { freq: 4 }),
    })
    .map(({ params: values, query: queryValues, extraQuery, body: rawBytes, auth: authorization, contentType, idempotencyKey }) => {
      let path = op.template;
      params.forEach((p, i) => (path = path.replace(`{${p.name}}`, values[i]!)));
      const pairs = query.flatMap((p, i) => (queryValues[i] === null ? [] : [`${p.name}=${queryValues[i]}`]));
      if (extraQuery) pairs.push(`${encodeURIComponent(extraQuery[0])}=${extraQuery[1]}`);
      const headers: Record<string, string> = {};
      if (authorization) headers.authorization = authorization;
      if (rawBytes) headers["content-type"] = contentType;
      // Header values cannot carry every character; send what Node lets through.
      if (idempotencyKey !== null && /^[\x20-\x7e]*$/.test(idempotencyKey)) headers["idempotency-key"] = idempotencyKey;
      return {
        method: op.method,
        path: pairs.length > 0 ? `${path}?${pairs.join("&")}` : path,
        headers,
        ...(rawBytes ? { body: rawBytes } : {}),
        operation: `${op.method} ${op.template}`,
      };
    });
}

export interface FuzzResponse {
  status: number;
  body: string;
}

/** Sends `req` over a real connection to `origin` (a new one each time: the server may close it). */
export function send(origin: URL, req: FuzzRequest, timeoutMs = 0): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: origin.hostname,
        port: origin.port,
        method: req.method,
        path: req.path,
        // Node frames a GET's body only with a Content-Length it is given.
        headers: { ...req.headers, connection: "close", ...(req.body ? { "content-length": String(req.body.length) } : {}) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    r.on("error", reject);
    if (timeoutMs > 0) r.setTimeout(timeoutMs, () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.end(req.body);
  });
}

/** Leaks of internals in a response body: stack frames, file paths, SQL and driver errors. */
const INTERNAL_DETAIL = /\bat [\w.<>]+ \(|node_modules|\/src\/[\w/-]+\.ts|\bSQLSTATE\b|syntax error at|violates [\w ]+constraint|duplicate key value|relation "|column "|ECONNREFUSED|TypeError|ReferenceError/;

export interface Snapshot {
  /** Digest of the rows a refused request must leave alone: every row the API can change (in a chaos run, what the fuzzing tenant itself can write). */
  all: string;
  /** Digest of tenant A's rows. */
  a: string;
}

const TABLES = [
  ["merchants", "id", "select * from merchants"],
  ["merchant_accounts", "merchant_id", "select * from merchant_accounts"],
  ["api_keys", "merchant_id", "select id, merchant_id, hash, prefix, created_at, expires_at, revoked_at from api_keys"],
  ["payments", "merchant_id", "select * from payments"],
  ["payment_settlements", "merchant_id", "select s.*, p.merchant_id from payment_settlements s join payments p on p.id = s.payment_id"],
  ["events", "merchant_id", "select * from events"],
  ["webhook_endpoints", "merchant_id", "select * from webhook_endpoints"],
  ["webhook_deliveries", "merchant_id", "select * from webhook_deliveries"],
  ["webhook_recoveries", "merchant_id", "select r.*, e.merchant_id from webhook_recoveries r join webhook_endpoints e on e.id = r.endpoint_id"],
  ["idempotency_keys", "merchant_id", "select * from idempotency_keys"],
  ["unmatched_payments", "merchant_id", "select * from unmatched_payments"],
  ["account_challenges", "merchant_id", "select * from account_challenges"],
] as const;

/**
 * SQL for one digest of the rows of `tables` that `where` keeps (`$col` stands for each table's
 * merchant column).
 */
export function digestSql(tables: ReadonlyArray<readonly [name: string, column: string, query: string]>, where: string): string {
  const parts = tables.map(
    ([, column, query]) => `(select coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '') from (${query}) t ${where.replace("$col", column)})`,
  );
  return `md5(${parts.join(" || ")})`;
}

/** SQL for a digest of every row the API can change that belongs to the merchant whose id is `param` (e.g. `$1`). */
export const merchantDigestSql = (param: string) => digestSql(TABLES, `where t.$col = ${param}`);

/** Digests of the database's rows (api_keys.last_used_at aside: it records use, not a change). */
export async function snapshot(db: pg.Pool, aMerchantId: string): Promise<Snapshot> {
  const { rows } = await db.query<Snapshot>(`select ${digestSql(TABLES, "")} as all, ${merchantDigestSql("$1")} as a`, [aMerchantId]);
  return rows[0]!;
}

/** Every way a response can break the properties; empty when it holds them all. */
export function violations(req: FuzzRequest, res: FuzzResponse, before: Snapshot, after: Snapshot, a: Tenant): string[] {
  return [...(res.status >= 500 ? [`answered ${res.status}`] : []), ...answerViolations(req, res, before, after, a)];
}

/** The violations but a 5xx itself: a chaos run excuses those while a process is down. */
export function answerViolations(req: FuzzRequest, res: FuzzResponse, before: Snapshot, after: Snapshot, a: Tenant): string[] {
  const problems: string[] = [];
  if (INTERNAL_DETAIL.test(res.body)) problems.push(`the body shows internal detail: ${res.body.slice(0, 300)}`);
  if (res.status >= 400 && res.status < 500) {
    let code: unknown;
    try {
      code = (JSON.parse(res.body) as { error?: { code?: unknown } }).error?.code;
    } catch {
      code = undefined;
    }
    if (typeof code !== "string") problems.push(`a ${res.status} without error.code: ${res.body.slice(0, 200)}`);
  }
  if ((res.status < 200 || res.status > 299) && before.all !== after.all) problems.push(`data changed although it answered ${res.status}`);
  if (before.a !== after.a) problems.push("tenant A's data changed");
  const sent = `${req.path}\n${req.body?.toString("utf8") ?? ""}`;
  for (const id of [a.merchantId, a.apiKey, ...Object.values(a.ids).flat()]) {
    if (res.body.includes(id) && !sent.includes(id) && !sent.includes(encodeURIComponent(id))) problems.push(`tenant A's ${id} appears in the answer`);
  }
  return problems;
}

/** How a request is shown in a failure: short enough to read, exact enough to replay. */
export function describe(req: FuzzRequest): string {
  const body = req.body ? ` body=${JSON.stringify(req.body.toString("utf8").slice(0, 300))}${req.body.length > 300 ? `…(${req.body.length} bytes)` : ""}` : "";
  return `${req.method} ${req.path.slice(0, 300)} headers=${JSON.stringify(req.headers)}${body}`;
}
