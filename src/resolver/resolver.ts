/**
 * The controller loop. Every replica runs one; for each open transaction
 * exactly one replica (the holder of its heartbeat Lease, see election.ts)
 * acts: it closes the transaction, verifies that every admitted write
 * persisted, and commits or rolls back.
 *
 * Fencing (DESIGN.md section 3): every change of phase is a compare-and-swap
 * from the phases it expects, made only while this replica still leads the
 * transaction on its own clock; every restore write is guarded by the
 * object as it was read just after checking that the member's lock is
 * still the transaction's. A replica paused past its heartbeat wakes up,
 * finds the phase or the lock moved on, and stops.
 */
import { isDeepStrictEqual } from "node:util";
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { KubeError, getIfExists } from "../kube/index.ts";
import type { Gap } from "../kube/gaps.ts";
import { describeRef } from "../kube/types.ts";
import type { Journal, StoredEntry } from "../journal/journal.ts";
import { journalName } from "../journal/journal.ts";
import type { Closing, LockRecord } from "../locks/record.ts";
import type { ClosingMark, LockStore } from "../locks/store.ts";
import type { SessionStore } from "../locks/sessions.ts";
import { restoreMember } from "../rollback/apply.ts";
import type { RestoreOutcome } from "../rollback/apply.ts";
import { writeConfirmation } from "../rollback/confirm.ts";
import { objectPath } from "../rollback/plan.ts";
import type { Limits } from "../policy/policy.ts";
import type { Clock } from "../telemetry/clock.ts";
import { pause } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { ResolverMetrics } from "../telemetry/metrics.ts";
import type { HeartbeatSeen, MemberCheck } from "../transactions/machine.ts";
import { activitySince, closesQuietly, decideJoinedLate, decideOpen, decideVerify, decideWithdrawn, joinedAsItClosed, mayMove, memberFailedMessage, observeHeartbeat, openLimitMs } from "../transactions/machine.ts";
import type { MemberOperation, MemberOutcome, MemberSummary, Phase, Transaction, TransactionStatus } from "../transactions/model.ts";
import { TERMINAL_PHASES } from "../transactions/model.ts";
import type { TransactionStore } from "../transactions/store.ts";
import { committedDigest, persisted } from "../transactions/verify.ts";
import type { RollbackEvents } from "./events.ts";
import { mapLimit } from "./concurrency.ts";
import { Election } from "./election.ts";
import { GarbageCollector } from "./collector.ts";
import { executeUndo, planUndo } from "./undo.ts";
import type { PrepareDeps } from "./prepare.ts";
import { readMany } from "./read-many.ts";
import { awaitsPrepare, prepareTransaction } from "./prepare.ts";
import type { RetriesSeen } from "./retries.ts";
import { awaitedRetries, judgeRetries } from "./retries.ts";
import type { UnseenWrite } from "./hold.ts";
import { holdsLocks, unseenWrite } from "./hold.ts";

/** Restores and checks run this many at a time: fast for 100 members, gentle on the apiserver. */
const PARALLEL_MEMBER_WORK = 8;
/** From this many prepared members of one kind in one namespace, verification lists them instead of reading each. */
const LIST_FROM = 4;
/** Transactions advanced at once in one resolver pass. */
const PARALLEL_TRANSACTIONS = 8;
/** Leftovers are rare (a replica died mid-cleanup); looking for them every 40 passes (10 s by default) is plenty. */
const GC_EVERY_PASSES = 40;
/** While a rollback holds its locks for writes that may still land, it checks again this often. */
const RECHECK_HELD_ROLLBACK_MS = 1_000;
/**
 * How long a rollback keeps trying restores the apiserver cannot take for
 * now (it restarts; a webhook it calls fails or times out) before it ends
 * Failed, naming them, for an admin.
 */
const TRANSIENT_RESTORE_MS = 60_000;
/** A record's creation time is truncated to the second (so it is never late); this is room for this machine's clock to differ from the apiserver's. */
const TIMESTAMP_SLACK_MS = 1_000;
/** How long kubetx keeps trying to read a member it gets 403 or 503 for, before it gives up verifying. */
const VERIFY_ERROR_GRACE_MS = 10_000;

/** The quiet window as it is counted: the policy's, and how late the apply's last write may still be reported failed. */
export function effectiveQuietMs(quietWindowMs: number, timing: Pick<ResolverTiming, "auditSinkDelayMs" | "intentDelayMs">): number {
  return quietWindowMs + (timing.auditSinkDelayMs ?? 0) + (timing.intentDelayMs ?? 0);
}

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
  /**
   * Without the audit sink: how long after /observe saw a write a replica
   * may take to find that it never reached /validate and fail the
   * requester's transaction (the intent grace plus a sweep period). Quiet
   * windows close this much later, so that failure is not too late. 0 with
   * the sink.
   */
  readonly intentDelayMs?: number;
  /**
   * How long after a rollback a member's write that was admitted but not
   * yet visible may still land (held by a slow webhook after kubetx allowed
   * it): its lock is kept this long, and a write that lands is undone again.
   * With the audit sink the hold ends as soon as every such request's
   * outcome is known.
   */
  readonly lateWriteMs: number;
}

export interface ResolverOptions {
  readonly client: KubeClient;
  readonly store: TransactionStore;
  readonly locks: LockStore;
  readonly sessions: SessionStore;
  readonly journal: Journal;
  readonly events: RollbackEvents;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly identity: string;
  readonly timing: ResolverTiming;
  /** The policy limits in force now: lock TTL, quiet window, open time, retention. */
  readonly limits: () => Limits;
  readonly metrics: ResolverMetrics;
  /** When this process last lost its connection to the apiserver (see ConnectionGaps). */
  readonly gaps?: { readonly latest: Gap | undefined };
  /** What a prepare needs beyond the above (resolver/prepare.ts); without it a record asking for one is marked prepared with nothing locked. */
  readonly prepare?: Pick<PrepareDeps, "discovery" | "access" | "covered" | "lockedTiming">;
}

/** A rollback that restored its members and waits for writes that may still land. */
interface HeldRollback {
  readonly startedAt: number;
  lastPassAt: number;
  /** Locks whose write was neither visible nor reported when the rollback began. */
  readonly unseen: readonly UnseenWrite[];
}

