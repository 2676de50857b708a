/** The Transaction records: the model's own persistence. */
import type { KubeClient, ObjectList } from "../kube/index.ts";
import { AlreadyExists, Conflict, NotFound } from "../kube/index.ts";
import type { RetryingWrite, Transaction, TransactionSpec, TransactionStatus } from "./model.ts";
import { LABEL_RESOLVED, TERMINAL_PHASES, newTransaction, transactionPath } from "./model.ts";

/** Concurrent status writers (replicas, admission) settle within a few rounds. */
const MAX_STATUS_ATTEMPTS = 8;

/** What the store needs of a cache of the unresolved records (src/kube/informer.ts). */
export interface RecordCache {
  readonly ready: boolean;
  get(name: string): Transaction | undefined;
  values(): IterableIterator<Transaction>;
}

export class TransactionStore {
  private readonly client: KubeClient;
  private readonly cache: RecordCache | undefined;

  /** With `cache` (a watch of the unresolved records), `cached` reads ask it first. */
  constructor(client: KubeClient, cache?: RecordCache) {
    this.client = client;
    this.cache = cache;
  }

  /**
   * The record. `cached` may answer from the watch of unresolved records:
   * possibly a phase behind (phases only move forward, so a refusal based on
   * it is never wrong), and a record it does not hold is read from the
   * apiserver.
   */
  async get(id: string, options: { cached?: boolean } = {}): Promise<Transaction | undefined> {
    if (options.cached && this.cache?.ready) {
      const hit = this.cache.get(id);
      if (hit) return hit;
    }
    try {
      return await this.client.get<Transaction>(transactionPath(id));
    } catch (error) {
      if (error instanceof NotFound) return undefined;
      throw error;
    }
  }

  /** The watch's copy of the record, with no call; undefined when the watch has not synced or does not hold it. */
  cached(id: string): Transaction | undefined {
    return this.cache?.ready ? this.cache.get(id) : undefined;
  }

  /**
   * The record for admission's first look: the cache's copy, or, when the
   * cache is synced and does not hold it (a new transaction, usually),
   * nothing: the caller creates it. Without a synced cache, a read.
   */
  async lookup(id: string): Promise<Transaction | undefined> {
    if (this.cache?.ready) return this.cache.get(id);
    return this.get(id);
  }

  /** Creates the record, or returns the one that exists (another replica, or the plugin, made it). */
  async getOrCreate(id: string, spec: TransactionSpec): Promise<Transaction> {
    try {
      return await this.client.create<Transaction>(transactionPath(), newTransaction(id, spec));
    } catch (error) {
      if (!(error instanceof AlreadyExists)) throw error;
    }
    const existing = await this.get(id);
    if (!existing) throw new Error(`transaction ${id} vanished while it was being created`);
    return existing;
  }

  /** Every record; `cached` reads the apiserver's watch cache (fast, may lag a moment). */
  async list(options: { cached?: boolean } = {}): Promise<Transaction[]> {
    return (await this.client.get<ObjectList<Transaction>>(transactionPath(), options.cached ? { query: { resourceVersion: "0" } } : {})).items;
  }

  /**
   * Unresolved transactions, from the cache (a record the cache has not
   * caught up with is picked up on the next pass). Resolved records carry a
   * label, so the apiserver leaves them out however many accumulate.
   */
  async listActive(): Promise<Transaction[]> {
    if (this.cache?.ready) return [...this.cache.values()].filter((tx) => !TERMINAL_PHASES.has(tx.status?.phase ?? "Open"));
    const list = await this.client.get<ObjectList<Transaction>>(transactionPath(), { query: { resourceVersion: "0", labelSelector: `!${LABEL_RESOLVED}` } });
    return list.items.filter((tx) => !TERMINAL_PHASES.has(tx.status?.phase ?? "Open"));
  }

  /** Labels a resolved record, so listActive no longer reads it. */
  async markResolved(id: string): Promise<void> {
    try {
      await this.client.mergePatch(transactionPath(id), { metadata: { labels: { [LABEL_RESOLVED]: "true" } } });
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
    }
  }

  /**
   * Read-modify-write of status with optimistic concurrency. `change`
   * returns the new status, or undefined to leave the record alone.
   */
  async updateStatus(id: string, change: (tx: Transaction) => TransactionStatus | undefined): Promise<Transaction | undefined> {
    for (let attempt = 0; attempt < MAX_STATUS_ATTEMPTS; attempt += 1) {
      const current = await this.get(id);
      if (!current) return undefined;
      const status = change(current);
      if (!status) return current;
      try {
        return await this.client.replace<Transaction>(`${transactionPath(id)}/status`, { ...current, status });
      } catch (error) {
        if (!(error instanceof Conflict)) throw error;
      }
    }
    throw new Error(`transaction ${id}: status kept changing; gave up after ${MAX_STATUS_ATTEMPTS} attempts`);
  }

  /**
   * Merges request outcomes (lock name to final HTTP status) into the
   * record's status, as the audit sink reports them. A merge patch: no
   * read, and concurrent reports of other members are kept. A success is
   * also kept in `persisted`, which a later failure never clears.
   */
  async recordRequests(id: string, outcomes: readonly { readonly lock: string; readonly code: number }[]): Promise<void> {
    const requests = Object.fromEntries(outcomes.map((o) => [o.lock, o.code]));
    const persisted = Object.fromEntries(outcomes.filter((o) => o.code < 400).map((o) => [o.lock, true]));
    const status = Object.keys(persisted).length > 0 ? { requests, persisted } : { requests };
    try {
      await this.client.mergePatch(`${transactionPath(id)}/status`, { status });
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
    }
  }

  /** Sets (audit ID to when received) or clears (null) writes in flight, as the audit sink reports them: a merge patch, no read. */
  async markInFlight(id: string, marks: Readonly<Record<string, string | null>>): Promise<void> {
    try {
      await this.client.mergePatch(`${transactionPath(id)}/status`, { status: { inFlight: marks } });
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
    }
  }

  /** Adds writes the client will send again (TransactionStatus.retrying), by lock name: a merge patch, no read. */
  async markRetrying(id: string, writes: Readonly<Record<string, RetryingWrite>>): Promise<void> {
    try {
      await this.client.mergePatch(`${transactionPath(id)}/status`, { status: { retrying: writes } });
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
    }
  }

  /** Notes a write of the requester, refused by the transaction or of an object it holds (see TransactionStatus.lastActivity); the record as it is after. */
  async noteActivity(id: string, token: string, refusedAt?: string): Promise<Transaction | undefined> {
    try {
      return await this.client.mergePatch<Transaction>(`${transactionPath(id)}/status`, { status: { lastActivity: token, ...(refusedAt ? { refusedAt } : {}) } });
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
      return undefined;
    }
  }

  async delete(id: string): Promise<void> {
    try {
      await this.client.delete(transactionPath(id));
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
    }
  }
}
