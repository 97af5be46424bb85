import { StrKey, xdr } from "@stellar/stellar-sdk";
import { type EventRecord, parseEventId } from "./event-log.js";
import { invalidParams, Params } from "./jsonrpc.js";

// stellar-rpc's limits (go-stellar-sdk protocols/rpc/get_events.go) and its default and maximum page sizes.
const MAX_FILTERS = 5;
const MAX_CONTRACT_IDS = 5;
const MAX_TOPIC_FILTERS = 5;
const MAX_SEGMENTS = 4;
const DEFAULT_EVENTS_LIMIT = 100;
const MAX_EVENTS_LIMIT = 10_000;

/** One topic pattern: exact base64 ScVals, null for `*`; `flexible` when it ended with `**`. */
interface TopicFilter {
  segments: Array<string | null>;
  flexible: boolean;
}

/** One of a request's filters; null matches anything. Within a filter every part must match. */
interface EventFilter {
  types: ReadonlySet<string> | null;
  contractIds: ReadonlySet<string> | null;
  /** Any one of them must match. */
  topics: TopicFilter[] | null;
}

export interface EventsRequest {
  /** 0 when absent (then `cursor` is set). */
  startLedger: number;
  /** Exclusive; 0 when absent. */
  endLedger: number;
  /** The position of the event the previous page ended with. */
  cursor: bigint | undefined;
  limit: number;
  /** An event matches when any filter does; no filters match every event. */
  filters: EventFilter[];
}

const EVENT_TYPES = new Set(["system", "contract"]);

/** A `type` is one name or several joined by commas ("system,contract"), as stellar-rpc decodes it. */
function parseTypes(text: string | undefined): ReadonlySet<string> | null {
  if (!text) return null;
  const types = new Set(text.split(","));
  if (![...types].every((type) => EVENT_TYPES.has(type))) throw new Error("filter type invalid: if set, type must be either 'system' or 'contract'");
  return types;
}

/** A segment as a canonical base64 ScVal (so that two encodings of one value compare equal), or null for `*`. */
function parseSegment(segment: unknown, position: number): string | null {
  if (segment === "*") return null;
  if (segment === "**") throw new Error(`segment ${position} invalid: wildcard '**' is only allowed as the last segment`);
  try {
    if (typeof segment !== "string") throw new TypeError("not a string");
    return xdr.ScVal.fromXDR(segment, "base64").toXDR("base64");
  } catch {
    throw new Error(`segment ${position} invalid: must be "*", "**" or a base64 ScVal`);
  }
}

function parseTopic(value: unknown): TopicFilter {
  if (!Array.isArray(value) || value.length === 0) throw new Error("topic must have at least 1 segment");
  // `**` only counts as the last segment, and not towards the four.
  const flexible = value.at(-1) === "**";
  const fixed = flexible ? value.slice(0, -1) : value;
  if (fixed.length > MAX_SEGMENTS) throw new Error(`topic cannot have more than ${MAX_SEGMENTS} segments`);
  return { segments: fixed.map((segment, i) => parseSegment(segment, i + 1)), flexible };
}

function parseFilter(params: Params): EventFilter {
  const types = parseTypes(params.string("type"));
  const contractIds = params.array("contractIds");
  const topics = params.array("topics");
  if (contractIds.length > MAX_CONTRACT_IDS) throw new Error(`maximum ${MAX_CONTRACT_IDS} contract IDs per filter`);
  if (topics.length > MAX_TOPIC_FILTERS) throw new Error(`maximum ${MAX_TOPIC_FILTERS} topics per filter`);
  contractIds.forEach((id, i) => {
    if (typeof id !== "string" || !StrKey.isValidContract(id)) throw new Error(`contract ID ${i + 1} invalid`);
  });
  return {
    types,
    contractIds: contractIds.length > 0 ? new Set(contractIds as string[]) : null,
    topics:
      topics.length > 0
        ? topics.map((topic, i) => {
            try {
              return parseTopic(topic);
            } catch (error) {
              throw new Error(`topic ${i + 1} invalid: ${(error as Error).message}`);
            }
          })
        : null,
  };
}

/** getEvents' parameters, refused with stellar-rpc's messages; the ledger range is checked against the chain later. */
export function parseEventsRequest(params: Params): EventsRequest {
  const startLedger = params.uint32("startLedger");
  const endLedger = params.uint32("endLedger");
  const pagination = params.object("pagination");
  const cursorText = pagination?.string("cursor");
  const cursor = cursorText === undefined ? undefined : parseEventId(cursorText);
  if (cursorText !== undefined && cursor === undefined) throw invalidParams(`invalid parameters: invalid event id ${cursorText}`);
  const limit = pagination?.uint32("limit") ?? 0;

  if (cursor !== undefined) {
    if (startLedger !== 0 || endLedger !== 0) throw invalidParams("ledger ranges and cursor cannot both be set");
  } else if (startLedger === 0) {
    throw invalidParams("startLedger must be positive");
  }
  if (limit > MAX_EVENTS_LIMIT) throw invalidParams(`limit must not exceed ${MAX_EVENTS_LIMIT}`);
  const filters = params.array("filters");
  if (filters.length > MAX_FILTERS) throw invalidParams(`maximum ${MAX_FILTERS} filters per request`);
  return {
    startLedger,
    endLedger,
    cursor,
    limit: limit || DEFAULT_EVENTS_LIMIT,
    filters: filters.map((filter, i) => {
      try {
        if (filter === null || typeof filter !== "object" || Array.isArray(filter)) throw new Error("must be an object");
        return parseFilter(new Params(filter as Record<string, unknown>, `filters[${i}].`));
      } catch (error) {
        throw invalidParams(`filter ${i + 1} invalid: ${(error as Error).message}`);
      }
    }),
  };
}

const topicMatches = (pattern: TopicFilter, topic: readonly string[]) =>
  (pattern.flexible ? topic.length >= pattern.segments.length : topic.length === pattern.segments.length) &&
  pattern.segments.every((segment, i) => segment === null || segment === topic[i]);

const filterMatches = (filter: EventFilter, event: EventRecord) =>
  // Every event the local network emits is a contract event.
  (filter.types === null || filter.types.has("contract")) &&
  (filter.contractIds === null || filter.contractIds.has(event.contractId)) &&
  (filter.topics === null || filter.topics.some((pattern) => topicMatches(pattern, event.topic)));

export const eventMatches = (filters: readonly EventFilter[], event: EventRecord) =>
  filters.length === 0 || filters.some((filter) => filterMatches(filter, event));