/** What this process has observed of one transaction, on its monotonic clock. */
interface Observed {
  readonly openedAt: number;
  memberCount: number;
  /** Members whose own request the audit sink has reported. */
  reportedCount: number;
  /** When this process first saw each member's lock. */
  readonly firstSeen: Map<string, number>;
  /** The record's lastActivity token as this process last saw it. */
  lastActivity?: string;
  lastChangeAt: number;
  /** Taken over from a coordinator that stopped renewing. */
  takenOver: boolean;
  readonly firstChecked: Map<string, number>;
  held?: HeldRollback;
  /** kubectl tx apply's spec.clientHeartbeat as this process saw it change. */
  clientHeartbeat?: HeartbeatSeen;
  /** When this process first saw each of the record's writes in flight (status.inFlight), by audit ID. */
  readonly requestsSeen: Map<string, number>;
  /** The writes it waits to see retried (retries.ts), as this process saw them. */
  readonly retriesSeen: RetriesSeen;
}

export function validateTiming(t: ResolverTiming): void {
  if (!(t.periodMs > 0)) throw new Error(`resolver period must be positive, got ${t.periodMs} ms`);
  if (!(t.persistGraceMs > 0)) throw new Error(`persist grace must be positive, got ${t.persistGraceMs} ms`);
  if (!(t.lateWriteMs >= 0)) throw new Error(`late-write window must not be negative, got ${t.lateWriteMs} ms`);
}

export { renewEveryMs } from "./election.ts";

export class Resolver {
  private readonly o: ResolverOptions;
  private readonly election: Election;
  private readonly collector: GarbageCollector;
  private readonly observed = new Map<string, Observed>();
  private passes = 0;
  /** The garbage collection running beside the passes, if one is. */
  private collecting: Promise<unknown> | undefined;
  /** Ends the wait between passes early, while the run loop waits. */
  private wakeNow: (() => void) | undefined;
  /** wake() was called since the current pass began. */
  private woken = false;

