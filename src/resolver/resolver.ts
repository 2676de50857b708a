/**
 * The controller loop. Every replica runs one; for each open transaction
 * exactly one replica (the holder of its heartbeat Lease) acts: it closes
 * the transaction, verifies that every admitted write persisted, and
 * commits or rolls back. A replica takes over a transaction whose
 * heartbeat it has seen unchanged for a full lock TTL.
 */
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { Conflict, getIfExists } from "../kube/index.ts";
import { describeRef } from "../kube/types.ts";
import type { Journal } from "../journal/journal.ts";
import { journalName } from "../journal/journal.ts";
import { ExpiryTracker } from "../locks/expiry.ts";
import type { LockRecord } from "../locks/record.ts";
import { heartbeatName } from "../locks/record.ts";
import type { Heartbeat, LockStore } from "../locks/store.ts";
import { restoreMember } from "../rollback/apply.ts";
import type { RestoreOutcome } from "../rollback/apply.ts";
import { objectPath } from "../rollback/plan.ts";
import type { Limits } from "../policy/policy.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { ResolverMetrics } from "../telemetry/metrics.ts";
import type { MemberCheck } from "../transactions/machine.ts";
import { decideOpen, decideVerify } from "../transactions/machine.ts";
import type { MemberOutcome, MemberSummary, Phase, Transaction, TransactionStatus } from "../transactions/model.ts";
import { TERMINAL_PHASES } from "../transactions/model.ts";
import type { TransactionStore } from "../transactions/store.ts";
import { persisted } from "../transactions/verify.ts";
import type { RollbackEvents } from "./events.ts";
import { mapLimit } from "./concurrency.ts";
import type { Leftover } from "./gc.ts";
import { executeUndo, planUndo } from "./undo.ts";
import { garbage } from "./gc.ts";

/** Restores and checks run this many at a time: fast for 100 members, gentle on the apiserver. */
const PARALLEL_MEMBER_WORK = 8;
/** Transactions advanced at once in one resolver pass. */
const PARALLEL_TRANSACTIONS = 8;
/** Leftovers are rare (a replica died mid-cleanup); looking for them every 40 passes (10 s by default) is plenty. */
const GC_EVERY_PASSES = 40;

export interface ResolverTiming {
  readonly periodMs: number;
  /** How long an admitted write may stay invisible before it counts as not persisted. */
  readonly persistGraceMs: number;
  /**
   * With the audit sink: how late a request's outcome may arrive. Quiet
   * windows close this much later, and a member's outcome is awaited this
   * much longer before the live object decides instead. 0: no sink.
   */
  readonly auditSinkDelayMs?: number;
}

export interface ResolverOptions {
  readonly client: KubeClient;
  readonly store: TransactionStore;
  readonly locks: LockStore;
  readonly journal: Journal;
  readonly events: RollbackEvents;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly identity: string;
  readonly timing: ResolverTiming;
  /** The policy limits in force now: lock TTL, quiet window, open time, journal retention. */
  readonly limits: () => Limits;
  readonly metrics: ResolverMetrics;
}

/** What this process has observed of one transaction. */
interface Observed {
  readonly openedAt: number;
  memberCount: number;
  lastChangeAt: number;
  lastRenewAt: number;
  /** Taken over from a coordinator that stopped renewing. */
  takenOver: boolean;
  readonly firstChecked: Map<string, number>;
}

export function validateTiming(t: ResolverTiming): void {
  if (!(t.periodMs > 0)) throw new Error(`resolver period must be positive, got ${t.periodMs} ms`);
  if (!(t.persistGraceMs > 0)) throw new Error(`persist grace must be positive, got ${t.persistGraceMs} ms`);
}

/** Like client-go's leader election: a heartbeat renews several times per lock TTL, whatever a policy says. */
export function renewEveryMs(lockTtlMs: number, periodMs: number): number {
  return Math.max(periodMs, lockTtlMs / 3);
}

export class Resolver {
  private readonly o: ResolverOptions;
  private readonly expiry: ExpiryTracker;
  private readonly observed = new Map<string, Observed>();
  private passes = 0;

