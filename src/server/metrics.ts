/**
 * /metrics on a port of its own, over plain HTTP, as Prometheus scrapes
 * it. Kept off the webhook port so that port can admit the control plane
 * alone (a client certificate, a NetworkPolicy) while monitoring reaches
 * this one. It serves nothing else and reads no request body.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { RunningServer } from "./https.ts";

export const METRICS_PATH = "/metrics";

export interface MetricsSource {
  readonly contentType: string;
  render(): Promise<string>;
}

export async function listenMetrics(metrics: MetricsSource, host: string, port: number): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== METRICS_PATH) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`kubetx: only GET ${METRICS_PATH} is served on this port\n`);
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { "content-type": metrics.contentType }).end(text),
      (error: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`kubetx: could not render metrics: ${error instanceof Error ? error.message : String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
