import type { FastifyPluginAsync } from "fastify";
import type { RouteDeps } from "../routes.js";
import { notFound } from "../http/errors.js";
import { idParams } from "../http/inputs.js";
import { listQuerySchema, listSchema, paginate, type PageQuery } from "../http/pagination.js";
import { eventOut, eventPosition, getEvent, listEvents } from "./store.js";
import { API_VERSION, EVENT_TYPES, type EventType } from "./types.js";

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

/** `/v1/events`: every event ever sent to the merchant's webhooks, to reconcile against (the pull API). */
export const eventRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool }) => {
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
};