  constructor(options: ResolverOptions) {
    validateTiming(options.timing);
    this.o = options;
    this.expiry = new ExpiryTracker(options.clock);
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = this.o.clock.now();
      await this.tick().catch((error: unknown) => this.o.logger.warn({ err: error }, "resolver pass failed"));
      const wait = Math.max(0, this.o.timing.periodMs - (this.o.clock.now() - started));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  }

  /** One pass over every unresolved transaction. */
  async tick(): Promise<void> {
    this.passes += 1;
    if (this.passes % GC_EVERY_PASSES === 0) await this.collectGarbage();
    const active = await this.o.store.listActive();
    this.o.metrics.openTransactions(active.length);
    // Transactions are independent; several at once keep commits prompt under many small ones.
    await mapLimit(active, PARALLEL_TRANSACTIONS, (tx) =>
      this.step(tx).catch((error: unknown) => this.o.logger.warn({ err: error, transaction: tx.metadata?.name }, "resolver step failed")));
  }

  private async step(listed: Transaction): Promise<void> {
    const id = listed.metadata?.name ?? "";
    // The list came from the cache: act only on the record as it is now.
    const tx = await this.o.store.get(id);
    if (!tx || TERMINAL_PHASES.has(tx.status?.phase ?? "Open")) return;
    if (await this.coordinate(id)) await this.advance(id, tx);
  }

  private async advance(id: string, tx: Transaction): Promise<void> {
    const phase: Phase = tx.status?.phase ?? "Open";
    if (phase === "Open" && tx.spec.mode === "undo") await this.stepUndo(id, tx);
    else if (phase === "Open") await this.stepOpen(id, tx);
    else if (phase === "Verifying") await this.stepVerify(id);
    else if (phase === "RollingBack") await this.rollBack(id);
  }

  /** True when this replica coordinates the transaction now (holding, creating or taking over its heartbeat). */
  private async coordinate(id: string): Promise<boolean> {
    const now = this.o.clock.now();
    const heartbeat = await this.o.locks.readHeartbeat(id);
    if (!heartbeat) return (await this.o.locks.createHeartbeat(id, this.o.identity, now)) !== undefined;
    if (heartbeat.holder === this.o.identity) return this.renew(id, heartbeat, now);
    if (!this.expiry.expired(heartbeatName(id), heartbeat.resourceVersion, this.o.limits().lockTtlSeconds * 1000)) return false;
    try {
      await this.o.locks.writeHeartbeat(heartbeat, this.o.identity, now);
    } catch (error) {
      if (error instanceof Conflict) return false;
      throw error;
    }
    this.o.logger.info({ transaction: id, previous: heartbeat.holder }, "took over transaction from a coordinator that stopped renewing");
    const seen = this.observe(id);
    seen.takenOver = true;
    seen.lastRenewAt = now;
    return true;
  }

  private async renew(id: string, heartbeat: Heartbeat, now: number): Promise<boolean> {
    const seen = this.observe(id);
    if (now - seen.lastRenewAt < renewEveryMs(this.o.limits().lockTtlSeconds * 1000, this.o.timing.periodMs)) return true;
    try {
      await this.o.locks.writeHeartbeat(heartbeat, this.o.identity, now);
      seen.lastRenewAt = now;
      return true;
    } catch (error) {
      if (error instanceof Conflict) return false;
      throw error;
    }
  }

  private observe(id: string): Observed {
    let seen = this.observed.get(id);
    if (!seen) {
      const now = this.o.clock.now();
      seen = { openedAt: now, memberCount: 0, lastChangeAt: now, lastRenewAt: 0, takenOver: false, firstChecked: new Map() };
      this.observed.set(id, seen);
    }
    return seen;
  }

