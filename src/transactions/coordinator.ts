/**
 * Admission of one write into a transaction: lock, journal, allow. No HTTP
 * here; the admission layer turns a WriteIntent into a response.
 */
import type { KubeObject, ObjectRef } from "../kube/types.ts";
import { describeRef } from "../kube/types.ts";
import { Conflict } from "../kube/errors.ts";
import { revisionAtMost } from "../kube/revision.ts";
import type { Journal } from "../journal/journal.ts";
import type { LockRecord, Member } from "../locks/record.ts";
import { lockName } from "../locks/record.ts";
import type { ClosingMark, LockStore } from "../locks/store.ts";
import type { Limits } from "../policy/policy.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { AdmissionMetrics } from "../telemetry/metrics.ts";
import type { MemberOperation, Mode, Transaction } from "./model.ts";
import { ANNOTATION_TRANSACTION, TERMINAL_PHASES, transactionIdProblem } from "./model.ts";
import { closesQuietly } from "./machine.ts";
import type { TransactionStore } from "./store.ts";
import { firstEntry } from "../rollback/plan.ts";
import type { AccessChecks } from "./access.ts";
import { intentDigest } from "./verify.ts";
import type { LockedTiming } from "./locked.ts";
import { lockedMessage } from "./locked.ts";
import { userLimitRefusal } from "./user-limits.ts";

/** Whether a transaction still holds its locks: until it resolves, and a Failed one until an admin resolves it. */
export function keepsLocks(holder: Transaction): boolean {
  const phase = holder.status?.phase ?? "Open";
  return !TERMINAL_PHASES.has(phase) || phase === "Failed";
}

/** Transactions whose members this process counts; the oldest are forgotten first. */
const MAX_TRACKED_TRANSACTIONS = 10_000;

export interface Requester {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
}

/** One write, as the admission layer understood it. */
export interface WriteIntent {
  readonly requestUid: string;
  readonly operation: MemberOperation;
  readonly ref: ObjectRef;
  readonly kind: string;
  readonly requester: Requester;
  readonly object?: KubeObject;
  readonly oldObject?: KubeObject;
  readonly dryRun: boolean;
  readonly transaction: string;
  readonly mode: Mode;
  readonly expectedMembers?: number;
  /** The transaction's record, when the caller read it a moment ago (transparent grouping does). */
  readonly record?: Transaction;
}

export type AdmitResult =
  | { readonly kind: "member"; readonly transaction: string; readonly lock: string; readonly members: number; readonly firstWrite: boolean; readonly mode: Mode }
  /** transaction: "" when the dry run's transaction does not exist (it would have started one). */
  | { readonly kind: "dry-run"; readonly transaction: string; readonly lock: string }
  | { readonly kind: "denied"; readonly transaction: string; readonly message: string; readonly lock?: string }
  /** The transaction closed while this write was being admitted: nothing was kept; a transparent write starts a new one. */
  | { readonly kind: "closed"; readonly transaction: string; readonly message: string };

export interface CoordinatorOptions {
  readonly store: TransactionStore;
  readonly locks: LockStore;
  readonly journal: Journal;
  readonly clock: Clock;
  /** This replica's identity, written into heartbeats it creates. */
  readonly identity: string;
  /** The policy limits in force now (they change when an admin edits a policy). */
  readonly limits: () => Limits;
  /** The quiet window as the resolver counts it (resolver.ts effectiveQuietMs), which lock denials quote. */
  readonly quietMs: () => number;
  readonly metrics: AdmissionMetrics;
  readonly access: AccessChecks;
  /** Whether the Lease cache is fresh enough to admit a prepared create from (locks/pulse.ts); without it every write takes the usual path. */
  readonly pulse?: { fresh(): boolean };
}

export class Coordinator {
  private readonly options: CoordinatorOptions;
  /** Transactions whose heartbeat this process knows exists: saves a 409 round trip per member. */
  private readonly heartbeats = new Set<string>();
  /** Lock names this process admitted, per transaction: exact member counts for one replica. */
  private readonly admitted = new Map<string, Set<string>>();

  constructor(options: CoordinatorOptions) {
    this.options = options;
  }