  constructor(options: ResolverOptions) {
    validateTiming(options.timing);
    this.o = options;
    this.election = new Election({
      lock: options.locks, clock: options.clock, identity: options.identity,
      leaseMs: () => options.limits().lockTtlSeconds * 1000, periodMs: options.timing.periodMs,
    });
    this.collector = new GarbageCollector(options);
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = this.o.clock.monotonic();
      this.woken = false;
      await this.tick().catch((error: unknown) => this.o.logger.warn({ err: error }, "resolver pass failed"));
      const wait = this.woken ? 0 : Math.max(0, this.o.timing.periodMs - (this.o.clock.monotonic() - started));
      await pause(wait, signal, (wake) => (this.wakeNow = wake));
      this.wakeNow = undefined;
    }
    await this.collecting;
  }

  /**
   * Starts the next pass now rather than at the end of the period (a
   * client said its apply finished, and waits for the verdict); one called
   * during a pass starts another right after it. Never more passes than
   * calls plus the period's.
   */
  wake(): void {
    this.woken = true;
    this.wakeNow?.();
  }

  /**
   * One pass over every unresolved transaction. Every GC_EVERY_PASSES
   * passes a garbage collection starts beside it: it lists everything
   * kubetx stores, which takes longer the more records and journals are
   * kept, and must not hold up commits and rollbacks.
   */
  async tick(): Promise<void> {
    this.passes += 1;
    if (this.passes % GC_EVERY_PASSES === 0 && !this.collecting) {
      this.collecting = this.collectGarbage()
        .catch((error: unknown) => this.o.logger.warn({ err: error }, "garbage collection failed"))
        .finally(() => {
          this.collecting = undefined;
        });
    }
    const active = await this.o.store.listActive();
    this.o.metrics.openTransactions(active.length);
    this.retain(new Set(active.map((tx) => tx.metadata?.name ?? "")));
    // Transactions are independent; several at once keep commits prompt under many small ones.
    await mapLimit(active, PARALLEL_TRANSACTIONS, (tx) =>
      this.step(tx).catch((error: unknown) => this.o.logger.warn({ err: error, transaction: tx.metadata?.name }, "resolver step failed")));
  }

  /** Removes what resolved transactions left behind and what retention has expired; returns how many objects went. */
  collectGarbage(): Promise<number> {
    return this.collector.collect();
  }

  /** How many transactions this process remembers: bounded by the open ones. */
  get remembered(): number {
    return this.observed.size;
  }

  private retain(active: ReadonlySet<string>): void {
    for (const id of this.observed.keys()) if (!active.has(id)) this.observed.delete(id);
    this.election.retain(active);
  }

  private async step(listed: Transaction): Promise<void> {
    const id = listed.metadata?.name ?? "";
    // The list came from the cache: act only on the record as it is now.
    const tx = await this.o.store.get(id);
    if (!tx || TERMINAL_PHASES.has(tx.status?.phase ?? "Open")) return;
    const coordination = await this.election.coordinate(id);
    if (coordination === "other") return;
    if (coordination === "taken-over") this.tookOver(id);
    await this.advance(id, tx);
  }

  private tookOver(id: string): void {
    this.o.logger.info({ transaction: id }, "took over transaction from a coordinator that stopped renewing");
    const seen = this.observe(id);
    seen.takenOver = true;
    // A transparent transaction's quiet window starts again: kubectl may still be writing through another replica.
    seen.lastChangeAt = this.o.clock.monotonic();
  }

  private async advance(id: string, tx: Transaction): Promise<void> {
    const phase: Phase = tx.status?.phase ?? "Open";
    if (phase === "Open" && tx.spec.mode === "undo") await this.stepUndo(id, tx);
    else if (phase === "Open") await this.stepOpen(id, tx);
    else if (phase === "Verifying") await this.stepVerify(id, tx);
    else if (phase === "RollingBack") await this.rollBack(id, tx);
  }

  private observe(id: string): Observed {
    let seen = this.observed.get(id);
    if (!seen) {
      const now = this.o.clock.monotonic();
      seen = { openedAt: now, memberCount: 0, reportedCount: 0, firstSeen: new Map(), lastChangeAt: now, takenOver: false, firstChecked: new Map(), requestsSeen: new Map(), retriesSeen: new Map() };
      this.observed.set(id, seen);
    }
    return seen;
  }

  private sinkDelayMs(): number {
    return this.o.timing.auditSinkDelayMs ?? 0;
  }

  /** The quiet window, and how late a failure of the apply's last write may still be reported (by the sink or a replica's /observe). */
  private quietMs(): number {
    return effectiveQuietMs(this.o.limits().quietWindowMs, this.o.timing);
  }

  private async stepOpen(id: string, tx: Transaction): Promise<void> {
    if (awaitsPrepare(tx)) return this.prepare(id, tx);
    const now = this.o.clock.monotonic();
    const seen = this.observe(id);
    // Counting is all this step does with the locks: the cache is good enough, and its revision says which locks it counted.
    const { locks, revision } = await this.o.locks.countLocks(id);
    const retrying = await this.awaitingRetries(id, tx, { seen, locks, now });
    if (retrying === undefined) return;
    const inFlight = this.progress(seen, tx, locks, now) || retrying;
    seen.clientHeartbeat = observeHeartbeat(seen.clientHeartbeat, tx.spec.clientHeartbeat, now);
    const decision = decideOpen({
      mode: tx.spec.mode,
      memberCount: locks.length,
      openedAt: seen.openedAt,
      lastChangeAt: seen.lastChangeAt,
      timeoutMs: openLimitMs(tx.spec, this.o.limits().maxOpenSeconds),
      quietMs: this.quietMs(),
      coordinatorLost: seen.takenOver,
      inFlight,
      ...pick(tx.spec, "expectedMembers", "clientState", "clientMessage"),
      ...(tx.status?.failure ? { failure: tx.status.failure } : {}),
      ...(seen.clientHeartbeat ? { clientHeartbeatAt: seen.clientHeartbeat.changedAt } : {}),
    }, now);
    const namespaces = namespacesOf(locks);
    const closing = await this.closing(id, decision.next === "Open" ? undefined : withBasis(decision, tx, revision));
    if (!closing) return this.markOpen(id, tx, { members: locks.length, namespaces });
    if (closing.next === "Verifying") return this.verifyMarked(id, closing, { namespaces, revision });
    if (await this.transition(id, ["Open"], "RollingBack", { reason: closing.reason, message: closing.message ?? "", closedAt: this.wallTime(), namespaces })) await this.rollBack(id);
  }

  /**
   * Whether a refused write the client retries by itself may still come
   * (retries.ts). Once one has waited too long, records the failure
   * (the next pass rolls back, as for any failure) and answers undefined.
   */
  private async awaitingRetries(id: string, tx: Transaction, at: { seen: Observed; locks: readonly LockRecord[]; now: number }): Promise<boolean | undefined> {
    const retries = judgeRetries(awaitedRetries(tx, new Set(at.locks.map((l) => l.name))), at.seen.retriesSeen, at.now);
    const failure = retries.givenUp;
    if (failure === undefined || tx.status?.failure !== undefined) return retries.waiting;
    if (!this.election.leading(id)) return undefined;
    this.o.logger.info({ transaction: id, reason: failure }, "a refused write was never retried; failing its transaction");
    await this.o.store.updateStatus(id, (record) => (TERMINAL_PHASES.has(record.status?.phase ?? "Open") || record.status?.failure ? undefined : { ...record.status, failure }));
    return undefined;
  }

  /** Carries out a closing mark that says verify; the lock count is the mark's when it has one (a mark another replica wrote). */
  private async verifyMarked(id: string, closing: Closing, at: { namespaces: string[]; revision: string }): Promise<void> {
    const counted = closing.basis?.countedAt ?? at.revision;
    const moved = await this.closeOpen(id, closing, { reason: closing.reason, closedAt: this.wallTime(), namespaces: at.namespaces, ...(counted ? { countedAt: counted } : {}) });
    if (moved?.phase === "Verifying") await this.stepVerify(id, moved.record);
    else if (moved?.phase === "RollingBack") await this.rollBack(id);
  }

  /**
   * Moves an open transaction to Verifying as `closing` decided, by a
   * compare-and-swap on the record read after the closing mark exists. A
   * later write of an object the transaction holds notes activity on the
   * record and then reads the mark; the mark is written first and the
   * record read after it here: of the two, at least one sees the other. So
   * a write the mark did not stop shows as activity since the decision's
   * basis, and the transaction rolls back instead (chaos F23;
   * decideJoinedLate does the same for a new lock, in stepVerify).
   */
  private async closeOpen(id: string, closing: Closing, fields: Partial<TransactionStatus>): Promise<{ phase: Phase; record: Transaction | undefined } | undefined> {
    if (!this.election.leading(id)) return undefined;
    let moved: Phase | undefined;
    const record = await this.o.store.updateStatus(id, (tx) => {
      moved = undefined;
      if (!mayMove(tx.status, ["Open"], "Verifying")) return undefined;
      if (activitySince(tx.status, closing.basis)) {
        const late = joinedAsItClosed("of an object it already held");
        moved = "RollingBack";
        return { ...tx.status, ...fields, phase: "RollingBack", reason: late.reason, message: late.message };
      }
      moved = "Verifying";
      return { ...tx.status, ...fields, phase: "Verifying" };
    });
    if (moved === "RollingBack") this.o.logger.warn({ transaction: id }, "a write joined as the transaction closed for having gone quiet; rolling it back");
    return moved ? { phase: moved, record } : undefined;
  }

  /**
   * How an open transaction closes, if it does now. The closing mark is
   * written first (locks/record.ts closingLease): from then on admission
   * refuses new members, so the transaction must close even if the move
   * below is lost (a conflict, a crash, another replica taking over):
   * once a mark exists, its decision is carried out, unless a failure
   * since says roll back.
   */
  private async closing(id: string, decided: Closing | undefined): Promise<Closing | undefined> {
    if (!decided) {
      const mark = await this.o.locks.closingMark(id);
      return mark === undefined ? undefined : carried(id, mark);
    }
    if (!this.election.leading(id)) return undefined;
    const mark = await this.o.locks.markClosing(id, this.o.identity, decided);
    return decided.next === "RollingBack" ? decided : carried(id, mark);
  }

  /**
   * Notes new members and (with the audit sink) newly completed requests:
   * the quiet window runs from the last of either. Returns whether a
   * member's request is still in flight (not reported, and admitted less
   * than the late-write window ago: an event the apiserver lost must not
   * hold the transaction open for ever).
   */
  private progress(seen: Observed, tx: Transaction, locks: readonly LockRecord[], now: number): boolean {
    const reported = this.sinkDelayMs() > 0 ? tx.status?.requests ?? {} : undefined;
    const reportedCount = reported ? locks.filter((l) => reported[l.name] !== undefined).length : 0;
    this.noteChange(seen, { memberCount: locks.length, reportedCount, lastActivity: tx.status?.lastActivity }, now);
    for (const lock of locks) if (!seen.firstSeen.has(lock.name)) seen.firstSeen.set(lock.name, now);
    if (!reported) return false;
    const requests = this.requestsInFlight(seen, tx, now);
    return requests || locks.some((l) => reported[l.name] === undefined && now - (seen.firstSeen.get(l.name) ?? now) < this.o.timing.lateWriteMs);
  }

  /**
   * A new member, a newly reported request, or lastActivity (another write
   * of an object the transaction already holds, or a refused write) starts
   * the quiet window again.
   */
  private noteChange(seen: Observed, now: { memberCount: number; reportedCount: number; lastActivity: string | undefined }, at: number): void {
    if (now.memberCount === seen.memberCount && now.reportedCount === seen.reportedCount && now.lastActivity === seen.lastActivity) return;
    seen.memberCount = now.memberCount;
    seen.reportedCount = now.reportedCount;
    seen.lastActivity = now.lastActivity;
    seen.lastChangeAt = at;
  }

  /**
   * Whether a write of the requester that the apiserver received is still
   * in flight (status.inFlight, from the audit sink), seen less than the
   * late-write window ago: a lost event must not hold the transaction for
   * ever. A write that appears or finishes restarts the quiet window.
   */
  private requestsInFlight(seen: Observed, tx: Transaction, now: number): boolean {
    const ids = new Set(Object.keys(tx.status?.inFlight ?? {}));
    let changed = false;
    for (const id of ids) {
      if (seen.requestsSeen.has(id)) continue;
      seen.requestsSeen.set(id, now);
      changed = true;
    }
    for (const id of seen.requestsSeen.keys()) {
      if (ids.has(id)) continue;
      seen.requestsSeen.delete(id);
      changed = true;
    }
    if (changed) seen.lastChangeAt = now;
    return [...seen.requestsSeen.values()].some((at) => now - at < this.o.timing.lateWriteMs);
  }

  /**
   * Locks what kubectl tx apply will create (resolver/prepare.ts) and marks
   * the record prepared, by a compare-and-swap from Open with no failure:
   * kubectl tx runs kubectl only then. A prepare that meets another
   * transaction's lock fails the transaction instead; nothing was written,
   * and the next pass rolls it back (releasing what it locked).
   */
  private async prepare(id: string, tx: Transaction): Promise<void> {
    if (!this.election.leading(id)) return;
    const { prepare } = this.o;
    const outcome = prepare
      ? await prepareTransaction({ ...prepare, client: this.o.client, store: this.o.store, locks: this.o.locks, limits: this.o.limits, clock: this.o.clock }, id, tx)
      : { kind: "prepared" as const, locks: [] };
    if (outcome.kind === "refused") {
      await this.o.store.updateStatus(id, (now) => (awaitsPrepare(now) ? { ...now.status, failure: outcome.failure } : undefined));
      this.o.logger.info({ transaction: id, failure: outcome.failure }, "prepare refused");
      return;
    }
    if (!this.election.leading(id)) return;
    await this.o.store.updateStatus(id, (now) => (awaitsPrepare(now) ? { ...now.status, phase: "Open", prepared: this.wallTime(), preparedMembers: outcome.locks.length } : undefined));
    this.o.logger.info({ transaction: id, prepared: outcome.locks.length }, "transaction prepared");
  }

  /** Reverts the committed transaction spec.undoOf names, as this transaction. */
  private async stepUndo(id: string, tx: Transaction): Promise<void> {
    const deps = { client: this.o.client, journal: this.o.journal, locks: this.o.locks, clock: this.o.clock };
    const plan = await planUndo(deps, tx, await this.o.store.get(tx.spec.undoOf ?? ""));
    if (plan.kind === "refused") {
      if (await this.transition(id, ["Open"], "RolledBack", { reason: "UndoRefused", message: plan.message, members: plan.members, resolvedAt: this.wallTime() })) await this.release(id, []);
      return;
    }
    if (!(await this.transition(id, ["Open"], "Verifying", { reason: "Undoing", coordinator: this.o.identity, closedAt: this.wallTime() }))) return;
    const done = await executeUndo(deps, id, plan.steps);
    if (done.failure) {
      if (await this.transition(id, ["Verifying"], "RollingBack", { reason: "UndoFailed", message: done.failure })) await this.rollBack(id);
      return;
    }
    const committed = await this.transition(id, ["Verifying"], "Committed", {
      reason: "Undone",
      message: `reverted transaction ${tx.spec.undoOf ?? ""}`,
      memberCount: done.locks.length,
      members: done.locks.map((l) => summary(l, "Restored")),
      resolvedAt: this.wallTime(),
    });
    if (committed) await this.release(id, done.locks);
  }

  private async markOpen(id: string, tx: Transaction, now: { members: number; namespaces: string[] }): Promise<void> {
    const s = tx.status;
    if (s?.phase === "Open" && s.coordinator === this.o.identity && s.memberCount === now.members && sameList(s.namespaces, now.namespaces)) return;
    await this.transition(id, ["Open"], "Open", {
      coordinator: this.o.identity, memberCount: now.members, namespaces: now.namespaces, openedAt: s?.openedAt ?? this.wallTime(),
    });
  }

  /**
   * `known`: the record as read at or after its move to Verifying. Every
   * lock of a member the transaction may keep was written before that move
   * (a member admitted later was counted before it: countedBeforeClose), so
   * the lists need only be at least as new as the record, and the
   * apiserver's watch cache answers them (kube/lists.ts). A journal entry
   * of a member admitted just after the move may be missing from them, as
   * it could be from a consistent list made a moment earlier: its write is
   * allowed only after the entry, so its check reads the live object
   * (fresh) without the entry, and a write not landed yet waits a pass.
   */
  private async stepVerify(id: string, known?: Transaction): Promise<void> {
    const now = this.o.clock.monotonic();
    const tx = known ?? (await this.o.store.get(id));
    const notOlderThan = { ...(tx?.metadata?.resourceVersion ? { notOlderThan: tx.metadata.resourceVersion } : {}) };
    const [members, journal] = await Promise.all([this.o.locks.membersOf(id, notOlderThan), this.o.journal.readAll(id, notOlderThan)]);
    const cannotCommit = rollBackBeforeChecking(tx, members);
    if (cannotCommit) {
      if (await this.transition(id, ["Verifying"], "RollingBack", { reason: cannotCommit.reason, message: cannotCommit.message })) await this.rollBack(id);
      return;
    }
    const live = new Map<string, KubeObject | undefined>();
    const listed = await this.listPrepared(id, members.locks, journal);
    const checks = await mapLimit(members.locks, PARALLEL_MEMBER_WORK, (lock) => this.check(id, lock, { tx, journal, now, live, listed }));
    const decision = decideVerify(checks, now, { graceMs: this.o.timing.persistGraceMs + this.sinkDelayMs(), errorGraceMs: VERIFY_ERROR_GRACE_MS });
    if (decision.next === "Verifying") return;
    // Asked after the reads: a process paused across an apiserver restart learns of the gap only once it runs again.
    const lost = decision.next === "Committed" ? this.reportsMayBeLost(id, tx) : decision;
    if (!lost) return this.commit(id, members.locks, live);
    if (await this.transition(id, ["Verifying"], "RollingBack", { reason: lost.reason, message: lost.message })) await this.rollBack(id);
  }

  /**
   * With the audit sink, only the sink's report tells that one of a plain
   * apply's writes failed before admission, and the apiserver batches those
   * reports in memory: a connection gap while the transaction was open (an
   * apiserver crash) may have taken one with it. Such a transaction is
   * rolled back rather than committed on a report kubetx cannot vouch for.
   */
  private reportsMayBeLost(id: string, tx: Transaction | undefined): { reason: string; message: string } | undefined {
    const gap = this.o.gaps?.latest;
    if (!gap || this.sinkDelayMs() === 0 || tx?.spec.mode !== "transparent") return undefined;
    const openedAt = this.observed.get(id)?.openedAt;
    const created = Date.parse(tx.metadata?.creationTimestamp ?? "");
    // Either clock may tell: this process's own sighting, or the record's second-precision creation time (NaN: assume the worst).
    const during = (openedAt !== undefined && gap.monotonic >= openedAt) || !(gap.wall < created - TIMESTAMP_SLACK_MS);
    if (!during) return undefined;
    return {
      reason: "ConnectionLost",
      message: "kubetx lost its connection to the apiserver while this apply was open (an apiserver restart?), and the report of a write that failed may have been lost with it; kubetx cannot vouch that the apply completed, so it rolled it back: run the apply again",
    };
  }

  /**
   * The objects of prepared creates admitted from memory (no journal entry:
   * only their metadata is judged, transactions/verify.ts), read several of
   * a kind and namespace by one consistent list. Empty when the list
   * fails: each member is then read on its own, with its own errors.
   */
  private async listPrepared(id: string, locks: readonly LockRecord[], journal: ReadonlyMap<string, StoredEntry>): Promise<ReadonlyMap<string, KubeObject | undefined>> {
    const prepared = locks.filter((l) => l.member.prepared && !journal.has(journalName(id, l.member.ref)));
    const found = await readMany(this.o.client, prepared.map((l) => l.member.ref), { listFrom: LIST_FROM, parallel: PARALLEL_MEMBER_WORK }).catch(() => new Map<string, KubeObject | undefined>());
    return new Map(prepared.filter((l) => found.has(objectPath(l.member.ref))).map((l) => [l.name, found.get(objectPath(l.member.ref))]));
  }

  /**
   * One member's state: the request's own outcome where the audit sink
   * reported it, the live object otherwise (and once the report is overdue).
   */
  private async check(id: string, lock: LockRecord, at: { tx: Transaction | undefined; journal: ReadonlyMap<string, StoredEntry>; now: number; live: Map<string, KubeObject | undefined>; listed: ReadonlyMap<string, KubeObject | undefined> }): Promise<MemberCheck> {
    const seen = this.observe(id);
    const first = seen.firstChecked.get(lock.name) ?? at.now;
    seen.firstChecked.set(lock.name, first);
    const describe = describeRef(lock.member.ref);
    let object: KubeObject | undefined;
    try {
      object = at.listed.has(lock.name) ? at.listed.get(lock.name) : await this.readLive(lock);
    } catch (error) {
      if (!(error instanceof KubeError)) throw error;
      return { describe, state: "error", detail: `${error.status} ${error.reason}`, firstCheckedAt: first };
    }
    at.live.set(lock.name, object);
    return { describe, state: this.verdict(id, lock, { ...at, first, object }), firstCheckedAt: first };
  }

  private verdict(id: string, lock: LockRecord, at: { tx: Transaction | undefined; journal: ReadonlyMap<string, StoredEntry>; now: number; first: number; object: KubeObject | undefined }): "persisted" | "missing" {
    const sink = this.sinkDelayMs() > 0;
    const code = sink ? reportedCode(at.tx, lock.name) : undefined;
    if (code !== undefined) return code < 400 ? "persisted" : "missing";
    if (sink && at.now - at.first < this.o.timing.persistGraceMs + this.sinkDelayMs()) return "missing";
    return persisted(lock.member, at.journal.get(journalName(id, lock.member.ref)), at.object) ? "persisted" : "missing";
  }

  private async commit(id: string, unordered: LockRecord[], live: ReadonlyMap<string, KubeObject | undefined>): Promise<void> {
    const locks = [...unordered].sort((a, b) => a.member.admittedAt - b.member.admittedAt);
    const committed = await this.transition(id, ["Verifying"], "Committed", {
      memberCount: locks.length,
      members: locks.map((l) => ({ ...summary(l, "Committed"), ...committedVersion(l.member.operation, live.get(l.name)) })),
      resolvedAt: this.wallTime(),
    });
    if (!committed) return;
    await this.release(id, locks, this.o.limits().journalRetentionSeconds > 0);
    this.o.metrics.resolved("Committed");
    this.o.logger.info({ transaction: id, members: locks.length }, "transaction committed");
  }

  /**
   * Restores every member (last written, first restored), then holds the
   * locks while a write kubetx admitted but has not seen land could still
   * land, undoing it again if it does; then RolledBack and release.
   */
  private async rollBack(id: string, known?: Transaction): Promise<void> {
    const seen = this.observe(id);
    const now = this.o.clock.monotonic();
    if (seen.held && now - seen.held.lastPassAt < RECHECK_HELD_ROLLBACK_MS) return;
    const [tx, members, journal] = await Promise.all([known ?? this.o.store.get(id), this.o.locks.membersOf(id), this.o.journal.readAll(id)]);
    if (!tx || tx.status?.phase !== "RollingBack") return;
    const locks = members.locks.sort((a, b) => b.member.admittedAt - a.member.admittedAt);
    if (tx.status.lastActivity !== seen.lastActivity) {
      seen.lastActivity = tx.status.lastActivity;
      seen.lastChangeAt = now;
    }
    seen.held ??= { startedAt: now, lastPassAt: now, unseen: await this.unseen(id, tx, locks, journal) };
    seen.held.lastPassAt = now;
    const outcomes = await mapLimit(locks, PARALLEL_MEMBER_WORK, (lock) => this.restore(id, lock, journal, tx));
    if (outcomes.some((o) => o.kind === "fenced")) {
      this.o.logger.warn({ transaction: id }, "stopped rolling back: another replica leads the transaction now");
      return;
    }
    await this.afterRestore(id, tx, { locks, outcomes, garbled: members.garbled, held: seen.held, now });
  }

  /**
   * Failed if something could not be restored; tried again on a later pass
   * while the apiserver cannot take a restore for now (for at most
   * TRANSIENT_RESTORE_MS); otherwise held while writes may land, then
   * RolledBack.
   */
  private async afterRestore(id: string, tx: Transaction, at: { locks: LockRecord[]; outcomes: RestoreOutcome[]; garbled: string[]; held: HeldRollback; now: number }): Promise<void> {
    const { locks } = at;
    const givenUp = at.now - at.held.startedAt >= TRANSIENT_RESTORE_MS;
    const outcomes = givenUp ? at.outcomes.map((o): RestoreOutcome => (o.kind === "retry" ? { kind: "impossible", detail: o.detail } : o)) : at.outcomes;
    // An Event for each object a pass touched, as it touches it: a later pass finds nothing left to do.
    await this.o.events.rolledBack(tx, locks, outcomes);
    const members = withoutUnused(mergeSummaries(tx.status?.members, locks.map((lock, i) => restoredSummary(lock, outcomes[i] as RestoreOutcome))), locks, outcomes);
    if (at.garbled.length > 0 || members.some((m) => m.outcome === "Failed")) return this.fail(id, tx, { locks, outcomes, members, garbled: at.garbled });
    if (outcomes.some((o) => o.kind === "retry")) return this.retryLater(id, tx, members);
    if (this.holding(tx, at.held, at.now) || this.stillRefusing(id, tx, at.now)) {
      // Progress for readers: the record shows what was restored while the locks are held.
      if (!tx.status?.members) await this.transition(id, ["RollingBack"], "RollingBack", { members });
      return;
    }
    await this.finishRollback(id, tx, { locks, outcomes, members });
  }

  /** Some restores wait for the apiserver: the next pass tries them again; the record shows what is restored and what waits. */
  private async retryLater(id: string, tx: Transaction, members: MemberSummary[]): Promise<void> {
    const pending = members.filter((m) => m.outcome === "Pending");
    this.o.logger.warn({ transaction: id, pending: pending.map((m) => describeRef(m)), detail: pending[0]?.message }, "the apiserver could not take every restore yet; trying again");
    // Written when it changed, not every pass.
    if (!isDeepStrictEqual(tx.status?.members, members)) await this.transition(id, ["RollingBack"], "RollingBack", { members });
  }

  /** Locks whose write was neither visible nor reported when the rollback began: they may still land. */
  private async unseen(id: string, tx: Transaction, locks: readonly LockRecord[], journal: ReadonlyMap<string, StoredEntry>): Promise<UnseenWrite[]> {
    const reported = tx.status?.requests ?? {};
    const unseen = await mapLimit(locks, PARALLEL_MEMBER_WORK, async (lock) => {
      if (reported[lock.name] !== undefined) return undefined;
      const live = await this.readLive(lock).catch(() => undefined);
      return persisted(lock.member, journal.get(journalName(id, lock.member.ref)), live) ? undefined : unseenWrite(lock.name, lock.member);
    });
    return unseen.filter((w): w is UnseenWrite => w !== undefined);
  }

  /**
   * A failed transparent transaction keeps the requester's session (and so
   * refuses the rest of their apply) until a quiet window has passed since
   * their last write into it, refused ones included: otherwise the apply's
   * next write would start a new transaction and commit on its own.
   */
  private stillRefusing(id: string, tx: Transaction, now: number): boolean {
    if (tx.spec.mode !== "transparent") return false;
    const seen = this.observe(id);
    // A write refused while the rollback ran is noted in lastActivity: it starts the window again (chaos F16).
    this.noteChange(seen, { memberCount: seen.memberCount, reportedCount: seen.reportedCount, lastActivity: tx.status?.lastActivity }, now);
    const requests = this.sinkDelayMs() > 0 && this.requestsInFlight(seen, tx, now);
    return requests || now - seen.lastChangeAt < this.quietMs();
  }

  /** Whether to keep holding the locks: some write may still land (hold.ts). */
  private holding(tx: Transaction, held: HeldRollback, now: number): boolean {
    return holdsLocks({
      prepared: Boolean(tx.status?.prepared),
      clientSettled: tx.spec.clientSettled === true,
      elapsedMs: now - held.startedAt,
      lateWriteMs: this.o.timing.lateWriteMs,
      sink: this.sinkDelayMs() > 0,
      unseen: held.unseen,
      reported: tx.status?.requests ?? {},
    });
  }

  /**
   * Restores one member. What it writes back must be confirmed as a write
   * the apiserver made (rollback/confirm.ts: the object at the lock's
   * revision, else the request's code from the audit sink), so a review
   * that never came from the apiserver cannot make kubetx write its
   * invented pre-image; an unconfirmed member ends the transaction Failed.
   */
  private async restore(id: string, lock: LockRecord, journal: ReadonlyMap<string, StoredEntry>, tx: Transaction): Promise<RestoreOutcome> {
    const code = reportedCode(tx, lock.name);
    // With the sink, a member whose every reported request was refused wrote nothing (see reportedCode).
    if (this.sinkDelayMs() > 0 && code !== undefined && code >= 400 && code < 500) {
      return { kind: "unchanged", detail: `its write never persisted (the apiserver answered ${code}); nothing to restore` };
    }
    const fence = async (): Promise<string | undefined> => {
      if (!this.election.leading(id)) return "this replica no longer leads the transaction";
      return (await this.o.locks.stillHeld(lock)) ? undefined : `the lock ${lock.name} is no longer the transaction's`;
    };
    const entry = journal.get(journalName(id, lock.member.ref));
    const confirm = writeConfirmation(this.o.client, lock, entry, code);
    return restoreMember(this.o.client, lock.member, entry, { fence, confirm }).catch((error: unknown): RestoreOutcome => ({
      kind: "impossible", detail: error instanceof Error ? error.message : String(error),
    }));
  }

  private async finishRollback(id: string, tx: Transaction, done: { locks: LockRecord[]; outcomes: RestoreOutcome[]; members: MemberSummary[] }): Promise<void> {
    const kept = done.members.filter((m) => m.conflicts?.length || m.outcome === "Conflict");
    const rolledBack = await this.transition(id, ["RollingBack"], "RolledBack", {
      members: done.members, memberCount: done.members.length, resolvedAt: this.wallTime(),
      ...(kept.length ? { conflicts: kept.map((m) => `${describeRef(m)}: ${m.conflicts?.join(", ") ?? m.message ?? ""}`) } : {}),
    });
    if (!rolledBack) return;
    const startedAt = this.observed.get(id)?.held?.startedAt;
    await this.release(id, done.locks);
    this.o.metrics.resolved("RolledBack");
    if (startedAt !== undefined) this.o.metrics.rolledBack((this.o.clock.monotonic() - startedAt) / 1000, done.locks.length);
    this.o.logger.info({ transaction: id, members: done.locks.length, reason: tx.status?.reason }, "transaction rolled back");
  }

  private async fail(id: string, tx: Transaction, done: { locks: LockRecord[]; outcomes: RestoreOutcome[]; members: MemberSummary[]; garbled: string[] }): Promise<void> {
    const problems = [
      ...done.members.filter((m) => m.outcome === "Failed").map((m) => `${describeRef(m)}: ${m.message ?? ""}`),
      ...done.garbled.map((name) => `lock ${name}: its Lease cannot be read`),
    ];
    const failed = await this.transition(id, ["RollingBack"], "Failed", {
      reason: "RestoreImpossible",
      message: `could not restore ${problems.join("; ")}; locks are kept until an admin resolves it (fix the objects, then delete the Transaction record)`,
      members: done.members, resolvedAt: this.wallTime(),
    });
    if (!failed) return;
    this.o.metrics.resolved("Failed");
    this.o.logger.error({ transaction: id, impossible: problems.length }, "transaction failed: restore impossible");
  }

  /** Frees a resolved transaction's locks; its journal stays for `kubectl tx undo` after a commit, per policy. */
  private async release(id: string, locks: readonly LockRecord[], keepJournal = false): Promise<void> {
    await mapLimit(locks, PARALLEL_MEMBER_WORK, (lock) => this.o.locks.release(lock));
    if (!keepJournal) await this.o.journal.discard(id);
    await this.o.locks.deleteHeartbeat(id);
    this.observed.delete(id);
    this.election.forget(id);
  }

  private readLive(lock: LockRecord): Promise<KubeObject | undefined> {
    return getIfExists(this.o.client, objectPath(lock.member.ref));
  }

  /**
   * A compare-and-swap of the phase: written only while this replica leads
   * the transaction, and only if the record is still in one of `from`.
   * False when another replica (or admission) moved it first: the caller stops.
   */
  private async transition(id: string, from: readonly Phase[], to: Phase, fields: Partial<TransactionStatus>): Promise<boolean> {
    if (!this.election.leading(id)) return false;
    let moved = false;
    await this.o.store.updateStatus(id, (tx) => {
      // Not Committed over a failure noted since the caller read the record: the next pass rolls it back instead.
      moved = mayMove(tx.status, from, to);
      return moved ? { ...tx.status, ...fields, phase: to } : undefined;
    });
    if (moved && TERMINAL_PHASES.has(to)) await this.o.store.markResolved(id);
    return moved;
  }

  private wallTime(): string {
    return iso(this.o.clock.now());
  }
}

