/**
 * The one module that imports @kubernetes/client-node. It uses the library
 * for what it is good at (reading kubeconfigs: TLS material and
 * credentials, asked for again every 30 s and after a 401, so rotated
 * service-account tokens and exec-plugin credentials keep working) and
 * speaks REST itself, because kubetx addresses objects by
 * group/version/resource exactly as AdmissionReview names them, and needs
 * JSON Patch bodies and delete preconditions that the generic object API
 * does not send.
 */
import { KubeConfig } from "@kubernetes/client-node";
import https from "node:https";
import { performance } from "node:perf_hooks";
import type { ApiStatus, KubeError } from "./errors.ts";
import { toKubeError, Unauthorized } from "./errors.ts";
import type { KubeObject, PatchOperation } from "./types.ts";
import { USER_AGENT } from "./vocabulary.ts";

/** Sockets kept open per apiserver: admission handlers call it concurrently. */
const MAX_SOCKETS = 32;
/** A request that takes longer than this is a stuck apiserver, not a slow one. */
const REQUEST_TIMEOUT_MS = 15_000;

export interface RequestOptions {
  readonly query?: Record<string, string | undefined>;
  /** Sent as JSON; `contentType` overrides `application/json`. */
  readonly body?: unknown;
  readonly contentType?: string;
  /** The answer is text, not JSON (the apiserver's /readyz): resolve it as a string. */
  readonly text?: boolean;
  /** The Accept header, when not plain JSON (METADATA_LIST: names and labels without the objects' data). */
  readonly accept?: string;
  /** The User-Agent header, when not USER_AGENT: the audit log records it (restoreUserAgent). */
  readonly userAgent?: string;
}

/** Accept header of a list that carries only each object's metadata (`PartialObjectMetadataList`). */
export const METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: KubeObject;
}

/** The narrow client every other module talks to. */
export interface KubeClient {
  /** The apiserver URL, for messages and kubeconfigs. */
  readonly server: string;
  /** The kubeconfig context's namespace, which kubectl writes an object without one to; absent when the context names none ("default"). */
  readonly namespace?: string;
  get<T = KubeObject>(path: string, options?: RequestOptions): Promise<T>;
  create<T = KubeObject>(path: string, body: unknown, options?: RequestOptions): Promise<T>;
  replace<T = KubeObject>(path: string, body: unknown, options?: RequestOptions): Promise<T>;
  jsonPatch<T = KubeObject>(path: string, ops: PatchOperation[], options?: RequestOptions): Promise<T>;
  mergePatch<T = KubeObject>(path: string, patch: unknown, options?: RequestOptions): Promise<T>;
  delete<T = KubeObject>(path: string, options?: RequestOptions): Promise<T>;
  /**
   * Streams watch events for a collection until `signal` aborts or the
   * server ends the stream; resolves then. Callers re-list and re-watch.
   */
  watch(path: string, query: Record<string, string | undefined>, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void>;
  /** Any verb, for the rare caller that needs one of its own. */
  request<T>(method: string, path: string, options?: RequestOptions): Promise<T>;
  close(): void;
}

export interface KubeconfigOptions {
  /** Use this context instead of the kubeconfig's current-context (kubectl's `--context`). */
  readonly context?: string;
  /** How long credentials are used before the kubeconfig's authenticator is asked again (default CREDENTIAL_REFRESH_MS). */
  readonly credentialRefreshMs?: number;
}

/**
 * Credentials are asked for again this often: a projected service-account
 * token the kubelet rotates, an exec plugin's short-lived token, a client
 * certificate renewed on disk. The library's own authenticators cache what
 * is still valid (a token file for a minute, an exec credential until it
 * expires), so asking is cheap; asking on every request would re-read the
 * CA and certificate files each time.
 */
export const CREDENTIAL_REFRESH_MS = 30_000;

/** Loads a kubeconfig file (or the usual default chain when `path` is absent). */
export async function createKubeClient(kubeconfigPath?: string, options: KubeconfigOptions = {}): Promise<KubeClient> {
  const config = new KubeConfig();
  if (kubeconfigPath) config.loadFromFile(kubeconfigPath);
  else config.loadFromDefault();
  if (options.context !== undefined) {
    if (!config.getContextObject(options.context)) {
      throw new Error(`kubetx: kubeconfig ${kubeconfigPath ?? "(default)"} has no context '${options.context}'`);
    }
    config.setCurrentContext(options.context);
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) {
    throw new Error(`kubetx: kubeconfig ${kubeconfigPath ?? "(default)"} has no current cluster; set a current-context`);
  }
  const credentials = new Credentials(config, options.credentialRefreshMs ?? CREDENTIAL_REFRESH_MS);
  await credentials.current();
  const namespace = config.getContextObject(config.getCurrentContext())?.namespace;
  return new HttpsKubeClient(cluster.server, credentials, namespace || undefined);
}

/** The kubeconfig's TLS material and Authorization header, asked for again once they are older than `refreshMs`. */
class Credentials {
  private readonly config: KubeConfig;
  private readonly refreshMs: number;
  private options: https.RequestOptions | undefined;
  private appliedAt = 0;
  private pending: Promise<https.RequestOptions> | undefined;

