/**
 * A list-and-watch cache of one collection, as client-go's informers keep
 * them: list, then watch from the list's resourceVersion; BOOKMARK events
 * move the resourceVersion on; an ERROR event (410 Gone: the version is too
 * old) or a failed watch re-lists, with jittered backoff; a watch the
 * server ends is resumed from the last version seen. Reads never call the
 * apiserver: the request path asks the cache, and whatever must be
 * linearizable is decided by a conditional write, never by a cached read.
 */
import { pause } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { KubeClient, WatchEvent } from "./client.ts";
import { Expired, KubeError } from "./errors.ts";
import type { ConnectionGaps } from "./gaps.ts";
import { revisionAtMost } from "./revision.ts";
import type { KubeObject, ObjectList } from "./types.ts";

/** The first pause before re-listing after a failure; it doubles up to the maximum. */
const INITIAL_BACKOFF_MS = 200;
/** Never wait longer than this between attempts: the cache must come back soon after the apiserver does. */
const MAX_BACKOFF_MS = 5_000;

export interface InformerOptions {
  readonly client: KubeClient;
  /** The collection's path, e.g. /apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly logger: Logger;
  /** What the cache is of, for log lines. */
  readonly what: string;
  /** Told when a list or watch fails, and when the list after a failure succeeds. */
  readonly gaps?: Pick<ConnectionGaps, "broke" | "mended">;
}

export class Informer<T extends KubeObject = KubeObject> {
  private readonly o: InformerOptions;
  private readonly items = new Map<string, T>();
  private synced = false;
  private version = "";
  private listeners: ((event: WatchEvent["type"], object: T) => void)[] = [];
  /** Callers of reached(), woken as the revision moves. */
  private waiters = new Set<() => void>();

  /** The collection this cache lists and watches. */
  get path(): string {
    return this.o.path;
  }

  /**
   * The resourceVersion the cache reflects: every change of the collection
   * up to it is in `values()` (a watch delivers changes in order).
   */
  get revision(): string {
    return this.version;
  }

  constructor(options: InformerOptions) {
    this.o = options;
  }

  /**
   * Resolves true once the cache reflects `revision` (every change of the
   * collection up to it is in), false after `timeoutMs` without. Someone
   * who just wrote an object of the collection waits for their own write
   * this way: what the cache then says of the rest was true at that write.
   */
  reached(revision: string, timeoutMs: number): Promise<boolean> {
    if (revisionAtMost(revision, this.version)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!revisionAtMost(revision, this.version)) return;
        finish(true);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      this.waiters.add(check);
    });
  }

  /** True once the first list has arrived. */
  get ready(): boolean {
    return this.synced;
  }

  get size(): number {
    return this.items.size;
  }

  get(name: string): T | undefined {
    return this.items.get(name);
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  /** Called for every change the watch delivers, after the cache has it. */
  onChange(listener: (event: WatchEvent["type"], object: T) => void): () => void {
    this.listeners.push(listener);
    return () => (this.listeners = this.listeners.filter((l) => l !== listener));
  }

  /** Lists and watches until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let backoff = INITIAL_BACKOFF_MS;
    let needList = true;
    let failed = false;
    while (!signal.aborted) {
      try {
        if (needList) await this.list();
        needList = false;
        if (failed) this.o.gaps?.mended();
        failed = false;
        await this.watch(signal);
        backoff = INITIAL_BACKOFF_MS;
      } catch (error) {
        if (signal.aborted) return;
        needList = true;
        // The apiserver answered (410 Gone, a 429 while a CRD's storage starts): it did not go away, so nothing it buffered was lost.
        if (!answered(error)) {
          failed = true;
          this.o.gaps?.broke();
          this.o.logger.warn({ err: error, cache: this.o.what }, "watch failed; listing again");
        } else if (!(error instanceof Expired)) this.o.logger.info({ err: error, cache: this.o.what }, "the apiserver refused a list or watch; listing again");
        await pause(backoff + Math.random() * backoff, signal);
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
    }
  }

  private async list(): Promise<void> {
    const list = await this.o.client.get<ObjectList<T>>(this.o.path, { query: { ...(this.o.labelSelector ? { labelSelector: this.o.labelSelector } : {}) } });
    this.items.clear();
    for (const item of list.items) this.items.set(item.metadata?.name ?? "", item);
    this.version = list.metadata?.resourceVersion ?? "";
    this.synced = true;
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    for (const check of [...this.waiters]) check();
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const query = { resourceVersion: this.version, ...(this.o.labelSelector ? { labelSelector: this.o.labelSelector } : {}) };
    let expired: Expired | undefined;
    await this.o.client.watch(this.o.path, query, (event) => {
      if (event.type === "ERROR") {
        const message = (event.object as { message?: unknown }).message;
        expired = new Expired({ status: 410, reason: "Expired", message: typeof message === "string" ? message : "watch error", method: "GET", path: this.o.path });
        return;
      }
      this.apply(event);
    }, signal);
    if (expired) throw expired;
  }

  private apply(event: WatchEvent): void {
    const object = event.object as T;
    const version = object.metadata?.resourceVersion;
    if (event.type !== "BOOKMARK") {
      const name = object.metadata?.name ?? "";
      if (event.type === "DELETED") this.items.delete(name);
      else this.items.set(name, object);
      for (const listener of this.listeners) listener(event.type, object);
    }
    // The revision moves after the object is in: a waiter woken by it finds the object.
    if (version) this.version = version;
    if (version && this.waiters.size > 0) this.wakeWaiters();
  }
}

/**
 * Whether `error` is an answer from a running apiserver below 500. A failed
 * connection, a watch cut mid-stream and a 5xx (the apiserver or a proxy in
 * front of it in trouble) are gaps: the apiserver may have gone away.
 */
function answered(error: unknown): boolean {
  return error instanceof KubeError && error.status > 0 && error.status < 500;
}