/**
 * A decision to close, with what a close for quiet was decided on (the
 * record's activity token, the counted lock revision) for the mark to
 * carry: whoever moves the record checks it against them (closeOpen).
 */
function withBasis(decision: Closing, tx: Transaction, revision: string): Closing {
  if (decision.next !== "Verifying" || !closesQuietly(decision.reason) || !revision) return decision;
  return { ...decision, basis: { lastActivity: tx.status?.lastActivity ?? "", countedAt: revision } };
}

/** The decision a closing mark holds; a garbled mark rolls the transaction back, since nobody can say how it was closing. */
function carried(id: string, mark: ClosingMark): Closing {
  if (mark !== "unreadable") return mark;
  return { next: "RollingBack", reason: "LockUnreadable", message: `its closing mark (Lease cl-${id} in kubetx's namespace) cannot be read, so kubetx cannot tell how it was closing` };
}

function summary(lock: LockRecord, outcome: MemberOutcome, message?: string): MemberSummary {
  return { ...lock.member.ref, kind: lock.member.kind, operation: lock.member.operation, outcome, ...(message ? { message } : {}) };
}

/** What `kubectl tx undo` checks later: the object is still exactly as this transaction left it. */
function committedVersion(operation: MemberOperation, live: KubeObject | undefined): Partial<MemberSummary> {
  if (!live) return {};
  const generation = live.metadata?.generation;
  const kept = typeof generation === "number" && generation > 0;
  return {
    ...(live.metadata?.uid ? { uid: live.metadata.uid } : {}),
    ...(live.metadata?.resourceVersion ? { resourceVersion: live.metadata.resourceVersion } : {}),
    ...(kept ? { generation } : {}),
    ...(!kept && operation === "CREATE" ? { digest: committedDigest(live) } : {}),
  };
}

