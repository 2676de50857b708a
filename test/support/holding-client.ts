/**
 * The real apiserver client with one Lease write held back on purpose: a
 * chosen transaction's lock (or, by `role`, its closing mark) is created
 * late (`before`: the request waits) or answered late (`after`: the Lease
 * exists, kubetx learns it later), so a test can let the resolver or a
 * writer act in between (chaos F22: a close by count between a member's
 * lock and its admission's check; F23: a write between the resolver's
 * decision to close and its mark).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient, RequestOptions, WatchEvent } from "../../src/kube/client.ts";
import type { KubeObject, PatchOperation } from "../../src/kube/types.ts";
import { LABEL_ROLE, LABEL_TRANSACTION } from "../../src/kube/vocabulary.ts";
import { LOCK_ROLE } from "../../src/locks/record.ts";

export interface Hold {
  /** The transaction whose Lease is held (asked when its Lease is written: a test may learn the id late); any transaction's when absent. */
  readonly transaction?: string | (() => string | undefined);
  /** The kind of Lease held (locks/record.ts roles): a lock by default. */
  readonly role?: string;
  readonly ms: number;
  /** Hold the lock's create request (`before`) or its answer (`after`). */
  readonly when: "before" | "after";
  /** This many of the transaction's lock creates go through first. */
  readonly skip?: number;
}

export class HoldingClient implements KubeClient {
  readonly server: string;
  /** How many Lease writes were held, counted as each hold begins. */
  held = 0;
  private seen = 0;
  private readonly inner: KubeClient;
  private readonly hold: Hold;

  constructor(inner: KubeClient, hold: Hold) {
    this.inner = inner;
    this.server = inner.server;
    this.hold = hold;
  }

  get<T = KubeObject>(path: string, options?: RequestOptions): Promise<T> {
    return this.inner.get<T>(path, options);
  }

  async create<T = KubeObject>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    const held = this.holds(body);
    if (held && this.hold.when === "before") await sleep(this.hold.ms);
    const created = await this.inner.create<T>(path, body, options);
    if (held && this.hold.when === "after") await sleep(this.hold.ms);
    return created;
  }

  private holds(body: unknown): boolean {
    const labels = (body as KubeObject).metadata?.labels ?? {};
    if (labels[LABEL_ROLE] !== (this.hold.role ?? LOCK_ROLE)) return false;
    const transaction = typeof this.hold.transaction === "function" ? this.hold.transaction() : this.hold.transaction;
    if (this.hold.transaction !== undefined && labels[LABEL_TRANSACTION] !== transaction) return false;
    this.seen += 1;
    if (this.seen !== (this.hold.skip ?? 0) + 1) return false;
    this.held += 1;
    return true;
  }

  replace<T = KubeObject>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.inner.replace<T>(path, body, options);
  }

  jsonPatch<T = KubeObject>(path: string, ops: PatchOperation[], options?: RequestOptions): Promise<T> {
    return this.inner.jsonPatch<T>(path, ops, options);
  }

  mergePatch<T = KubeObject>(path: string, patch: unknown, options?: RequestOptions): Promise<T> {
    return this.inner.mergePatch<T>(path, patch, options);
  }

  delete<T = KubeObject>(path: string, options?: RequestOptions): Promise<T> {
    return this.inner.delete<T>(path, options);
  }

  watch(path: string, query: Record<string, string | undefined>, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    return this.inner.watch(path, query, onEvent, signal);
  }

  request<T>(method: string, path: string, options?: RequestOptions): Promise<T> {
    return this.inner.request<T>(method, path, options);
  }

  close(): void {
    this.inner.close();
  }
}
