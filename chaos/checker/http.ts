/**
 * Plain HTTPS to the apiserver, JSON in and out, and a line-by-line watch.
 * The checker's own: it shares nothing with src/kube, so a bug there
 * cannot hide itself here.
 */
import https from "node:https";

/** Ordinary requests; a watch has no deadline of its own (it is aborted). */
const REQUEST_TIMEOUT_MS = 15_000;
/** Largest response read: a list of a trial's objects or records is far smaller. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface ClusterAccess {
  readonly server: string;
  /** PEM of the CA that signed the apiserver's certificate. */
  readonly ca: string;
  readonly token: string;
}

export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface WatchEvent {
  readonly type: string;
  readonly object: Record<string, unknown>;
}

export class Http {
  private readonly access: ClusterAccess;
  private readonly agent: https.Agent;

  constructor(access: ClusterAccess) {
    this.access = access;
    this.agent = new https.Agent({ keepAlive: true, ca: access.ca });
  }

  get<T>(path: string, query: Record<string, string> = {}): Promise<T> {
    return this.request<T>("GET", withQuery(path, query));
  }

  send<T>(method: "POST" | "PUT" | "PATCH" | "DELETE", path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    return this.request<T>(method, path, body === undefined ? undefined : { text: JSON.stringify(body), contentType });
  }

  /** Streams watch events to `onEvent` until the server ends the stream, it fails, or `signal` aborts. */
  watch(path: string, query: Record<string, string>, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = https.request(this.url(withQuery(path, { ...query, watch: "true" })), { agent: this.agent, headers: this.headers(), signal }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          res.resume();
          reject(new HttpError(res.statusCode ?? 0, `watch ${path}: HTTP ${res.statusCode ?? 0}`));
          return;
        }
        let buffer = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffer += chunk;
          const lines = buffer.split("\n");
          buffer = lines.pop() ?? "";
          try {
            for (const line of lines.filter((l) => l.trim() !== "")) onEvent(JSON.parse(line) as WatchEvent);
          } catch (error) {
            // A bad line or a handler that gives up ends this watch; the caller decides what next.
            req.destroy();
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
        res.on("end", () => resolve());
        res.on("close", () => resolve());
        res.on("error", reject);
      });
      req.on("error", (error) => (signal.aborted ? resolve() : reject(error)));
      req.end();
    });
  }

  /** The status code of a GET, 0 when there is no answer (health endpoints answer text, not JSON). */
  status(path: string): Promise<number> {
    return new Promise((resolve) => {
      const req = https.get(this.url(path), { agent: this.agent, headers: this.headers(), timeout: REQUEST_TIMEOUT_MS }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(0));
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private url(path: string): URL {
    return new URL(path, this.access.server);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Authorization: `Bearer ${this.access.token}`, Accept: "application/json", ...extra };
  }

  private request<T>(method: string, path: string, body?: { text: string; contentType: string }): Promise<T> {
    return new Promise((resolve, reject) => {
      const headers = this.headers(body ? { "Content-Type": body.contentType } : {});
      const req = https.request(this.url(path), { method, agent: this.agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) req.destroy(new Error(`${method} ${path}: response larger than ${MAX_BODY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          if (status >= 300) reject(new HttpError(status, `${method} ${path}: HTTP ${status}: ${text.slice(0, 500)}`));
          else resolve((text ? JSON.parse(text) : undefined) as T);
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
      req.on("error", reject);
      req.end(body?.text);
    });
  }
}

function withQuery(path: string, query: Record<string, string>): string {
  const search = new URLSearchParams(query).toString();
  return search ? `${path}?${search}` : path;
}
