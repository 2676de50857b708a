/**
 * Apiserver calls made on an admission request's path. The server runs
 * each review inside `onRequestPath`; every call the client makes
 * meanwhile, awaited by the handler or started by it, counts for that
 * review. This is what the performance targets count: a member write
 * should cost at most one call, a pass-through none.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { KubeClient, RequestOptions, WatchEvent } from "./client.ts";
import type { KubeObject, PatchOperation } from "./types.ts";

const scope = new AsyncLocalStorage<{ calls: number }>();

/** Runs `work` and says how many apiserver calls it made through a `countingRequestPath` client. */
export async function onRequestPath<T>(work: () => Promise<T>): Promise<{ value: T; calls: number }> {
  const counter = { calls: 0 };
  const value = await scope.run(counter, work);
  return { value, calls: counter.calls };
}

/** `client`, counting each call (but watches, which run beside every request) for the request path it was made on. */
export function countingRequestPath(client: KubeClient): KubeClient {
  const count = (): void => {
    const counter = scope.getStore();
    if (counter) counter.calls += 1;
  };
  return {
    server: client.server,
    get: <T = KubeObject>(path: string, options?: RequestOptions) => (count(), client.get<T>(path, options)),
    create: <T = KubeObject>(path: string, body: unknown, options?: RequestOptions) => (count(), client.create<T>(path, body, options)),
    replace: <T = KubeObject>(path: string, body: unknown, options?: RequestOptions) => (count(), client.replace<T>(path, body, options)),
    jsonPatch: <T = KubeObject>(path: string, ops: PatchOperation[], options?: RequestOptions) => (count(), client.jsonPatch<T>(path, ops, options)),
    mergePatch: <T = KubeObject>(path: string, patch: unknown, options?: RequestOptions) => (count(), client.mergePatch<T>(path, patch, options)),
    delete: <T = KubeObject>(path: string, options?: RequestOptions) => (count(), client.delete<T>(path, options)),
    request: <T>(method: string, path: string, options?: RequestOptions) => (count(), client.request<T>(method, path, options)),
    watch: (path: string, query: Record<string, string | undefined>, onEvent: (event: WatchEvent) => void, signal: AbortSignal) => client.watch(path, query, onEvent, signal),
    close: () => client.close(),
  };
}