  private async stepOpen(id: string, tx: Transaction): Promise<void> {
    const now = this.o.clock.now();
    const seen = this.observe(id);
    // Counting is all this step does with the locks: the cache is good enough.
    const locks = await this.o.locks.locksOf(id, { cached: true });
    if (locks.length !== seen.memberCount) {
      seen.memberCount = locks.length;
      seen.lastChangeAt = now;
    }
    const decision = decideOpen({
      mode: tx.spec.mode,
      memberCount: locks.length,
      openedAt: seen.openedAt,
      lastChangeAt: seen.lastChangeAt,
      timeoutMs: timeoutMs(tx, this.o.limits().maxOpenSeconds),
      quietMs: this.o.limits().quietWindowMs + this.sinkDelayMs(),
      coordinatorLost: seen.takenOver,
      ...pick(tx.spec, "expectedMembers", "clientState", "clientMessage"),
      ...(tx.status?.failure ? { failure: tx.status.failure } : {}),
    }, now);
    if (decision.next === "Open") return this.markOpen(id, tx, locks.length);
    if (decision.next === "Verifying") {
      await this.setPhase(id, "Verifying", { reason: decision.reason, closedAt: iso(now) });
      return this.stepVerify(id);
    }
    await this.setPhase(id, "RollingBack", { reason: decision.reason, message: decision.message, closedAt: iso(now) });
    return this.rollBack(id);
  }

  /** Reverts the committed transaction spec.undoOf names, as this transaction. */
  private async stepUndo(id: string, tx: Transaction): Promise<void> {
    const deps = { client: this.o.client, journal: this.o.journal, locks: this.o.locks, clock: this.o.clock };
    const plan = await planUndo(deps, tx, await this.o.store.get(tx.spec.undoOf ?? ""));
    if (plan.kind === "refused") {
      await this.setPhase(id, "RolledBack", { reason: "UndoRefused", message: plan.message, members: plan.members, resolvedAt: iso(this.o.clock.now()) });
      await this.release(id, []);
      return;
    }
    await this.setPhase(id, "Verifying", { reason: "Undoing", coordinator: this.o.identity, closedAt: iso(this.o.clock.now()) });
    const done = await executeUndo(deps, id, plan.steps);
    if (done.failure) {
      await this.setPhase(id, "RollingBack", { reason: "UndoFailed", message: done.failure });
      return this.rollBack(id);
    }
    await this.setPhase(id, "Committed", {
      reason: "Undone",
      message: `reverted transaction ${tx.spec.undoOf ?? ""}`,
      memberCount: done.locks.length,
      members: done.locks.map((l) => summary(l, "Restored")),
      resolvedAt: iso(this.o.clock.now()),
    });
    await this.release(id, done.locks);
  }

  private async markOpen(id: string, tx: Transaction, members: number): Promise<void> {
    if (tx.status?.phase === "Open" && tx.status.coordinator === this.o.identity && tx.status.memberCount === members) return;
    await this.setPhase(id, "Open", { coordinator: this.o.identity, memberCount: members, openedAt: tx.status?.openedAt ?? iso(this.o.clock.now()) });
  }

  private sinkDelayMs(): number {
    return this.o.timing.auditSinkDelayMs ?? 0;
  }

  private async stepVerify(id: string, known?: Transaction): Promise<void> {
    const now = this.o.clock.now();
    const seen = this.observe(id);
    const [tx, locks, journal] = await Promise.all([known ?? this.o.store.get(id), this.o.locks.locksOf(id), this.o.journal.readAll(id)]);
    if (tx?.status?.failure) {
      await this.setPhase(id, "RollingBack", { reason: "MemberFailed", message: tx.status.failure });
      return this.rollBack(id);
    }
    const reported = this.sinkDelayMs() > 0 ? (tx?.status?.requests ?? {}) : undefined;
    const graceMs = this.o.timing.persistGraceMs + this.sinkDelayMs();
    const live = new Map<string, KubeObject | undefined>();
    const checks = await mapLimit(locks, PARALLEL_MEMBER_WORK, async (lock): Promise<MemberCheck> => {
      const first = seen.firstChecked.get(lock.name) ?? now;
      seen.firstChecked.set(lock.name, first);
      const object = await this.readLive(lock);
      live.set(lock.name, object);
      const entry = journal.get(journalName(id, lock.member.ref));
      const code = reported?.[lock.name];
      // The request's own outcome, where the sink reported it; the live object otherwise (and once the report is overdue).
      const verdict = code !== undefined ? code < 400 : reported && now - first < graceMs ? false : persisted(lock.member, entry, object);
      return { describe: describeRef(lock.member.ref), persisted: verdict, firstCheckedAt: first };
    });
    const decision = decideVerify(checks, now, graceMs);
    if (decision.next === "Verifying") return;
    if (decision.next === "Committed") return this.commit(id, locks, live);
    await this.setPhase(id, "RollingBack", { reason: decision.reason, message: decision.message });
    return this.rollBack(id);
  }

