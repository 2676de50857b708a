/**
 * The garbage collector's I/O: lists what kubetx stores, asks gc.ts what
 * may go, and deletes it with preconditions (a lock someone took over since
 * the list is left alone).
 */
import type { Journal } from "../journal/journal.ts";
import type { KubeClient, KubeObject, ObjectList } from "../kube/index.ts";
import { METADATA_LIST } from "../kube/index.ts";
import type { LockStore } from "../locks/store.ts";
import type { Session, SessionStore } from "../locks/sessions.ts";
import type { Limits } from "../policy/policy.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { ResolverMetrics } from "../telemetry/metrics.ts";
import type { Transaction } from "../transactions/model.ts";
import type { TransactionStore } from "../transactions/store.ts";
import { mapLimit } from "./concurrency.ts";
import { closingName } from "../locks/record.ts";
import type { Leftover } from "./gc.ts";
import { CLOSING_MARK_KEEP_MS, EligibleSince, eligibility, expiredRecords, failedCount, overdueLocks, waitFor } from "./gc.ts";

/**
 * A pulse Lease (locks/pulse.ts) unchanged this long belongs to a replica
 * that is gone (a rollout replaces every pod, each with a pulse of its
 * own); a live one changes every second.
 */
const DEAD_PULSE_MS = 10 * 60_000;

/** Deletes run this many at a time. */
const PARALLEL_DELETES = 8;

export interface CollectorOptions {
  /** Lists namespaces: a committed transaction's journal goes with its namespace. */
  readonly client: KubeClient;
  readonly store: TransactionStore;
  readonly locks: LockStore;
  readonly sessions: SessionStore;
  readonly journal: Journal;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly limits: () => Limits;
  readonly metrics: ResolverMetrics;
}

type Listed = Leftover & { readonly resourceVersion?: string; readonly session?: Session };

export class GarbageCollector {
  private readonly o: CollectorOptions;
  private readonly leftoversSince = new EligibleSince();
  private readonly recordsSince = new EligibleSince();
  private readonly pulsesSince = new EligibleSince();

  constructor(options: CollectorOptions) {
    this.o = options;
  }

  /** One pass; returns how many objects it removed. */
  async collect(): Promise<number> {
    // Leftovers first, records second: a transaction created in between is seen with its record.
    const leftovers = await this.listLeftovers();
    const records = await this.o.store.list();
    const byId = new Map(records.map((tx) => [tx.metadata?.name ?? "", tx]));
    const doomed = this.due(leftovers, byId, await this.namespaceGone(leftovers, byId));
    await mapLimit(doomed, PARALLEL_DELETES, (l) => this.remove(l));
    const expired = this.expired(records);
    await mapLimit(expired, PARALLEL_DELETES, (tx) => this.o.store.delete(tx.metadata?.name ?? ""));
    const locks = leftovers.filter((l) => l.kind === "lock" && !doomed.includes(l));
    this.o.metrics.locksHeld(locks.length);
    this.o.metrics.locksOverdue(overdueLocks(locks, byId, this.o.clock.now(), this.o.limits()));
    this.o.metrics.failedTransactions(failedCount(records));
    const removed = doomed.length + expired.length + (await this.collectPulses());
    if (removed > 0) this.o.logger.info({ leftovers: doomed.length, records: expired.length }, "garbage collected");
    return removed;
  }

  private async listLeftovers(): Promise<Listed[]> {
    const [locks, heartbeats, closings, journals, sessions] = await Promise.all([
      this.o.locks.allLocks(), this.o.locks.heartbeats(), this.o.locks.closingMarks(), this.o.journal.entries(), this.o.sessions.list(),
    ]);
    return [
      ...locks.map((l) => ({ kind: "lock" as const, name: l.name, transaction: l.transaction, resourceVersion: l.resourceVersion })),
      ...heartbeats.map((t) => ({ kind: "heartbeat" as const, name: `hb-${t}`, transaction: t })),
      ...closings.map((t) => ({ kind: "closing" as const, name: closingName(t), transaction: t })),
      ...journals.map((j) => ({ kind: "journal" as const, name: j.name, transaction: j.transaction })),
      ...sessions.map((s) => ({ kind: "session" as const, name: `ss-${s.key}`, transaction: s.transaction, session: s })),
    ];
  }