/**
 * What the audit sink reported of a member's requests, as one status code:
 * any success counts (`persisted`, which a later 404 of the same member
 * never clears), else the last outcome. A 4xx proves nothing was written,
 * so its journalled pre-image (the object as the request read it, maybe
 * older than the object now: a delete that found it already gone) is not
 * put back; a 5xx may come after the write landed (a timeout, etcd's
 * ambiguous answer). Undefined when nothing was reported yet.
 */
function reportedCode(tx: Transaction | undefined, lock: string): number | undefined {
  return tx?.status?.persisted?.[lock] ? SUCCESS : tx?.status?.requests?.[lock];
}

/** The code reportedCode gives a member with any successful request. */
const SUCCESS = 200;

function restoredSummary(lock: LockRecord, outcome: RestoreOutcome): MemberSummary {
  const conflicts = "conflicts" in outcome && outcome.conflicts?.length ? { conflicts: [...outcome.conflicts] } : {};
  if (outcome.kind === "restored") return { ...summary(lock, "Restored", outcome.detail), ...conflicts };
  if (outcome.kind === "unchanged") return { ...summary(lock, conflicts.conflicts ? "Conflict" : "NotPersisted", outcome.detail), ...conflicts };
  if (outcome.kind === "conflict") return summary(lock, "Conflict", outcome.detail);
  if (outcome.kind === "retry") return summary(lock, "Pending", outcome.detail);
  return summary(lock, "Failed", outcome.detail);
}