  /** `signal` aborts when the apiserver has stopped waiting: no lock or journal is written after that. */
  async admit(intent: WriteIntent, signal?: AbortSignal): Promise<AdmitResult> {
    const problem = transactionIdProblem(intent.transaction);
    if (problem) return deny(intent, `${problem}; fix the kubetx.io/transaction annotation`);
    // A dry run is judged without writing; a prepared create is admitted from memory.
    const early = intent.dryRun ? await this.judgeDryRun(intent) : this.admitPrepared(intent);
    if (early) return early;
    // Independent reads in parallel: each is a round trip to the apiserver on the user's request path.
    const [found, members] = await Promise.all([
      intent.record ?? this.options.store.lookup(intent.transaction),
      this.options.locks.locksOf(intent.transaction, { cached: true }),
    ]);
    const tx = found ?? (await this.options.store.getOrCreate(intent.transaction, {
      user: intent.requester.username,
      mode: intent.mode,
      ...(intent.expectedMembers !== undefined ? { expectedMembers: intent.expectedMembers } : {}),
    }));
    const refusal = await this.refusal(tx, intent);
    if (refusal) return deny(intent, refusal);
    if (signal?.aborted) return deny(intent, ABORTED);
    // Beside the lock, not before it: a heartbeat this write fails to create, the resolver's election creates.
    const heartbeat = this.ensureHeartbeat(intent.transaction).catch(() => undefined);
    const result = await this.lockAndJournal(intent, members, signal);
    await heartbeat;
    return result.kind === "member" ? { ...result, mode: tx.spec.mode } : result;
  }

  /**
   * A create that kubetx prepared (resolver/prepare.ts), admitted from the
   * watch caches with no apiserver call: its lock is the transaction's,
   * taken by the prepare for this object's create, the record is prepared
   * and open, and no closing mark is in the Lease cache, which the pulse
   * says is fresh (everything written up to PREPARED_FRESHNESS_MS ago is
   * in it). So a close this misses began less than that long ago, and the
   * rollback holds the transaction's locks until such a write has landed
   * (resolver/hold.ts). Everything is read in one turn of the event
   * loop. Anything else (a stale cache, an update, a write outside the
   * prepared list) takes the usual path.
   */
  private admitPrepared(intent: WriteIntent): AdmitResult | undefined {
    const { pulse, store, locks } = this.options;
    if (!pulse || !namesItsCreate(intent)) return undefined;
    const tx = store.cached(intent.transaction);
    const seen = locks.cachedLockAndMark(intent.ref, intent.transaction);
    if (!tx || !seen || seen.marked || !seen.lock || !preparedCreate(tx, seen.lock, intent)) return undefined;
    if (!pulse.fresh()) return undefined;
    this.options.metrics.preparedAdmission();
    return { kind: "member", transaction: intent.transaction, lock: seen.lock.name, members: tx.status?.preparedMembers ?? 1, firstWrite: true, mode: tx.spec.mode };
  }

  /** Why the write may not join `tx`, if anything stops it. */
  private async refusal(tx: Transaction, intent: WriteIntent): Promise<string | undefined> {
    return (await this.refuseIntoClosed(tx, intent)) ?? this.refuseIrreversible(intent) ?? (await this.refuseCreateOverExisting(intent));
  }

  /**
   * Why the write may not join `tx`, if it may not. The rest of a failing
   * transparent apply is refused, and each refusal is noted on the record,
   * so the transaction (and the session) stays until the apply has gone
   * quiet instead of letting the next write start afresh.
   */
  private async refuseIntoClosed(tx: Transaction, intent: WriteIntent): Promise<string | undefined> {
    const refusal = refuseJoin(tx, intent);
    if (refusal && tx.spec.mode === "transparent") await this.options.store.noteActivity(intent.transaction, intent.requestUid, new Date(this.options.clock.now()).toISOString());
    return refusal;
  }

  /**
   * A create reaches admission before storage finds that the object exists:
   * it may lock an existing object only for a requester who may update it.
   */
  private async refuseCreateOverExisting(intent: WriteIntent): Promise<string | undefined> {
    if (intent.operation !== "CREATE") return undefined;
    const { access } = this.options;
    if ((await access.mayUpdate(intent.requester, intent.ref)) || !(await access.exists(intent.ref))) return undefined;
    return `${describeRef(intent.ref)} already exists and you may not update it, so your create cannot lock it`;
  }

