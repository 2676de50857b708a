/**
 * The real apiserver client with one call held back on purpose: after
 * kubetx writes the lock Lease of a chosen transaction, its next read of
 * that transaction's record waits, so a test can let the resolver act in
 * between (chaos F22: the close by count between a member's lock and its
 * admission's read of the record).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient, RequestOptions, WatchEvent } from "../../src/kube/client.ts";
import type { KubeObject, PatchOperation } from "../../src/kube/types.ts";
import { LABEL_ROLE, LABEL_TRANSACTION } from "../../src/kube/vocabulary.ts";
import { LOCK_ROLE } from "../../src/locks/record.ts";
import { transactionPath } from "../../src/transactions/model.ts";

export class HoldingClient implements KubeClient {
  readonly server: string;
  /** How many record reads were held. */
  held = 0;
  private armed = false;
  private readonly inner: KubeClient;
  private readonly transaction: string;
  private readonly holdMs: number;

  constructor(inner: KubeClient, hold: { transaction: string; ms: number }) {
    this.inner = inner;
    this.server = inner.server;
    this.transaction = hold.transaction;
    this.holdMs = hold.ms;
  }

  async get<T = KubeObject>(path: string, options?: RequestOptions): Promise<T> {
    if (this.armed && path === transactionPath(this.transaction)) {
      this.armed = false;
      this.held += 1;
      await sleep(this.holdMs);
    }
    return this.inner.get<T>(path, options);
  }

  async create<T = KubeObject>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    const created = await this.inner.create<T>(path, body, options);
    const labels = (body as KubeObject).metadata?.labels ?? {};
    if (labels[LABEL_ROLE] === LOCK_ROLE && labels[LABEL_TRANSACTION] === this.transaction) this.armed = true;
    return created;
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
