import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * An HTTP proxy to `target` that answers 503, as Horizon does when overloaded, to each request whose
 * path `fails` picks, and passes everything else through (event streams included).
 */
export async function startFailingProxy(target: string, fails: (path: string) => boolean) {
  const upstream = new URL(target);
  let failed = 0;
  const server = http.createServer((req, res) => {
    if (fails(req.url ?? "")) {
      failed++;
      res.writeHead(503, { "content-type": "application/problem+json" });
      res.end(JSON.stringify({ type: "https://stellar.org/horizon-errors/service_unavailable", title: "Service Unavailable", status: 503 }));
      return;
    }
    const forward = http.request(
      { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get failed() {
      return failed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