  /** A delete that waits on finalizers cannot be undone; refuse it inside a transaction unless policy allows. */
  private refuseIrreversible(intent: WriteIntent): string | undefined {
    const finalizers = intent.oldObject?.metadata?.finalizers ?? [];
    if (intent.operation !== "DELETE" || finalizers.length === 0 || this.options.limits().allowIrreversibleDeletes) return undefined;
    return `deleting ${describeRef(intent.ref)} cannot be undone: it has finalizers (${finalizers.join(", ")}), so kubetx could not restore it if transaction ${intent.transaction} failed. ` +
      `Delete it outside a transaction: first 'kubectl annotate ${intent.ref.resource} ${intent.ref.name} ${ANNOTATION_TRANSACTION}=none' (in namespace ${intent.ref.namespace ?? "-"}), then delete it; or ask an admin to allow irreversible deletes in the TransactionPolicy`;
  }

  private async lockAndJournal(intent: WriteIntent, members: readonly LockRecord[], signal?: AbortSignal): Promise<AdmitResult> {
    const member = this.memberOf(intent);
    const tooMany = (await this.refuseOversized(intent, members)) ?? (await this.refuseOverUserLimits(intent, members));
    if (tooMany) return tooMany;
    const result = await this.options.locks.acquire(member);
    if (result.kind === "held") {
      const taken = await this.takeOverIfFree(intent, result.lock, member);
      if (taken.kind !== "lock") return taken.result;
      return this.journalFirstWrite(intent, taken.lock, members, signal);
    }
    if (result.kind === "acquired") return this.journalFirstWrite(intent, result.lock, members, signal);
    const foreign = createdBySomeoneElse(intent, result.lock);
    if (foreign) return deny(intent, foreign);
    const closed = await this.closedBeforeLaterWrite(intent, result.lock);
    if (closed) return closed;
    if (signal?.aborted) return deny(intent, ABORTED);
    await this.journalLaterWrite(intent, result.lock);
    return this.joined(intent, result.lock, members);
  }

  /**
   * A lock held by another transaction is taken over only once that one is
   * Committed or RolledBack; a Failed one keeps its locks until an admin
   * resolves it (its record says so).
   */
  private async takeOverIfFree(intent: WriteIntent, held: LockRecord, member: Member): Promise<{ kind: "lock"; lock: LockRecord } | { kind: "refused"; result: AdmitResult }> {
    const holder = await this.options.store.get(held.member.transaction);
    if (holder && keepsLocks(holder)) return { kind: "refused", result: await this.conflict(intent, held, holder) };
    try {
      return { kind: "lock", lock: await this.options.locks.takeOver(held, member) };
    } catch (error) {
      if (!(error instanceof Conflict)) throw error;
      return { kind: "refused", result: deny(intent, `${describeRef(intent.ref)} was locked by another transaction at the same moment; retry in a few seconds`) };
    }
  }

  /**
   * After taking a new lock: the transaction must still be open (the
   * resolver may have closed it since it was read: then the lock goes
   * again), and the object before and after this write is stored before
   * the write is allowed; the two are independent, so they run together.
   * A create needs no journal: its uid is in the lock. A journal entry
   * left by a write refused here is never read (the rollback goes by
   * locks) and goes with the transaction's other leftovers.
   */
  private async journalFirstWrite(intent: WriteIntent, lock: LockRecord, members: readonly LockRecord[], signal?: AbortSignal): Promise<AdmitResult> {
    const journalled = intent.operation === "CREATE" ? undefined : this.options.journal.record(intent.transaction, intent.ref, firstEntry(intent.operation, intent.oldObject, intent.object));
    // Awaited below on every path; this only keeps a failure from being reported as unhandled meanwhile.
    journalled?.catch(() => undefined);
    const closed = await this.closedMeanwhile(intent, lock);
    if (closed || signal?.aborted) {
      await journalled?.catch(() => undefined);
      await this.options.locks.release(lock);
      return closed ?? deny(intent, ABORTED);
    }
    await journalled;
    return this.joined(intent, lock, members);
  }

