import type { FastifyPluginAsync } from "fastify";
import type { Db } from "../db/pool.js";
import type { RouteDeps } from "../routes.js";
import { sendEventStream, streamSlots } from "../http/sse.js";
import { badRequest, HttpError, notFound } from "../http/errors.js";
import { idParams } from "../http/inputs.js";
import { listQuerySchema, listSchema, paginate, type PageQuery } from "../http/pagination.js";
import { isId } from "../ids.js";
import { EVENT_STREAM_LIMITS, eventStream, type EventStreamLimits } from "./stream.js";
import {
  eventOut,
  eventPosition,
  getEvent,
  getStreamPosition,
  lastSettledPosition,
  listEvents,
  STREAM_START,
  streamEventsAfter,
  type StreamPosition,
} from "./store.js";
import { API_VERSION, EVENT_TYPES, typesMatching, type EventType } from "./types.js";

export const eventOutSchema = {
  type: "object",
  required: ["id", "object", "type", "created_at", "api_version", "data"],
  properties: {
    id: { type: "string", example: "evt_7bQx2Lm9Rt4Vw1Kp8Zs3Ha" },
    object: { type: "string", enum: ["event"] },
    type: { type: "string", enum: EVENT_TYPES },
    created_at: { type: "string", format: "date-time" },
    api_version: { type: "string", example: API_VERSION },
    sequence: { type: "integer", description: "Per-payment counter: keep the highest you have seen and drop older updates." },
    data: {
      type: "object",
      required: ["object"],
      // The object as it was when the event happened (a payment, a webhook endpoint…), sent unfiltered.
      properties: { object: { type: "object", additionalProperties: true } },
    },
  },
} as const;

const error = { $ref: "Error#" } as const;
const authErrors = { 401: error, 429: error } as const;

type EventListQuery = PageQuery & { type?: EventType };
type EventStreamRequest = { Querystring: { after?: string; types?: string }; Headers: { "last-event-id"?: string } };

/** `after` (or Last-Event-ID) that replays every stored event. */
const FROM_START = "start";

/**
 * The `enabled_events` list (as endpoints have it: types, or "*") that a stream's `types` stands for,
 * where `group.*` also names every type of a group; 400 `invalid_event_type` as for an endpoint.
 */
function streamTypes(text: string | undefined): string[] {
  if (text === undefined) return ["*"];
  const patterns = [...new Set(text.split(",").map((p) => p.trim()))];
  if (patterns.includes("*")) {
    if (patterns.length > 1) throw badRequest("invalid_event_type", '"*" already means every event type; give it alone.', "types");
    return patterns;
  }
  return [
    ...new Set(
      patterns.flatMap((pattern) => {
        const types = typesMatching(pattern);
        if (types.length > 0) return types;
        throw badRequest("invalid_event_type", `Unknown event type "${pattern}"; use one of ${EVENT_TYPES.join(", ")}, a group such as payment.*, or "*".`, "types");
      }),
    ),
  ];
}

/** The position after `value` (one of the merchant's event ids, or `start`); 400 `code` otherwise, so another merchant's ids tell nothing. */
async function resumePosition(db: Db, merchantId: string, value: string, param: string, code: string): Promise<StreamPosition> {
  if (value === FROM_START) return STREAM_START;
  const position = isId("evt", value) ? await getStreamPosition(db, merchantId, value) : undefined;
  if (!position) throw badRequest(code, `${param} must be the id of one of your events (or "${FROM_START}").`, param);
  return position;
}

/** Only a client that asks for an event stream opens one (EventSource and `lumenpay listen` do): each holds a slot for long. */
const asksForEventStream = (accept: string | undefined) => accept !== undefined && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);

/**
 * `/v1/events`: every event ever sent to the merchant's webhooks, to reconcile against (the pull API),
 * and the same events live as server-sent events. `streamLimits` bound the streams (EVENT_STREAM_LIMITS
 * unless a test needs smaller ones).
 */
