import { once } from "node:events";
import http from "node:http";

/**
 * GET `url` on a connection of its own (a pooled spare connection would hold app.close()), its body
 * read block by block: the text between blank lines, an SSE message each. `leave` disconnects like a
 * closed tab.
 */
export async function openSse(url: string, headers: Record<string, string> = {}) {
  const req = http.get(url, { agent: false, headers });
  const [res] = (await once(req, "response")) as [http.IncomingMessage];
  res.setEncoding("utf8");
  async function* blocks(): AsyncGenerator<string, undefined> {
    let buffer = "";
    try {
      for await (const chunk of res) {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          yield buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (!req.destroyed) throw error;
    }
    // What is left of a response that is no event stream (an error's JSON body).
    if (buffer) yield buffer;
    return undefined;
  }
  return { status: res.statusCode, headers: res.headers, blocks: blocks(), leave: () => void req.destroy() };
}
