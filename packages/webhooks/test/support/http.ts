import { request } from "node:http";

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

/**
 * POST with node:http, which hands over the response as soon as it arrives: a server may answer
 * 413 and close while the body is still being written, and the write error after it is expected.
 * `chunked` sends the body without a Content-Length, in pieces.
 */
export function post(url: string, opts: { headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean; method?: string }): Promise<Reply> {
  const body = opts.body ?? "";
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(url, { method: opts.method ?? "POST", headers: opts.headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // Not every answer is JSON (a framework's own error page); tests then look at `text`.
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    if (opts.chunked) {
      const buffer = Buffer.from(body);
      for (let i = 0; i < buffer.length; i += 64 * 1024) req.write(buffer.subarray(i, i + 64 * 1024));
    } else {
      req.setHeader("content-length", Buffer.byteLength(body));
      req.write(body);
    }
    req.end();
  });
}
