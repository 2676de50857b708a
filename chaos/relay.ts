/**
 * The audit relay: the apiserver's audit webhook names one URL, so this
 * small HTTPS server in the campaign process stands where a Service's
 * load balancer would, forwarding each EventList batch to a live replica's
 * /audit (in random order, the next on failure) with the apiserver's
 * client certificate. It answers 503 when no replica took the batch, so
 * the apiserver sends it again. In a trial without the sink it accepts and
 * drops every batch.
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Replica } from "./replicas.ts";
import { SERVICE_HOST } from "./replicas.ts";

/** A replica gets this long to take a batch (a paused one never answers). */
const FORWARD_TIMEOUT_MS = 3_000;
/** The apiserver batches at most 400 events; 16 MiB is far above any batch. */
const MAX_BATCH_BYTES = 16 * 1024 * 1024;

export interface RelayConfig {
  readonly serving: { readonly cert: string; readonly key: string };
  readonly ca: string;
  readonly host: string;
  readonly port: number;
  readonly replicas: () => readonly Replica[];
}

/** A client certificate and its key, PEM. */
export interface ClientIdentity {
  readonly cert: string;
  readonly key: string;
}

export class AuditRelay {
  enabled = false;
  /**
   * The apiserver's own client certificate, which replicas demand at
   * /audit: the relay forwards as the apiserver would send. Set once the
   * control plane (which makes it) is up; until then nothing is forwarded
   * (the relay is not enabled before the first trial either).
   */
  client: ClientIdentity | undefined;
  forwarded = 0;
  refused = 0;
  private readonly config: RelayConfig;
  private readonly server: https.Server;

  private constructor(config: RelayConfig) {
    this.config = config;
    this.server = https.createServer({ cert: config.serving.cert, key: config.serving.key, minVersion: "TLSv1.2" }, (req, res) => void this.handle(req, res));
  }

  get port(): number {
    return this.config.port;
  }

  static async start(config: RelayConfig): Promise<AuditRelay> {
    const relay = new AuditRelay(config);
    await new Promise<void>((resolve, reject) => {
      relay.server.once("error", reject);
      relay.server.listen(config.port, "127.0.0.1", () => resolve());
    });
    return relay;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req).catch(() => undefined);
    if (body === undefined) return void res.writeHead(413).end();
    if (!this.enabled || !this.client) return void res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    const order = [...this.config.replicas()].filter((r) => r.state !== "down").sort(() => Math.random() - 0.5);
    for (const replica of order) {
      if (await this.forward(replica, body)) {
        this.forwarded += 1;
        return void res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
      }
    }
    this.refused += 1;
    res.writeHead(503).end();
  }

  private forward(replica: Replica, body: Buffer): Promise<boolean> {
    const client = this.client;
    if (!client) return Promise.resolve(false);
    return new Promise((resolve) => {
      const req = https.request({
        host: this.config.host, port: replica.port, path: "/audit", method: "POST", servername: SERVICE_HOST,
        ca: this.config.ca, cert: client.cert, key: client.key, timeout: FORWARD_TIMEOUT_MS,
        headers: { "Content-Type": "application/json", "Content-Length": body.length },
      }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) < 300);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
      req.end(body);
    });
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BATCH_BYTES) req.destroy(new Error("batch too large"));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
