import { MemoryReplayStore, RedisReplayStore, type ReplayStore } from "@lumenpay/webhooks";
import type { Logger } from "pino";
import { createClient } from "redis";
import type { Config } from "./config.js";

export interface OpenedReplayStore {
  store: ReplayStore;
  kind: "redis" | "memory" | "disabled";
  close(): Promise<void>;
}

/** ENABLE_REPLAY_PROTECTION=false: every delivery runs its handler, duplicates included. */
const NO_REPLAY_PROTECTION: ReplayStore = {
  checkAndRemember: async () => true,
  remember: async () => undefined,
  forget: async () => undefined,
};

/**
 * Redis when REDIS_URL is set (shared by every instance), else this process's memory. A Redis
 * that cannot be reached at startup fails the start; later outages are reconnected with backoff.
 */
export async function openReplayStore(config: Config["replay"], log: Logger): Promise<OpenedReplayStore> {
  if (!config.enabled) return { store: NO_REPLAY_PROTECTION, kind: "disabled", close: async () => undefined };
  if (!config.redisUrl) return { store: new MemoryReplayStore(), kind: "memory", close: async () => undefined };
  let connected = false;
  const client = createClient({
    url: config.redisUrl,
    // Without a connection, fail the command at once: the router answers 500 and Lumenpay retries
    // later, instead of the request hanging until Lumenpay's 15 s timeout.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5000,
      reconnectStrategy: (retries, cause) => (connected ? Math.min(100 * 2 ** retries, 5000) : cause),
    },
  });
  // A listener is required (an unhandled "error" event ends the process); the message alone keeps the URL out.
  client.on("error", (error: Error) => log.error({ kind: "redis.error", error: error.message }, "Redis replay store error"));
  await client.connect();
  connected = true;
  return { store: new RedisReplayStore({ client }), kind: "redis", close: () => client.close() };
}