  private async commit(id: string, unordered: LockRecord[], live: ReadonlyMap<string, KubeObject | undefined>): Promise<void> {
    const locks = [...unordered].sort((a, b) => a.member.admittedAt - b.member.admittedAt);
    await this.setPhase(id, "Committed", {
      memberCount: locks.length,
      members: locks.map((l) => ({ ...summary(l, "Committed"), ...committedVersion(live.get(l.name)) })),
      resolvedAt: iso(this.o.clock.now()),
    });
    await this.release(id, locks, this.o.limits().journalRetentionSeconds > 0);
    this.o.metrics.resolved("Committed");
    this.o.logger.info({ transaction: id, members: locks.length }, "transaction committed");
  }

  private async rollBack(id: string): Promise<void> {
    const started = this.o.clock.now();
    // Undo in reverse order of admission: last written, first restored.
    const [unordered, journal] = await Promise.all([this.o.locks.locksOf(id), this.o.journal.readAll(id)]);
    const locks = unordered.sort((a, b) => b.member.admittedAt - a.member.admittedAt);
    const outcomes = await mapLimit(locks, PARALLEL_MEMBER_WORK, async (lock) => {
      const entry = journal.get(journalName(id, lock.member.ref));
      return restoreMember(this.o.client, lock.member, entry).catch((error: unknown): RestoreOutcome => ({
        kind: "impossible", detail: error instanceof Error ? error.message : String(error),
      }));
    });
    // Reported in the order the members were admitted, as on commit.
    const members = locks.map((lock, i) => ({ at: lock.member.admittedAt, summary: restoredSummary(lock, outcomes[i] as RestoreOutcome) }))
      .sort((a, b) => a.at - b.at).map((m) => m.summary);
    const impossible = members.filter((m) => m.outcome === "Failed");
    const tx = await this.o.store.get(id);
    await this.o.events.rolledBack(tx, locks, outcomes);
    if (impossible.length > 0) {
      await this.setPhase(id, "Failed", {
        reason: "RestoreImpossible",
        message: `could not restore ${impossible.map((m) => `${describeRef(m)}: ${m.message ?? ""}`).join("; ")}; locks are kept until an admin resolves it`,
        members, resolvedAt: iso(this.o.clock.now()),
      });
      this.o.metrics.resolved("Failed");
      this.o.logger.error({ transaction: id, impossible: impossible.length }, "transaction failed: restore impossible");
      return;
    }
    const kept = members.filter((m) => m.conflicts?.length || m.outcome === "Conflict");
    await this.setPhase(id, "RolledBack", {
      members, memberCount: locks.length, resolvedAt: iso(this.o.clock.now()),
      ...(kept.length ? { conflicts: kept.map((m) => `${describeRef(m)}: ${m.conflicts?.join(", ") ?? m.message ?? ""}`) } : {}),
    });
    await this.release(id, locks);
    this.o.metrics.resolved("RolledBack");
    this.o.metrics.rolledBack((this.o.clock.now() - started) / 1000, locks.length);
    this.o.logger.info({ transaction: id, members: locks.length, reason: tx?.status?.reason }, "transaction rolled back");
  }