  /**
   * Whether the transaction closed while this write was admitted. For a
   * lock this write just took, the Lease cache answers (LockStore.closedBefore):
   * once it holds the lock, it holds any closing mark the resolver wrote
   * before it. A mark older than the lock refuses the write. With none,
   * any close came after the lock, so the resolver's lists, made after its
   * close, hold it: the write may go on (a close by the quiet window
   * decided before the lock then rolls back: decideJoinedLate), unless its transaction was
   * resolved long enough ago to have lost its mark (gc.ts
   * CLOSING_MARK_KEEP_MS), which the record rules out, from the cache of
   * unresolved records when that holds it (no call).
   *
   * Without that answer (no cache, a watch that broke) the record is read
   * after the lock was written, so it is linearized with the resolver's
   * close (which moves the phase first and lists the locks after): a lock
   * the resolver's list missed always finds the phase moved, and one it
   * counted before it moved the phase may go on (F22).
   */
  private async closedMeanwhile(intent: WriteIntent, lock: LockRecord): Promise<AdmitResult | undefined> {
    const marked = await this.options.locks.closedBefore(lock);
    if (marked !== undefined) return this.closedByMark(intent, marked);
    const now = await this.options.store.get(intent.transaction);
    if (!now) return closedAnswer(intent, "it is gone");
    const phase = now.status?.phase ?? "Open";
    if ((phase === "Open" && !now.status?.failure) || countedBeforeClose(now, lock)) return undefined;
    return closedAnswer(intent, closedWhy(now));
  }

  /**
   * Whether a later write of an object the transaction holds comes too
   * late. Its activity is noted first (a write, so ordered), and then the
   * record it returned and the closing mark, read afresh, are looked at;
   * the resolver writes the mark first and reads the record after it as it
   * moves the phase (resolver.ts closeOpen): of a write and a close that
   * race, at least one sees the other. A transaction closing because it
   * went quiet takes no later write once marked (the write may be the next
   * apply's: chaos F23); one closing because all its members are there
   * still takes a retried call of one of them (countedBeforeClose).
   */
  private async closedBeforeLaterWrite(intent: WriteIntent, lock: LockRecord): Promise<AdmitResult | undefined> {
    const now = await this.options.store.noteActivity(intent.transaction, this.activityToken(intent));
    if (!now) return closedAnswer(intent, "it is gone");
    if ((now.status?.phase ?? "Open") !== "Open" || now.status?.failure) {
      return countedBeforeClose(now, lock) && !closesQuietly(now.status?.reason) ? undefined : closedAnswer(intent, closedWhy(now));
    }
    const mark = await this.options.locks.closingMark(intent.transaction, { fresh: true });
    return mark !== undefined && markRefusesLaterWrites(mark) ? closedAnswer(intent, "kubetx is closing it") : undefined;
  }

  /** A token of its own per call: the resolver learns of a write from the record's lastActivity changing. */
  private activityToken(intent: WriteIntent): string {
    return `${intent.requestUid}/${this.options.identity}/${this.options.clock.monotonic()}`;
  }

  /** closedMeanwhile, once the Lease cache said whether a closing mark came before the lock. */
  private async closedByMark(intent: WriteIntent, markedFirst: boolean): Promise<AdmitResult | undefined> {
    const tx = await this.options.store.get(intent.transaction, { cached: true });
    if (!markedFirst && tx && !TERMINAL_PHASES.has(tx.status?.phase ?? "Open")) return undefined;
    return closedAnswer(intent, closedWhy(tx));
  }

  /**
   * Another write of an object the transaction holds: a retried or repeated
   * call of the first write (whose journal entry may never have been
   * written if that call died), or a later write (`replace --force`
   * deletes then creates): either way the entry must exist and its
   * post-image must be this write's. Its activity was noted before
   * (closedBeforeLaterWrite): the lock count does not change, so the
   * resolver learns of this write from lastActivity, and its quiet window
   * starts again.
   */
  private async journalLaterWrite(intent: WriteIntent, lock: LockRecord): Promise<void> {
    const pre = lock.member.operation === "CREATE" ? null : (intent.oldObject ?? null);
    const post = intent.operation === "DELETE" ? null : (intent.object ?? null);
    const { journal } = this.options;
    await journal.record(intent.transaction, intent.ref, { pre, post });
    const startedOver = lock.member.operation !== "CREATE" && unwrittenSinceLock(intent.oldObject, lock) ? intent.oldObject : undefined;
    await journal.recordPost(intent.transaction, intent.ref, post, startedOver);
  }

