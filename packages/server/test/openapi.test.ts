import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** Every `$ref` in the document, wherever it is nested. */
function refs(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(refs);
  if (node === null || typeof node !== "object") return [];
  return Object.entries(node).flatMap(([key, value]) => (key === "$ref" && typeof value === "string" ? [value] : refs(value)));
}

/** Follows a local JSON pointer such as `#/components/schemas/def-0`. */
function resolvePointer(doc: unknown, ref: string): unknown {
  return ref
    .slice(2)
    .split("/")
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce<unknown>((node, part) => (node !== null && typeof node === "object" ? (node as Record<string, unknown>)[part] : undefined), doc);
}

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3 document whose operations all declare responses and whose $refs all resolve", async () => {
    const res = await t.app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: "Lumenpay API", version: expect.any(String) });

    const operations = Object.entries(doc.paths as Record<string, Record<string, { responses?: object }>>).flatMap(([path, item]) =>
      Object.entries(item).filter(([method]) => METHODS.includes(method)).map(([method, op]) => ({ path, method, op })),
    );
    expect(operations.length).toBeGreaterThan(0);
    for (const { path, method, op } of operations) {
      expect(Object.keys(op.responses ?? {}).length, `${method} ${path}`).toBeGreaterThan(0);
      for (const status of Object.keys(op.responses ?? {})) expect(status, `${method} ${path}`).toMatch(/^([1-5]\d\d|[1-5]XX|default)$/);
    }
    for (const ref of refs(doc)) {
      expect(ref, ref).toMatch(/^#\//);
      expect(resolvePointer(doc, ref), ref).toBeDefined();
    }
  });

  it("lists the /v1 API behind the API key and the public stellar.toml without it", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(Object.keys(doc.paths["/v1/merchant"])).toEqual(expect.arrayContaining(["get", "patch"]));
    expect(doc.paths).toHaveProperty(["/v1/payments"]);
    expect(doc.security).toEqual([{ apiKey: [] }]);
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.paths["/v1/merchant"].get.security).toBeUndefined();

    const toml = doc.paths["/.well-known/stellar.toml"].get;
    expect(toml.security).toEqual([]);
    expect(toml.responses["200"].content).toHaveProperty(["text/plain"]);
    expect(toml.parameters).toEqual([expect.objectContaining({ name: "merchant_id", in: "query" })]);
  });

  it("hides operational routes", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    for (const path of ["/metrics", "/health", "/ready", "/openapi.json"]) expect(doc.paths).not.toHaveProperty([path]);
  });
});

describe("GET /docs", () => {
  it("serves the Swagger UI as HTML", async () => {
    const res = await t.app.inject({ method: "GET", url: "/docs" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    expect(res.body).toMatch(/swagger-ui/i);
  });
});

/** Every string without `maxLength` (or `enum`) and every array without `maxItems` in `schema`, as paths. */
function unbounded(doc: unknown, schema: unknown, path: string, seen = new Set<unknown>()): string[] {
  if (schema === null || typeof schema !== "object" || seen.has(schema)) return [];
  seen.add(schema);
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === "string") return unbounded(doc, resolvePointer(doc, s.$ref), path, seen);
  const problems: string[] = [];
  const types = [s.type ?? []].flat();
  if (types.includes("string") && s.maxLength === undefined && s.enum === undefined && s.const === undefined) problems.push(`${path}: string without maxLength`);
  if (types.includes("array") && s.maxItems === undefined) problems.push(`${path}: array without maxItems`);
  const additional = s.additionalProperties;
  if (types.includes("object") && additional !== undefined && additional !== false && s.maxProperties === undefined) problems.push(`${path}: open object without maxProperties`);
  for (const [name, property] of Object.entries((s.properties as Record<string, unknown>) ?? {})) problems.push(...unbounded(doc, property, `${path}.${name}`, seen));
  for (const key of ["items", "additionalProperties"]) if (typeof s[key] === "object") problems.push(...unbounded(doc, s[key], `${path}[${key}]`, seen));
  for (const key of ["oneOf", "anyOf", "allOf"]) for (const [i, branch] of ((s[key] as unknown[]) ?? []).entries()) problems.push(...unbounded(doc, branch, `${path}|${i}`, seen));
  return problems;
}

describe("request schemas", () => {
  it("bound every string and array a client can send (maxLength, maxItems, maxProperties)", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    const problems: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Record<string, unknown>>>)) {
      for (const [method, op] of Object.entries(item).filter(([m]) => METHODS.includes(m))) {
        const where = `${method.toUpperCase()} ${path}`;
        for (const p of (op.parameters as Array<{ in: string; name: string; schema: unknown }>) ?? []) problems.push(...unbounded(doc, p.schema, `${where} ${p.in}:${p.name}`));
        const body = (op.requestBody as { content?: Record<string, { schema: unknown }> } | undefined)?.content?.["application/json"]?.schema;
        if (body) problems.push(...unbounded(doc, body, `${where} body`));
      }
    }
    expect(problems).toEqual([]);
  });
});