/**
 * A later pass finds members already restored ("unchanged"): what an
 * earlier pass did is what the record keeps. Reported in admission order.
 */
function mergeSummaries(earlier: readonly MemberSummary[] | undefined, now: readonly MemberSummary[]): MemberSummary[] {
  const key = (m: MemberSummary): string => `${m.group}/${m.resource}/${m.namespace ?? ""}/${m.name}`;
  const before = new Map((earlier ?? []).map((m) => [key(m), m]));
  const merged = now.map((m) => {
    const old = before.get(key(m));
    return old && (m.outcome === "NotPersisted" || m.outcome === "Unchanged") && old.outcome !== "NotPersisted" ? old : m;
  });
  return merged.reverse();
}

/**
 * The summaries without the prepared creates that were never written
 * (resolver/prepare.ts locked them; kubectl never created them, or the
 * apiserver refused the create before admission): a lock is no member
 * until a write of it is, and the record lists writes. One restored on an
 * earlier pass stays (mergeSummaries kept its Restored).
 */
function withoutUnused(members: MemberSummary[], locks: readonly LockRecord[], outcomes: readonly RestoreOutcome[]): MemberSummary[] {
  const key = (m: { group: string; resource: string; namespace?: string; name: string }): string => `${m.group}/${m.resource}/${m.namespace ?? ""}/${m.name}`;
  const unused = new Set(locks.filter((l, i) => l.member.prepared && outcomes[i]?.kind === "unchanged").map((l) => key(l.member.ref)));
  return members.filter((m) => !(m.outcome === "NotPersisted" && unused.has(key(m))));
}