  /** A transaction at the policy's member limit takes no new object; it fails instead. */
  private async refuseOversized(intent: WriteIntent, members: readonly LockRecord[]): Promise<AdmitResult | undefined> {
    const max = this.options.limits().maxMembers;
    // The cached list may lag the last few locks; this process's own count never does.
    const known = new Set([...members.map((l) => l.name), ...(this.admitted.get(intent.transaction) ?? [])]);
    if (known.size < max || known.has(lockName(intent.ref))) return undefined;
    const failure = `it grew past the policy's limit of ${max} members`;
    await this.fail(intent.transaction, failure);
    return deny(intent, `transaction ${intent.transaction} is at the limit of ${max} members set by the TransactionPolicy; split the apply into smaller ones. Transaction ${intent.transaction} will roll back.`);
  }

  /**
   * The policy's per-user limits (user-limits.ts), checked before a new
   * lock is taken, from the user's lock Leases in the watch cache: soft by
   * the few writes that list may lag behind.
   */
  private async refuseOverUserLimits(intent: WriteIntent, members: readonly LockRecord[]): Promise<AdmitResult | undefined> {
    if (members.some((l) => l.name === lockName(intent.ref))) return undefined;
    const refusal = userLimitRefusal({
      user: intent.requester.username,
      transaction: intent.transaction,
      usage: await this.options.locks.heldBy(intent.requester.username),
      alreadyOpen: members.length > 0 || this.admitted.has(intent.transaction),
      limits: this.options.limits(),
    });
    if (!refusal) return undefined;
    await this.fail(intent.transaction, refusal.failure);
    return deny(intent, refusal.message);
  }

  /**
   * The member count for kubectl's warning line: the (possibly lagging)
   * cached list plus this lock, and never less than this process itself
   * admitted, so one replica's count is exact.
   */
  private joined(intent: WriteIntent, lock: LockRecord, listed: readonly LockRecord[]): AdmitResult {
    const names = new Set(listed.map((l) => l.name)).add(lock.name);
    const mine = this.admitted.get(intent.transaction) ?? new Set<string>();
    mine.add(lock.name);
    this.admitted.set(intent.transaction, mine);
    if (this.admitted.size > MAX_TRACKED_TRANSACTIONS) this.admitted.delete(this.admitted.keys().next().value ?? "");
    const firstWrite = !listed.some((l) => l.name === lock.name);
    return { kind: "member", transaction: intent.transaction, lock: lock.name, members: Math.max(names.size, mine.size), firstWrite, mode: intent.mode };
  }

  private async conflict(intent: WriteIntent, lock: LockRecord, holder: Transaction): Promise<AdmitResult> {
    this.options.metrics.lockConflict();
    const message = lockedMessage({ ref: intent.ref, transaction: intent.transaction, dryRun: false, lock, holder }, this.lockedTiming());
    await this.fail(intent.transaction, `a write to ${describeRef(intent.ref)} was denied: it is locked by transaction ${lock.member.transaction} (${holder.spec.user})`);
    return { kind: "denied", transaction: intent.transaction, message, lock: lock.name };
  }

  private lockedTiming(): LockedTiming {
    const { lockTtlSeconds, maxOpenSeconds } = this.options.limits();
    return { lockTtlSeconds, maxOpenSeconds, quietMs: this.options.quietMs() };
  }

  /** Marks a transaction as failed; the resolver rolls it back. The first failure is the one kept. */
  async fail(transaction: string, failure: string): Promise<void> {
    const activity = `${this.options.identity}-${this.options.clock.monotonic()}`;
    await this.options.store.updateStatus(transaction, (tx) => {
      if (TERMINAL_PHASES.has(tx.status?.phase ?? "Open")) return undefined;
      return { ...tx.status, failure: tx.status?.failure ?? failure, lastActivity: activity };
    });
  }

