import { isId, type IdPrefix } from "../ids.js";
import { badRequest } from "./errors.js";
import { parseTimestamp } from "./inputs.js";

/**
 * Keyset pagination over `(created_at, id)`, newest first, as every list endpoint does it:
 * `?limit=&cursor=` (the previous page's `next_cursor`) or `?starting_after=<id>`, answering
 * `{object: "list", data, has_more, next_cursor}`. A store supplies the SQL; this module owns the
 * cursor format, the query and list schemas, and the "one extra row" has_more check.
 */

export const DEFAULT_LIMIT = 10;
export const MAX_LIMIT = 100;

/**
 * A row's place in the order. Rows after it are older, or as old with a smaller id:
 * `(created_at, id) < ($createdAt, $id)`. `createdAt` should be exact (see `exactCreatedAt`).
 */
export interface Position {
  createdAt: Date | string;
  id: string;
}

/**
 * SQL for a `created_at` column as text to the microsecond. PostgreSQL keeps microseconds and a
 * JS Date only milliseconds: a cursor cut to the millisecond would skip rows created within it.
 */
export const exactCreatedAt = (column = "created_at") => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export interface PageQuery {
  limit?: number;
  cursor?: string;
  starting_after?: string;
}

export interface ListOut<T> {
  object: "list";
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/** Opaque to clients; inside, base64url of `created_at|id`. */
export function encodeCursor(p: Position): string {
  const at = typeof p.createdAt === "string" ? p.createdAt : p.createdAt.toISOString();
  return Buffer.from(`${at}|${p.id}`).toString("base64url");
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

/** The position in a cursor; 400 `invalid_cursor` for anything this API did not hand out. */
export function decodeCursor(cursor: string, prefix: IdPrefix): { createdAt: string; id: string } {
  const [createdAt = "", id = "", ...rest] = Buffer.from(cursor, "base64url").toString().split("|");
  // A forged cursor's date must still be one PostgreSQL can compare: a real day, in range.
  if (rest.length > 0 || !ISO_UTC.test(createdAt) || parseTimestamp(createdAt) === undefined || !isId(prefix, id)) {
    throw badRequest("invalid_cursor", "cursor is not a next_cursor this API returned.", "cursor");
  }
  return { createdAt, id };
}

export interface PageSource<Row, Out> {
  /** Prefix of the listed ids, to reject a cursor of another list. */
  prefix: IdPrefix;
  /** Where `starting_after` points, within the same scope as `fetch`; undefined when absent there. */
  positionOf: (id: string) => Promise<Position | undefined>;
  /** At most `limit` rows after `after` (from the newest when undefined), newest first. */
  fetch: (after: Position | undefined, limit: number) => Promise<Row[]>;
  position: (row: Row) => Position;
  out: (row: Row) => Out;
}

/** One page of a list; `cursor` and `starting_after` both mean "continue after this row". */
export async function paginate<Row, Out>(q: PageQuery, source: PageSource<Row, Out>): Promise<ListOut<Out>> {
  if (q.starting_after !== undefined && q.cursor !== undefined) {
    throw badRequest("invalid_request", "Give starting_after or cursor, not both.", "cursor");
  }
  let after: Position | undefined;
  if (q.cursor !== undefined) after = decodeCursor(q.cursor, source.prefix);
  if (q.starting_after !== undefined) {
    after = isId(source.prefix, q.starting_after) ? await source.positionOf(q.starting_after) : undefined;
    if (!after) throw badRequest("invalid_starting_after", "starting_after must be the id of an item in this list.", "starting_after");
  }
  const limit = q.limit ?? DEFAULT_LIMIT;
  // One extra row tells whether another page exists without a count query.
  const rows = await source.fetch(after, limit + 1);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const hasMore = rows.length > limit;
  return {
    object: "list",
    data: page.map(source.out),
    has_more: hasMore,
    next_cursor: hasMore && last ? encodeCursor(source.position(last)) : null,
  };
}

/** Querystring schema of a list: `limit`, `cursor`, `starting_after`, plus the list's own filters. */
export function listQuerySchema(itemName: string, filters: Record<string, object> = {}) {
  return {
    type: "object",
    additionalProperties: false,
    properties: {
      limit: { type: "integer", minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT },
      cursor: { type: "string", maxLength: 200, description: "`next_cursor` of the previous page." },
      starting_after: { type: "string", maxLength: 100, description: `A ${itemName} id: list the ones created before it.` },
      ...filters,
    },
  } as const;
}

/** Response schema of a list of `item`. */
export function listSchema(item: object) {
  return {
    type: "object",
    required: ["object", "data", "has_more", "next_cursor"],
    properties: {
      object: { type: "string", enum: ["list"] },
      data: { type: "array", items: item },
      has_more: { type: "boolean" },
      next_cursor: { type: ["string", "null"], description: "Pass as `cursor` to get the next page (repeat the filters)." },
    },
  } as const;
}