  constructor(config: KubeConfig, refreshMs: number) {
    this.config = config;
    this.refreshMs = refreshMs;
  }

  /** The options in force; fresh ones first when they are old or `force` (the apiserver said 401). */
  current(force = false): Promise<https.RequestOptions> {
    if (this.options && !force && performance.now() - this.appliedAt < this.refreshMs) return Promise.resolve(this.options);
    this.pending ??= this.apply().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async apply(): Promise<https.RequestOptions> {
    const options: https.RequestOptions = {};
    await this.config.applyToHTTPSOptions(options);
    this.options = options;
    this.appliedAt = performance.now();
    return options;
  }
}

class HttpsKubeClient implements KubeClient {
  readonly server: string;
  private readonly base: URL;
  private readonly credentials: Credentials;
  private readonly agent: https.Agent;

  readonly namespace: string | undefined;

  constructor(server: string, credentials: Credentials, namespace: string | undefined) {
    this.server = server;
    this.namespace = namespace;
    this.base = new URL(server);
    this.credentials = credentials;
    this.agent = new https.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>("GET", path, options);
  }

  create<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>("POST", path, { ...options, body });
  }

  replace<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>("PUT", path, { ...options, body });
  }

  jsonPatch<T>(path: string, ops: PatchOperation[], options?: RequestOptions): Promise<T> {
    return this.request<T>("PATCH", path, { ...options, body: ops, contentType: "application/json-patch+json" });
  }

  mergePatch<T>(path: string, patch: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>("PATCH", path, { ...options, body: patch, contentType: "application/merge-patch+json" });
  }

  delete<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>("DELETE", path, options);
  }

  /**
   * One retry on a connection the apiserver dropped (a restarted apiserver
   * leaves dead keep-alive sockets behind): every write kubetx makes is
   * conditional (a name to create, a resourceVersion or uid precondition,
   * a JSON Patch `test`), so sending it again is safe.
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    try {
      return await this.send<T>(await this.credentials.current(), method, path, options);
    } catch (error) {
      if (isDroppedConnection(error)) return this.send<T>(await this.credentials.current(), method, path, options);
      // Credentials rotated under us (a new token, an expired exec credential): ask again once. Nothing was done with a 401.
      if (error instanceof Unauthorized) return this.send<T>(await this.credentials.current(true), method, path, options);
      throw error;
    }
  }

  private send<T>(tls: https.RequestOptions, method: string, path: string, options: RequestOptions): Promise<T> {
    const url = new URL(path, this.base);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = {
      ...(tls.headers as Record<string, string> | undefined),
      Accept: options.accept ?? "application/json",
      "User-Agent": options.userAgent ?? USER_AGENT,
    };
    if (payload !== undefined) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    return new Promise<T>((resolve, reject) => {
      const req = https.request(url, { ...tls, method, headers, agent: this.agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return reject(errorFrom(method, url.pathname, status, text));
          try {
            resolve(options.text ? (text as T) : parseBody<T>(text));
          } catch (error) {
            reject(new Error(`${method} ${url.pathname}: the answer is not JSON (${(error as Error).message})`));
          }
        });
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${url.pathname}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  async watch(path: string, query: Record<string, string | undefined>, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const url = new URL(path, this.base);
    for (const [key, value] of Object.entries({ ...query, watch: "1", allowWatchBookmarks: "true" })) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    // A watch that ends (or gets 401) is started again by its caller, with the credentials in force then.
    const tls = await this.credentials.current();
    const headers = { ...(tls.headers as Record<string, string> | undefined), Accept: "application/json", "User-Agent": USER_AGENT };
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      const req = https.request(url, { ...tls, method: "GET", headers, signal }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => reject(errorFrom("GET", url.pathname, res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"))));
          return;
        }
        let buffered = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffered += chunk;
          let newline: number;
          while ((newline = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            const event = line ? parseWatchLine(line) : undefined;
            // A line that is not an event ends the watch with an error: the caller re-lists, the process lives on.
            if (event instanceof Error) {
              req.destroy();
              return reject(new Error(`GET ${url.pathname} watch: ${event.message}`));
            }
            if (event) onEvent(event);
          }
        });
        res.on("end", () => resolve());
        res.on("error", (error) => (signal.aborted ? resolve() : reject(error)));
      });
      req.on("error", (error) => (signal.aborted ? resolve() : reject(error)));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function parseWatchLine(line: string): WatchEvent | Error {
  try {
    const event = JSON.parse(line) as Partial<WatchEvent>;
    if (typeof event.type !== "string" || typeof event.object !== "object" || event.object === null) return new Error(`not a watch event: ${line.slice(0, 200)}`);
    return event as WatchEvent;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** The connection went away under the request: nothing was answered, so the request may be sent again. */
function isDroppedConnection(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ECONNRESET" || code === "EPIPE" || (error instanceof Error && error.message === "socket hang up");
}

function parseBody<T>(text: string): T {
  return (text === "" ? {} : JSON.parse(text)) as T;
}

function errorFrom(method: string, path: string, status: number, text: string): KubeError {
  let body: ApiStatus | undefined;
  try {
    body = JSON.parse(text) as ApiStatus;
  } catch {
    body = { message: text.slice(0, 500) };
  }
  return toKubeError(method, path, status, body);
}