  /**
   * A dry run is judged like the write but writes nothing, and names its
   * transaction only if that exists: the id a dry run would have started
   * (kubectl tx apply --dry-run=server's, a transparent one's) never will,
   * so no message or audit annotation may send anyone looking for it.
   */
  private async judgeDryRun(intent: WriteIntent): Promise<AdmitResult> {
    const tx = await this.options.store.get(intent.transaction);
    const refusal = tx ? refuseJoin(tx, intent) : undefined;
    if (refusal) return deny(intent, refusal);
    const transaction = tx ? intent.transaction : "";
    const lock = await this.options.locks.read(intent.ref);
    if (lock && lock.member.transaction !== intent.transaction) {
      const holder = await this.options.store.get(lock.member.transaction);
      // As the write itself would be: a Failed holder keeps its locks too.
      if (holder && keepsLocks(holder)) {
        const message = lockedMessage({ ref: intent.ref, transaction: intent.transaction, dryRun: true, lock, holder }, this.lockedTiming());
        return { kind: "denied", transaction, message, lock: lock.name };
      }
    }
    return { kind: "dry-run", transaction, lock: lock?.name ?? "" };
  }

  private async ensureHeartbeat(transaction: string): Promise<void> {
    if (this.heartbeats.has(transaction)) return;
    await this.options.locks.createHeartbeat(transaction, this.options.identity, this.options.clock.now());
    this.heartbeats.add(transaction);
    // Bounded: a transaction forgotten here only costs one more create (AlreadyExists is fine) if it is written again.
    if (this.heartbeats.size > MAX_TRACKED_TRANSACTIONS) this.heartbeats.delete(this.heartbeats.values().next().value ?? "");
  }

  private memberOf(intent: WriteIntent): Member {
    const base = {
      transaction: intent.transaction,
      ref: intent.ref,
      kind: intent.kind,
      operation: intent.operation,
      user: intent.requester.username,
      requestUid: intent.requestUid,
      admittedAt: this.options.clock.now(),
    };
    if (intent.operation === "CREATE") return { ...base, ...optional("createdUid", intent.object?.metadata?.uid) };
    return {
      ...base,
      ...optional("oldResourceVersion", intent.oldObject?.metadata?.resourceVersion),
      ...(intent.operation === "UPDATE" && intent.object ? { admittedDigest: intentDigest(intent.object) } : {}),
    };
  }
}

/** A create of an object that names its transaction itself: the only write a prepare can have locked for. */
function namesItsCreate(intent: WriteIntent): boolean {
  return intent.operation === "CREATE" && !intent.oldObject && intent.object?.metadata?.annotations?.[ANNOTATION_TRANSACTION] === intent.transaction;
}

/** Whether `lock` is `intent`'s transaction's prepared lock for this very create, in an open, prepared record of the requester's. */
function preparedCreate(tx: Transaction, lock: LockRecord, intent: WriteIntent): boolean {
  const { member } = lock;
  const user = intent.requester.username;
  return member.prepared === true && member.operation === "CREATE" && member.transaction === intent.transaction && member.user === user &&
    tx.spec.user === user && tx.status?.prepared !== undefined && (tx.status.phase ?? "Open") === "Open" && !tx.status.failure;
}

/**
 * A prepared create's lock was taken for an object that did not exist; an
 * update or delete of it that the transaction did not create (someone
 * kubetx does not stop created it since) would be journalled as if the
 * transaction had, and its rollback would delete another's object. The
 * write is refused instead, and the apply fails whole.
 */
function createdBySomeoneElse(intent: WriteIntent, lock: LockRecord): string | undefined {
  if (!lock.member.prepared || lock.member.operation !== "CREATE" || intent.operation === "CREATE" || !intent.oldObject) return undefined;
  if (intent.oldObject.metadata?.annotations?.[ANNOTATION_TRANSACTION] === intent.transaction) return undefined;
  return `${describeRef(intent.ref)} did not exist when kubetx prepared transaction ${intent.transaction}, and someone else has created it since; it is not overwritten. Apply again`;
}

/** The apiserver gives up on a webhook after its timeout; anything kubetx wrote later would hold a lock for a request that failed. */
const ABORTED = "kubetx took too long to admit this write and the apiserver stopped waiting; retry";