/** The members' namespaces, for `kubectl tx list -n` before the record lists its members. */
function namespacesOf(locks: readonly LockRecord[]): string[] {
  return [...new Set(locks.flatMap((l) => (l.member.ref.namespace ? [l.member.ref.namespace] : [])))].sort();
}

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return (a ?? []).length === b.length && b.every((x, i) => a?.[i] === x);
}

/** RFC 3339 with milliseconds: a failure reported late is told apart from the resolution by less than a second. */
function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function pick<T extends object, K extends keyof T>(from: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out;
}

/**
 * Why a Verifying transaction rolls back before its members are read: a
 * member failed, a lock cannot be read, or a member it counted withdrew.
 */
/**
 * Closed while a write refused before kubetx was still to be retried (a
 * replica that took over, a report that came late): the apply is not all
 * here. A member's own refused request is left to verification, which
 * waits for its retry's report as for any member's.
 */
function neverRetried(tx: Transaction | undefined, locks: readonly LockRecord[]): { reason: string; message: string } | undefined {
  if (!tx) return undefined;
  const [write] = [...awaitedRetries(tx, new Set(locks.map((l) => l.name))).values()].filter((w) => !w.admitted);
  return write ? { reason: "MemberFailed", message: `${write.reason}; no retry of it joined the transaction before it closed` } : undefined;
}

function rollBackBeforeChecking(tx: Transaction | undefined, members: { locks: readonly LockRecord[]; garbled: readonly string[] }): { reason: string; message: string } | undefined {
  if (tx?.status?.failure) return { reason: "MemberFailed", message: memberFailedMessage(members.locks.length) };
  const unretried = neverRetried(tx, members.locks);
  if (unretried) return unretried;
  if (members.garbled.length > 0) {
    return { reason: "LockUnreadable", message: `the lock Leases ${members.garbled.join(", ")} cannot be read, so their members can be neither verified nor restored` };
  }
  const withdrawn = decideWithdrawn({ reason: tx?.status?.reason, expectedMembers: tx?.spec.expectedMembers, lockCount: members.locks.length });
  if (withdrawn) return withdrawn;
  const late = members.locks.map((l) => ({ resourceVersion: l.resourceVersion, describe: describeRef(l.member.ref) }));
  return decideJoinedLate({ ...pick(tx?.status ?? {}, "reason", "countedAt"), locks: late });
}
