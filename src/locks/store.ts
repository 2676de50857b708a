/**
 * Lock and heartbeat Leases over the Kubernetes API, with optimistic
 * concurrency: every change carries the resourceVersion it was based on.
 */
import type { KubeClient, KubeObject, ObjectList, ObjectRef } from "../kube/index.ts";
import { AlreadyExists, Conflict, NotFound } from "../kube/index.ts";
import { LABEL_ROLE, LABEL_TRANSACTION, LABEL_USER } from "../kube/vocabulary.ts";
import { revisionAtMost } from "../kube/revision.ts";
import { listNotOlderThan } from "../kube/lists.ts";
import type { Closing, LockRecord, Member } from "./record.ts";
import { PULSE_ROLE } from "./pulse.ts";
import { CLOSING_ROLE, HEARTBEAT_ROLE, LOCK_ROLE, closingFromLease, closingLease, closingName, heartbeatLease, heartbeatName, lockFromLease, lockLease, lockName, userDigest } from "./record.ts";

export type AcquireResult =
  | { readonly kind: "acquired"; readonly lock: LockRecord }
  /** This transaction already holds the lock: a second write of the same object. */
  | { readonly kind: "mine"; readonly lock: LockRecord }
  | { readonly kind: "held"; readonly lock: LockRecord };

/** What one user holds: lock Leases, and the transactions they belong to (open, or Failed and keeping them). */
export interface UserHoldings {
  readonly locks: number;
  readonly transactions: ReadonlySet<string>;
}

export interface Heartbeat {
  readonly transaction: string;
  readonly holder: string;
  readonly resourceVersion: string;
  /** As written by the holder: informational only, never compared with our clock. */
  readonly acquireTime?: string;
  readonly renewTime?: string;
}

export interface LockStoreOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  /** Lease duration written into new locks and heartbeats (policy; may change). */
  readonly ttlSeconds: () => number;
  /** A watch-backed cache of kubetx's Leases: `cached` reads come from it once it has synced. */
  readonly cache?: LeaseCache;
}

/** What the lock store needs of a Lease cache (src/kube/informer.ts). */
export interface LeaseCache {
  readonly ready: boolean;
  /** The resourceVersion `values()` reflects: every change up to it is in. */
  readonly revision: string;
  values(): IterableIterator<KubeObject>;
  get(name: string): KubeObject | undefined;
  /** True once the cache reflects `revision`; false after `timeoutMs`. */
  reached(revision: string, timeoutMs: number): Promise<boolean>;
}

/**
 * A closing mark as the resolver reads it: the decision it holds, or
 * "unreadable" for one someone garbled (the transaction must still close:
 * admission already refuses new members because of it).
 */
export type ClosingMark = Closing | "unreadable";

/** How long admission waits for its own lock in the Lease cache before it reads the record instead. */
export const OWN_LOCK_WAIT_MS = 1_000;

interface LeaseObject extends KubeObject {
  spec?: { holderIdentity?: string; acquireTime?: string; renewTime?: string; leaseDurationSeconds?: number };
}

export class LockStore {
  private readonly client: KubeClient;
  private readonly ttl: () => number;
  private readonly leases: string;
  private readonly cache: LeaseCache | undefined;

