import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { expressHandler, fastifyPlugin, fetchHandler, nodeHandler, type Router } from "../../src/index.js";

export interface Receiver {
  url: string;
  close(): Promise<void>;
}

export const WEBHOOK_PATH = "/webhooks/lumenpay";

async function listening(server: Server): Promise<Receiver> {
  if (!server.listening) await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${WEBHOOK_PATH}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** One real server per framework, each mounting its adapter at WEBHOOK_PATH on 127.0.0.1, port 0. */
export const frameworks: Record<string, (router: Router) => Promise<Receiver>> = {
  "node:http": async (router) => {
    const handler = nodeHandler(router);
    const server = createServer((req, res) => {
      if (req.url === WEBHOOK_PATH) return handler(req, res);
      res.writeHead(404).end();
    });
    return listening(server.listen(0, "127.0.0.1"));
  },

  "Express 5": async (router) => {
    const app = express();
    app.post(WEBHOOK_PATH, expressHandler(router));
    // JSON parsing for the rest of the app, mounted after the webhook route as the README says.
    app.use(express.json());
    app.post("/echo", (req, res) => {
      res.json(req.body);
    });
    return listening(app.listen(0, "127.0.0.1"));
  },

  "Fastify 5": async (router) => {
    const app = Fastify();
    await app.register(fastifyPlugin(router, { path: WEBHOOK_PATH }));
    app.post("/echo", async (request) => request.body);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const receiver = await listening(app.server);
    return { url: receiver.url, close: () => app.close() };
  },

  "Hono (@hono/node-server)": async (router) => {
    const app = new Hono();
    const handler = fetchHandler(router);
    app.post(WEBHOOK_PATH, (c) => handler(c.req.raw));
    return listening(serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }) as Server);
  },
};