export const eventRoutes: FastifyPluginAsync<RouteDeps & { streamLimits?: EventStreamLimits }> = async (
  app,
  { pool, streamLimits = EVENT_STREAM_LIMITS },
) => {
  const slots = streamSlots(streamLimits.maxStreams);
  // Open streams would hold app.close() until their lifetime ends: end them as soon as it starts.
  const closing = new AbortController();
  app.addHook("preClose", async () => closing.abort());

  app.get<{ Querystring: EventListQuery }>(
    "/events",
    {
      schema: {
        tags: ["events"],
        summary: "List events",
        description: "Newest first. Continue with `cursor` (the previous `next_cursor`) or `starting_after`, repeating the filters.",
        querystring: listQuerySchema("event", { type: { type: "string", enum: EVENT_TYPES } }),
        response: { 200: listSchema(eventOutSchema), 400: error, ...authErrors },
      },
    },
    async (request) => {
      const merchantId = request.merchant.id;
      const { type } = request.query;
      return paginate(request.query, {
        prefix: "evt",
        positionOf: async (id) => {
          const event = await getEvent(pool, merchantId, id);
          return event && eventPosition(event);
        },
        fetch: (after, limit) => listEvents(pool, { merchantId, type, after, limit }),
        position: eventPosition,
        out: eventOut,
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    "/events/:id",
    {
      schema: {
        tags: ["events"],
        summary: "Retrieve an event",
        params: idParams("evt"),
        response: { 200: eventOutSchema, 404: error, ...authErrors },
      },
    },
    async (request) => {
      const event = await getEvent(pool, request.merchant.id, request.params.id);
      if (!event) throw notFound("event");
      return eventOut(event);
    },
  );

  app.get<EventStreamRequest>(
    "/events/stream",
    {
      // HEAD would open a stream only to drop its body.
      exposeHeadRoute: false,
      schema: {
        tags: ["events"],
        summary: "Stream events (server-sent events)",
        description:
          "Your events as `text/event-stream` (send `Accept: text/event-stream`): each message has `id` (the event id), `event` (its type) " +
          "and `data` (the event body, the exact bytes a webhook delivery carries). With `Last-Event-ID` (or `after`), every event committed " +
          "after that one comes first, in commit order, then new ones as they commit; the header wins over `after`, as EventSource resends " +
          "it on reconnecting. Without either, only new events are sent, and the stream opens with an `id` field alone naming your latest " +
          "event (when you have one), to resume from. Comment lines (`: heartbeat`) keep idle connections open; a stream ends after " +
          `${streamLimits.lifetimeMs / 60_000} minutes and the client resumes. ` +
          "503 `too_many_streams` when the server has as many open as it allows.",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            after: { type: "string", maxLength: 100, description: `An event id: resume after it (\`Last-Event-ID\` wins). \`${FROM_START}\` replays every stored event.` },
            types: {
              type: "string",
              maxLength: 1000,
              description: 'Comma-separated event types, groups such as `payment.*`, or `*` (the default), e.g. `payment.*,endpoint.disabled`.',
            },
          },
        },
        headers: {
          type: "object",
          properties: { "last-event-id": { type: "string", maxLength: 100, description: "The id of the last event received: resume after it." } },
        },
        response: {
          200: { description: "The event stream", content: { "text/event-stream": { schema: { type: "string" } } } },
          400: error,
          406: error,
          503: error,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      if (!asksForEventStream(request.headers.accept)) throw new HttpError(406, "not_acceptable", "This route sends text/event-stream: send Accept: text/event-stream.");
      const merchantId = request.merchant.id;
      const enabledEvents = streamTypes(request.query.types);
      const resumeAfter = request.headers["last-event-id"] ?? request.query.after;
      let after: StreamPosition;
      let announce: string | undefined;
      if (resumeAfter !== undefined) {
        const header = request.headers["last-event-id"] !== undefined;
        after = await resumePosition(pool, merchantId, resumeAfter, header ? "last-event-id" : "after", header ? "invalid_last_event_id" : "invalid_after");
      } else {
        const latest = await lastSettledPosition(pool, merchantId);
        after = latest ?? STREAM_START;
        announce = latest?.id;
      }
      const release = slots.take();
      if (!release) {
        reply.header("retry-after", "10");
        throw new HttpError(503, "too_many_streams", "Too many event streams are open on this server; retry later.");
      }
      const left = new AbortController();
      reply.raw.once("close", () => {
        release();
        left.abort();
      });
      const events = eventStream({
        read: async (position, limit) => {
          try {
            return await streamEventsAfter(pool, { merchantId, after: position, enabledEvents, limit });
          } catch (err) {
            request.log.warn({ err }, "event stream: reading events failed");
            return undefined;
          }
        },
        after,
        announce,
        limits: streamLimits,
        signal: AbortSignal.any([left.signal, closing.signal]),
      });
      return sendEventStream(reply, events);
    },
  );
};
