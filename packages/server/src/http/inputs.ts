import type { FastifyInstance, FastifyRequest } from "fastify";
import { idPattern, type IdPrefix } from "../ids.js";
import { badRequest } from "./errors.js";

/**
 * What the API accepts before anything reaches SQL, in one place: values that pass a JSON schema but
 * that PostgreSQL cannot store or compare (NUL, impossible or out-of-range dates) and numbers written
 * in notations a schema coerces silently (`limit=0x10`) are refused with a 400 here.
 */

/** Params schema of a route addressed by a prefixed id: another shape answers 404, like an unknown id. */
export function idParams(prefix: IdPrefix, name = "id") {
  return {
    type: "object",
    required: [name],
    properties: { [name]: { type: "string", pattern: idPattern(prefix), maxLength: 64, description: `${prefix}_…` } },
  } as const;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-](\d{2}):(\d{2}))$/i;

/**
 * A date-time that JavaScript and PostgreSQL read alike: RFC 3339 with a zone, a real calendar day,
 * no leap second (`23:59:60` is an Invalid Date to JavaScript), years 1–9999; undefined otherwise.
 */
export function parseTimestamp(value: string): Date | undefined {
  const m = RFC3339.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeapYear(year) ? 1 : 0);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

/** `parseTimestamp`, or 400 `invalid_date` naming `param`. */
export function timestampParam(value: string, param: string): Date {
  const date = parseTimestamp(value);
  if (!date) throw badRequest("invalid_date", `${param} must be an RFC 3339 date-time with a zone (e.g. 2026-01-31T12:00:00Z), a real date in years 1–9999.`, param);
  return date;
}

/** The first string containing NUL in `value` (depth-first, without recursion), as a dotted path; undefined when there is none. */
function nulPath(value: unknown, root: string): string | undefined {
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === "string") {
      if (item.includes("\u0000")) return path;
    } else if (item !== null && typeof item === "object") {
      for (const [key, child] of Object.entries(item)) {
        const childPath = path ? `${path}.${key}` : key;
        if (key.includes("\u0000")) return childPath;
        stack.push([child, childPath]);
      }
    }
  }
  return undefined;
}

type Schema = { type?: string | string[]; properties?: Record<string, Schema> };

/** Per route schema, computed on its first request. */
const integerParamsBySchema = new WeakMap<object, string[]>();

/** Query parameters a route declares as integers. */
function integerQueryParams(request: FastifyRequest): string[] {
  const schema = request.routeOptions.schema?.querystring as Schema | undefined;
  if (!schema) return [];
  let names = integerParamsBySchema.get(schema);
  if (!names) {
    names = Object.entries(schema.properties ?? {})
      .filter(([, property]) => [property.type].flat().includes("integer"))
      .map(([name]) => name);
    integerParamsBySchema.set(schema, names);
  }
  return names;
}

/** Runs the checks above on every request of `app`, before schema validation (which would coerce `0x10` to 16). */
export function refuseHostileInput(app: FastifyInstance): void {
  // Callback-style: an async hook costs a promise on every request.
  app.addHook("preValidation", (request, _reply, done) => {
    try {
      checkInput(request);
      done();
    } catch (error) {
      done(error as Error);
    }
  });
}

function checkInput(request: FastifyRequest): void {
  for (const [part, value] of [["params", request.params], ["query", request.query], ["body", request.body]] as const) {
    const path = nulPath(value, "");
    // PostgreSQL text cannot hold U+0000.
    if (path !== undefined) throw badRequest("invalid_request", `Text must not contain NUL characters${path ? ` (${path})` : ""}.`, path || part);
  }
  const query = request.query as Record<string, unknown>;
  for (const name of integerQueryParams(request)) {
    const value = query[name];
    if (value !== undefined && (typeof value !== "string" || !/^\d{1,15}$/.test(value))) {
      throw badRequest("invalid_request", `${name} must be a whole number written in decimal digits.`, name);
    }
  }
}