  /** Removes locks, heartbeats and journals that resolved transactions left behind. */
  async collectGarbage(): Promise<number> {
    const [transactions, locks, heartbeats, journals] = await Promise.all([
      this.o.store.list(), this.o.locks.allLocks(), this.o.locks.heartbeats(), this.o.journal.entries(),
    ]);
    const byId = new Map(transactions.map((tx) => [tx.metadata?.name ?? "", tx]));
    const leftovers: Leftover[] = [
      ...locks.map((l) => ({ kind: "lock" as const, name: l.name, transaction: l.member.transaction })),
      ...heartbeats.map((t) => ({ kind: "heartbeat" as const, name: t, transaction: t })),
      ...journals.map((j) => ({ kind: "journal" as const, name: j.name, transaction: j.transaction })),
    ];
    const doomed = garbage(leftovers, byId, this.o.clock.now(), this.o.limits().journalRetentionSeconds);
    const lockByName = new Map(locks.map((l) => [l.name, l]));
    await mapLimit(doomed, PARALLEL_MEMBER_WORK, async (l) => {
      if (l.kind === "journal") return this.o.journal.remove(l.name);
      if (l.kind === "heartbeat") return this.o.locks.deleteHeartbeat(l.transaction);
      const lock = lockByName.get(l.name);
      if (lock) await this.o.locks.release(lock);
    });
    this.o.metrics.locksHeld(locks.length - doomed.filter((l) => l.kind === "lock").length);
    if (doomed.length > 0) this.o.logger.info({ removed: doomed.length }, "removed what resolved transactions left behind");
    return doomed.length;
  }

  /** Frees a resolved transaction's locks; its journal stays for `kubectl tx undo` after a commit, per policy. */
  private async release(id: string, locks: readonly LockRecord[], keepJournal = false): Promise<void> {
    await mapLimit(locks, PARALLEL_MEMBER_WORK, (lock) => this.o.locks.release(lock));
    if (!keepJournal) await this.o.journal.discard(id);
    await this.o.locks.deleteHeartbeat(id);
    this.observed.delete(id);
    this.expiry.forget(heartbeatName(id));
  }

  private readLive(lock: LockRecord): Promise<KubeObject | undefined> {
    return getIfExists(this.o.client, objectPath(lock.member.ref));
  }


  private async setPhase(id: string, phase: Phase, fields: Partial<TransactionStatus>): Promise<void> {
    await this.o.store.updateStatus(id, (tx) => ({ ...tx.status, ...fields, phase }));
    if (TERMINAL_PHASES.has(phase)) await this.o.store.markResolved(id);
  }
}

function summary(lock: LockRecord, outcome: MemberOutcome, message?: string): MemberSummary {
  return { ...lock.member.ref, kind: lock.member.kind, operation: lock.member.operation, outcome, ...(message ? { message } : {}) };
}

/** What `kubectl tx undo` checks later: the object is still exactly as this transaction left it. */
function committedVersion(live: KubeObject | undefined): Partial<MemberSummary> {
  if (!live) return {};
  return { ...(live.metadata?.uid ? { uid: live.metadata.uid } : {}), ...(live.metadata?.resourceVersion ? { resourceVersion: live.metadata.resourceVersion } : {}) };
}

function restoredSummary(lock: LockRecord, outcome: RestoreOutcome): MemberSummary {
  const conflicts = "conflicts" in outcome && outcome.conflicts?.length ? { conflicts: [...outcome.conflicts] } : {};
  if (outcome.kind === "restored") return { ...summary(lock, "Restored", outcome.detail), ...conflicts };
  if (outcome.kind === "unchanged") return { ...summary(lock, conflicts.conflicts ? "Conflict" : "NotPersisted", outcome.detail), ...conflicts };
  if (outcome.kind === "conflict") return summary(lock, "Conflict", outcome.detail);
  return summary(lock, "Failed", outcome.detail);
}

/** A client may ask for less time than the policy allows, never more. */
function timeoutMs(tx: Transaction, maxOpenSeconds: number): number {
  const asked = tx.spec.timeoutSeconds ?? maxOpenSeconds;
  return Math.min(asked, maxOpenSeconds) * 1000;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function pick<T extends object, K extends keyof T>(from: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out;
}