  constructor(options: LockStoreOptions) {
    this.client = options.client;
    this.ttl = options.ttlSeconds;
    this.cache = options.cache;
    this.leases = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/leases`;
  }

  /** Creates the object's lock for `member`, or reports who holds it. */
  async acquire(member: Member): Promise<AcquireResult> {
    try {
      const lease = await this.client.create<LeaseObject>(this.leases, lockLease(member, this.ttl()));
      return { kind: "acquired", lock: this.record(lease) };
    } catch (error) {
      if (!(error instanceof AlreadyExists)) throw error;
    }
    const existing = await this.read(member.ref);
    if (!existing) return this.acquire(member);
    return { kind: existing.member.transaction === member.transaction ? "mine" : "held", lock: existing };
  }

  /** Replaces a lock left by a resolved transaction; a Conflict means someone else got there first. */
  async takeOver(previous: LockRecord, member: Member): Promise<LockRecord> {
    const body = lockLease(member, this.ttl());
    body.metadata = { ...body.metadata, resourceVersion: previous.resourceVersion };
    return this.record(await this.client.replace<LeaseObject>(`${this.leases}/${previous.name}`, body));
  }

  async read(ref: ObjectRef): Promise<LockRecord | undefined> {
    try {
      return this.record(await this.client.get<LeaseObject>(`${this.leases}/${lockName(ref)}`));
    } catch (error) {
      if (error instanceof NotFound) return undefined;
      throw error;
    }
  }

  /** The object's lock as the Lease cache holds it (a watch's moment behind), or as read without a synced cache. */
  async lockNow(ref: ObjectRef): Promise<LockRecord | undefined> {
    return this.cache?.ready ? this.cachedLock(this.cache, ref) : this.read(ref);
  }

  private cachedLock(cache: LeaseCache, ref: ObjectRef): LockRecord | undefined {
    const lease = cache.get(lockName(ref));
    return lease ? lockFromLease(lease) : undefined;
  }

  /**
   * A transaction's locks. `cached` reads the apiserver's watch cache
   * (resourceVersion=0): a millisecond instead of an etcd range read, but it
   * may lag a write or two behind, so it serves counts and limits, never
   * the decision to commit or what to roll back.
   */
  async locksOf(transaction: string, options: { cached?: boolean } = {}): Promise<LockRecord[]> {
    if (options.cached) return (await this.countLocks(transaction)).locks;
    const list = await this.client.get<ObjectList<LeaseObject>>(this.leases, { query: { labelSelector: `${LABEL_ROLE}=${LOCK_ROLE},${LABEL_TRANSACTION}=${transaction}` } });
    return list.items.flatMap((lease) => lockFromLease(lease) ?? []);
  }

  /**
   * A transaction's locks from a watch cache, with the resourceVersion that
   * cache reflects: every lock written at or before it is in the list (the
   * resolver records it when it closes by count; see Coordinator's
   * closedMeanwhile). Empty when the answer carries none.
   */
  async countLocks(transaction: string): Promise<{ locks: LockRecord[]; revision: string }> {
    if (this.cache?.ready) {
      // Read together, in one turn of the event loop: the values are those of the revision.
      const revision = this.cache.revision;
      const locks = [...this.cache.values()].filter((lease) => lease.metadata?.labels?.[LABEL_ROLE] === LOCK_ROLE && lease.metadata.labels[LABEL_TRANSACTION] === transaction);
      return { locks: locks.flatMap((lease) => lockFromLease(lease) ?? []), revision };
    }
    const list = await this.client.get<ObjectList<LeaseObject>>(this.leases, {
      query: { labelSelector: `${LABEL_ROLE}=${LOCK_ROLE},${LABEL_TRANSACTION}=${transaction}`, resourceVersion: "0" },
    });
    return { locks: list.items.flatMap((lease) => lockFromLease(lease) ?? []), revision: list.metadata?.resourceVersion ?? "" };
  }

  /**
   * The locks `username` holds, by the user label, from a watch cache (this
   * process's, else the apiserver's: one cheap list). It may lag a few
   * writes behind, so limits counted from it are soft by that much.
   */
  async heldBy(username: string): Promise<UserHoldings> {
    const user = userDigest(username);
    // This process's own watch of kubetx's Leases when it has synced: no round trip on the request path.
    const leases = this.cache?.ready
      ? [...this.cache.values()].filter((l) => l.metadata?.labels?.[LABEL_ROLE] === LOCK_ROLE && l.metadata.labels[LABEL_USER] === user)
      : (await this.client.get<ObjectList<LeaseObject>>(this.leases, { query: { labelSelector: `${LABEL_ROLE}=${LOCK_ROLE},${LABEL_USER}=${user}`, resourceVersion: "0" } })).items;
    return { locks: leases.length, transactions: new Set(leases.map((l) => l.metadata?.labels?.[LABEL_TRANSACTION] ?? "").filter(Boolean)) };
  }

  /**
   * A transaction's locks read consistently, or at least as new as
   * `notOlderThan` (kube/lists.ts), and the names of its lock Leases whose
   * member annotation cannot be read (garbled by hand or by a bug): the
   * resolver must not act as if those members did not exist.
   */
  async membersOf(transaction: string, options: { notOlderThan?: string } = {}): Promise<{ locks: LockRecord[]; garbled: string[] }> {
    const labelSelector = `${LABEL_ROLE}=${LOCK_ROLE},${LABEL_TRANSACTION}=${transaction}`;
    const list = await listNotOlderThan((query) => this.client.get<ObjectList<LeaseObject>>(this.leases, { query: { labelSelector, ...query } }), options.notOlderThan);
    const locks: LockRecord[] = [];
    const garbled: string[] = [];
    for (const lease of list.items) {
      const lock = lockFromLease(lease);
      if (lock) locks.push(lock);
      else garbled.push(lease.metadata?.name ?? "?");
    }
    return { locks, garbled };
  }

  /** Every lock Lease, readable or not: name, version and the transaction its label names. */
  async allLocks(): Promise<{ name: string; resourceVersion: string; transaction: string }[]> {
    const list = await this.client.get<ObjectList<LeaseObject>>(this.leases, { query: { labelSelector: `${LABEL_ROLE}=${LOCK_ROLE}` } });
    return list.items.map((lease) => ({
      name: lease.metadata?.name ?? "", resourceVersion: lease.metadata?.resourceVersion ?? "", transaction: lease.metadata?.labels?.[LABEL_TRANSACTION] ?? "",
    }));
  }

  /** Deletes a lock Lease by name if it is still at `resourceVersion`. */
  async releaseByName(name: string, resourceVersion: string): Promise<void> {
    await this.deleteLease(name, resourceVersion);
  }

  /** Whether `lock` is still the object's lock, unchanged: nobody released or took it over. */
  async stillHeld(lock: LockRecord): Promise<boolean> {
    const current = await this.read(lock.member.ref).catch((error: unknown) => {
      if (error instanceof Error && error.message.includes("is not a kubetx lock")) return undefined;
      throw error;
    });
    return current?.name === lock.name && current.resourceVersion === lock.resourceVersion;
  }

  /** Deletes the lock if it is still the version we hold; gone already is fine. */
  async release(lock: LockRecord): Promise<void> {
    await this.deleteLease(lock.name, lock.resourceVersion);
  }

  async readHeartbeat(transaction: string): Promise<Heartbeat | undefined> {
    try {
      return this.heartbeat(transaction, await this.client.get<LeaseObject>(`${this.leases}/${heartbeatName(transaction)}`));
    } catch (error) {
      if (error instanceof NotFound) return undefined;
      throw error;
    }
  }

  /** Creates the heartbeat with `holder` as coordinator; undefined when another replica created it first. */
  async createHeartbeat(transaction: string, holder: string, nowMs: number): Promise<Heartbeat | undefined> {
    try {
      const lease = await this.client.create<LeaseObject>(this.leases, heartbeatLease(transaction, holder, this.ttl(), nowMs));
      return this.heartbeat(transaction, lease);
    } catch (error) {
      if (error instanceof AlreadyExists) return undefined;
      throw error;
    }
  }

  /** Renews (same holder) or takes over (new holder); a Conflict means the lease changed since it was read. */
  async writeHeartbeat(previous: Heartbeat, holder: string, nowMs: number): Promise<Heartbeat> {
    const body = heartbeatLease(previous.transaction, holder, this.ttl(), nowMs);
    body.metadata = { ...body.metadata, resourceVersion: previous.resourceVersion };
    // A renewal keeps the time the holder first acquired it; a takeover starts anew.
    if (previous.holder === holder && previous.acquireTime) (body.spec as { acquireTime: string }).acquireTime = previous.acquireTime;
    return this.heartbeat(previous.transaction, await this.client.replace<LeaseObject>(`${this.leases}/${heartbeatName(previous.transaction)}`, body));
  }

  /**
   * Writes the transaction's closing mark, before the resolver moves it
   * out of Open (see closingLease); one that exists already is kept, and
   * its decision returned: the first decision to close is the one carried
   * out (read afresh: the cache may not hold it yet).
   */
  async markClosing(transaction: string, holder: string, closing: Closing): Promise<ClosingMark> {
    try {
      await this.client.create(this.leases, closingLease(transaction, holder, closing));
      return closing;
    } catch (error) {
      if (!(error instanceof AlreadyExists)) throw error;
    }
    return (await this.closingMark(transaction, { fresh: true })) ?? closing;
  }

  /**
   * The transaction's closing mark, if it has one: from the cache once
   * synced (a mark it has not seen yet is found next pass), or `fresh`
   * from the apiserver, ordered after the caller's own earlier writes.
   */
  async closingMark(transaction: string, options: { fresh?: boolean } = {}): Promise<ClosingMark | undefined> {
    let lease: KubeObject | undefined;
    if (this.cache?.ready && !options.fresh) lease = this.cache.get(closingName(transaction));
    else {
      try {
        lease = await this.client.get<LeaseObject>(`${this.leases}/${closingName(transaction)}`);
      } catch (error) {
        if (!(error instanceof NotFound)) throw error;
      }
    }
    return lease ? (closingFromLease(lease) ?? "unreadable") : undefined;
  }

  /**
   * Whether the resolver began to close `lock`'s transaction before the
   * lock was written: the closing mark is older than the lock. Answered
   * from the Lease cache once it holds the lock itself (one watch delivers
   * both in etcd's order, so a mark written before the lock is in by
   * then), with no apiserver call; undefined when the cache cannot say
   * within OWN_LOCK_WAIT_MS (the caller then reads the record).
   */
  async closedBefore(lock: LockRecord, timeoutMs = OWN_LOCK_WAIT_MS): Promise<boolean | undefined> {
    if (!this.cache?.ready || !/^\d+$/.test(lock.resourceVersion)) return undefined;
    if (!(await this.cache.reached(lock.resourceVersion, timeoutMs))) return undefined;
    const mark = this.cache.get(closingName(lock.member.transaction));
    return mark !== undefined && revisionAtMost(mark.metadata?.resourceVersion ?? "", lock.resourceVersion);
  }

  /**
   * The object's lock and whether its transaction has a closing mark, as
   * the Lease cache holds them now, with no call; undefined without a
   * synced cache. How old that answer may be is the pulse's to say
   * (pulse.ts).
   */
  cachedLockAndMark(ref: ObjectRef, transaction: string): { lock: LockRecord | undefined; marked: boolean } | undefined {
    if (!this.cache?.ready) return undefined;
    return { lock: this.cachedLock(this.cache, ref), marked: this.cache.get(closingName(transaction)) !== undefined };
  }

  /** Every closing mark's transaction. */
  async closingMarks(): Promise<string[]> {
    return this.transactionsOf(CLOSING_ROLE);
  }

  async deleteClosingMark(transaction: string): Promise<void> {
    await this.deleteLease(closingName(transaction));
  }

  /** Every replica's pulse Lease (pulse.ts): name and version, which changes every beat while its replica lives. */
  async pulses(): Promise<{ name: string; resourceVersion: string }[]> {
    const list = await this.client.get<ObjectList<LeaseObject>>(this.leases, { query: { labelSelector: `${LABEL_ROLE}=${PULSE_ROLE}` } });
    return list.items.map((lease) => ({ name: lease.metadata?.name ?? "", resourceVersion: lease.metadata?.resourceVersion ?? "" }));
  }

  /** Deletes a pulse Lease if it is still at `resourceVersion` (its replica has not beaten since). */
  async deletePulse(name: string, resourceVersion: string): Promise<void> {
    await this.deleteLease(name, resourceVersion);
  }

  /** Every heartbeat Lease's transaction. */
  async heartbeats(): Promise<string[]> {
    return this.transactionsOf(HEARTBEAT_ROLE);
  }

  private async transactionsOf(role: string): Promise<string[]> {
    const list = await this.client.get<ObjectList<LeaseObject>>(this.leases, { query: { labelSelector: `${LABEL_ROLE}=${role}` } });
    return list.items.map((l) => l.metadata?.labels?.[LABEL_TRANSACTION] ?? "").filter(Boolean);
  }

  async deleteHeartbeat(transaction: string): Promise<void> {
    await this.deleteLease(heartbeatName(transaction));
  }

  /** Gone already, or changed since (another transaction took the lock over): either way it is no longer ours. */
  private async deleteLease(name: string, resourceVersion?: string): Promise<void> {
    try {
      await this.client.delete(`${this.leases}/${name}`, resourceVersion ? { body: { preconditions: { resourceVersion } } } : {});
    } catch (error) {
      if (!(error instanceof NotFound || error instanceof Conflict)) throw error;
    }
  }

  private record(lease: LeaseObject): LockRecord {
    const record = lockFromLease(lease);
    if (!record) throw new Error(`lease ${lease.metadata?.name ?? "?"} is not a kubetx lock`);
    return record;
  }

  private heartbeat(transaction: string, lease: LeaseObject): Heartbeat {
    return {
      transaction,
      holder: lease.spec?.holderIdentity ?? "",
      resourceVersion: lease.metadata?.resourceVersion ?? "",
      ...(lease.spec?.acquireTime ? { acquireTime: lease.spec.acquireTime } : {}),
      ...(lease.spec?.renewTime ? { renewTime: lease.spec.renewTime } : {}),
    };
  }
}