function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function deny(intent: WriteIntent, message: string): AdmitResult {
  return { kind: "denied", transaction: intent.transaction, message };
}

/** Why this write may not join `tx`, if it may not. */
function refuseJoin(tx: Transaction, intent: WriteIntent): string | undefined {
  if (tx.spec.user !== intent.requester.username) {
    return `transaction ${intent.transaction} belongs to ${tx.spec.user}; use a transaction id of your own`;
  }
  const phase = tx.status?.phase ?? "Open";
  if (phase === "Open") {
    return tx.status?.failure ? `transaction ${intent.transaction} is rolling back because ${tx.status.failure}; nothing from it will stay. Fix the cause and apply again in a few seconds` : undefined;
  }
  return refuseIntoResolved(tx, intent.transaction, phase);
}

/** Past Open: rolling back, or resolved. */
function refuseIntoResolved(tx: Transaction, id: string, phase: string): string {
  const reason = tx.status?.reason ?? "failed";
  if (phase === "RollingBack") return `transaction ${id} is rolling back (${reason}); nothing from it will stay. Fix the cause and apply again in a few seconds`;
  if (tx.spec.mode !== "transparent" || (phase !== "RolledBack" && phase !== "Failed")) return `transaction ${id} is already ${phase}; start a new transaction (a new id) and apply again`;
  // The session keeps a failed transparent transaction for a quiet window after it ended (sessions.ts).
  return `transaction ${id} ${phase === "Failed" ? "failed" : "rolled back"} (${reason}); the rest of this apply is refused so that none of it commits on its own. Fix the cause and apply again in a few seconds`;
}

/**
 * Whether `object`, the object a later write of a member starts from, was
 * last written before `lock` was taken: then no write of this transaction
 * has reached storage since (each was allowed after the lock, so it would
 * have a later revision), and `object` is the object as it was at the lock.
 * That happens when the apiserver runs admission again for the same request
 * after a storage conflict (someone wrote between its read and kubetx's
 * lock): the first call's pre-image is then stale (chaos F21).
 * resourceVersions are compared as the etcd revisions they are; anything
 * else is never taken for unwritten.
 */
export function unwrittenSinceLock(object: KubeObject | undefined, lock: Pick<LockRecord, "resourceVersion">): object is KubeObject {
  return revisionAtMost(object?.metadata?.resourceVersion ?? "", lock.resourceVersion);
}

/**
 * Whether a transaction that closed while this write was admitted still
 * verifies this write's lock (chaos F22): it is Verifying, with no failure,
 * and the lock list the resolver counted when it closed (status.countedAt)
 * already had the lock. The resolver lists the locks it verifies after it
 * moves the phase, so a lock it counted before is among them: the write
 * may complete, as one admitted a moment before the close would have. The
 * last member of a transaction that closes by count (expected-members)
 * always has its lock counted before its admission reads the record.
 */
export function countedBeforeClose(tx: Transaction, lock: Pick<LockRecord, "resourceVersion">): boolean {
  if (tx.status?.phase !== "Verifying" || tx.status.failure) return false;
  return revisionAtMost(lock.resourceVersion, tx.status.countedAt ?? "");
}

/**
 * Whether a closing mark refuses a later write of an object the
 * transaction holds: all but a close by count or by the client, which
 * still take a retried call of a member (F22).
 */
function markRefusesLaterWrites(mark: ClosingMark): boolean {
  return mark === "unreadable" || mark.next === "RollingBack" || closesQuietly(mark.reason);
}

/** Why a transaction no longer takes members, as its record (perhaps a cached copy a moment behind) tells. */
function closedWhy(tx: Transaction | undefined): string {
  if (!tx) return "it is gone";
  if (tx.status?.failure) return `it is rolling back because ${tx.status.failure}`;
  const phase = tx.status?.phase ?? "Open";
  return phase === "Open" ? "kubetx is closing it" : `it is ${phase}`;
}

function closedAnswer(intent: WriteIntent, why: string): AdmitResult {
  return { kind: "closed", transaction: intent.transaction, message: `transaction ${intent.transaction} closed while this write was admitted (${why}); apply again` };
}