  /**
   * Which namespaces are gone, asked only when a committed transaction's
   * journal is kept; when the list fails, none is taken for gone.
   */
  private async namespaceGone(leftovers: readonly Listed[], byId: ReadonlyMap<string, Transaction>): Promise<(namespace: string) => boolean> {
    const kept = leftovers.some((l) => l.kind === "journal" && byId.get(l.transaction)?.status?.phase === "Committed");
    if (!kept) return () => false;
    try {
      const list = await this.o.client.get<ObjectList<KubeObject>>("/api/v1/namespaces", { accept: METADATA_LIST });
      const live = new Set((list.items ?? []).filter((ns) => !ns.metadata?.deletionTimestamp).map((ns) => ns.metadata?.name ?? ""));
      return (namespace) => !live.has(namespace);
    } catch (error) {
      this.o.logger.warn({ err: error }, "could not list namespaces; kept journals stay for their retention");
      return () => false;
    }
  }

  private due(leftovers: readonly Listed[], byId: ReadonlyMap<string, Transaction>, namespaceGone: (namespace: string) => boolean): Listed[] {
    const now = this.o.clock.monotonic();
    const waits = { orphanMs: this.o.limits().lockTtlSeconds * 1000, retentionMs: this.o.limits().journalRetentionSeconds * 1000, settledMs: CLOSING_MARK_KEEP_MS };
    const eligible = leftovers.flatMap((l) => {
      const why = eligibility(l, byId.get(l.transaction), namespaceGone);
      return why ? [{ leftover: l, waitMs: waitFor(why, waits) }] : [];
    });
    this.leftoversSince.retain(new Set(eligible.map((e) => e.leftover.name)));
    return eligible.filter((e) => this.leftoversSince.due(e.leftover.name, now, e.waitMs)).map((e) => e.leftover);
  }

  private expired(records: readonly Transaction[]): Transaction[] {
    const now = this.o.clock.monotonic();
    const retentionMs = this.o.limits().recordRetentionSeconds * 1000;
    const resolved = records.filter((tx) => tx.status?.resolvedAt);
    this.recordsSince.retain(new Set(resolved.map((tx) => tx.metadata?.name ?? "")));
    const isDue = (tx: Transaction): boolean => this.recordsSince.due(tx.metadata?.name ?? "", now, retentionMs);
    return expiredRecords(records, isDue, this.o.limits().maxRecords);
  }

  /** Removes the pulses of replicas that are gone: each one unchanged (same version) for DEAD_PULSE_MS on this process's clock. */
  private async collectPulses(): Promise<number> {
    const now = this.o.clock.monotonic();
    const pulses = await this.o.locks.pulses();
    const key = (p: { name: string; resourceVersion: string }): string => `${p.name}@${p.resourceVersion}`;
    this.pulsesSince.retain(new Set(pulses.map(key)));
    const dead = pulses.filter((p) => this.pulsesSince.due(key(p), now, DEAD_PULSE_MS));
    await mapLimit(dead, PARALLEL_DELETES, (p) => this.o.locks.deletePulse(p.name, p.resourceVersion));
    return dead.length;
  }

  private async remove(l: Listed): Promise<void> {
    switch (l.kind) {
      case "journal":
        return this.o.journal.remove(l.name);
      case "heartbeat":
        return this.o.locks.deleteHeartbeat(l.transaction);
      case "closing":
        return this.o.locks.deleteClosingMark(l.transaction);
      case "lock":
        return this.o.locks.releaseByName(l.name, l.resourceVersion ?? "");
      case "session":
        return l.session ? this.o.sessions.remove(l.session) : undefined;
    }
  }
}
