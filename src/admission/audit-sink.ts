/**
 * POST /audit: the apiserver's audit webhook backend delivers EventLists
 * here. Member outcomes are recorded on their Transaction (one status patch
 * per transaction per batch) and a member whose request failed fails its
 * transaction; a covered write rejected before kubetx saw it fails its
 * requester's transparent transaction (or, when kubectl tx's kubectl made
 * it, as its User-Agent says, or the object is under the lock of the
 * requester's own named transaction, that one). Everything else is
 * dropped at once: the sink keeps no state of its own.
 */
import type { Logger } from "../telemetry/logger.ts";
import type { Coordinator } from "../transactions/coordinator.ts";
import type { RequesterFailureDeps } from "../transactions/failures.ts";
import { expectRetry, failRequester } from "../transactions/failures.ts";
import type { TransactionStore } from "../transactions/store.ts";
import type { Transaction } from "../transactions/model.ts";
import { TERMINAL_PHASES } from "../transactions/model.ts";
import type { LockStore } from "../locks/store.ts";
import { lockName } from "../locks/record.ts";
import type { MemberOutcome, Rejection, WriteProgress } from "./audit-events.ts";
import { findingOf, progressOf } from "./audit-events.ts";
import { InFlightTracker } from "./in-flight.ts";
import type { ScopeDeps } from "./scope.ts";
import { policyMode } from "./scope.ts";

export interface AuditSinkDeps extends ScopeDeps {
  readonly store: TransactionStore;
  /** Whose lock a rejected write's object is under (namedHolder). */
  readonly locks: Pick<LockStore, "lockNow">;
  readonly coordinator: Coordinator;
  readonly failures: RequesterFailureDeps;
  readonly logger: Logger;
}

export interface SinkReport {
  /** Events that said something about a transaction. */
  readonly members: number;
  /** Transactions failed by a rejected write or a failed member request. */
  readonly failed: number;
}

export interface AuditSink {
  receive(events: readonly unknown[]): Promise<SinkReport>;
}

export function auditSink(deps: AuditSinkDeps): AuditSink {
  const inFlight = new InFlightTracker({ ...deps, sessions: deps.failures.sessions });
  return {
    async receive(events): Promise<SinkReport> {
      const members: MemberOutcome[] = [];
      const rejections: Rejection[] = [];
      const progress: WriteProgress[] = [];
      for (const event of events) {
        const finding = findingOf(event);
        if (finding?.kind === "member") members.push(finding);
        else if (finding?.kind === "rejected") rejections.push(finding);
        const where = progressOf(event);
        if (where) progress.push(where);
      }
      // Marks first: a write that finished in this batch must not hold a transaction its failure is about to fail.
      // A mark that cannot be written costs only the hold it would give; the failures below must still be handled.
      await inFlight.track(progress).catch((error: unknown) => deps.logger.warn({ err: error }, "could not mark writes in flight"));
      const failedMembers = await recordOutcomes(deps, members);
      const failedRequesters = await Promise.all(rejections.map((r) => failCovered(deps, r)));
      return { members: members.length, failed: failedMembers + failedRequesters.filter(Boolean).length };
    },
  };
}

/** One status patch per transaction; a failed member request fails its transaction. */
async function recordOutcomes(deps: AuditSinkDeps, outcomes: readonly MemberOutcome[]): Promise<number> {
  const byTransaction = new Map<string, MemberOutcome[]>();
  for (const outcome of outcomes) byTransaction.set(outcome.transaction, [...(byTransaction.get(outcome.transaction) ?? []), outcome]);
  let failed = 0;
  await Promise.all([...byTransaction].map(async ([transaction, list]) => {
    // A request the client sends again is no outcome: its code would say the member never persisted while its retry may have.
    const final = list.filter((o) => !o.retrying);
    if (final.length > 0) await deps.store.recordRequests(transaction, final);
    const retrying = Object.fromEntries(list.flatMap((o) => (o.retrying ? [[o.lock, o.retrying] as const] : [])));
    if (Object.keys(retrying).length > 0) await deps.store.markRetrying(transaction, retrying);
    const failure = list.find((o) => o.failure)?.failure;
    if (!failure) return;
    failed += 1;
    deps.logger.info({ transaction, reason: failure }, "a member's request failed after admission; failing its transaction");
    await deps.coordinator.fail(transaction, failure);
  }));
  return failed;
}

async function failCovered(deps: AuditSinkDeps, rejection: Rejection): Promise<boolean> {
  const holder = await agentNamed(deps, rejection) ?? await namedHolder(deps, rejection);
  if (holder) return failNamed(deps, holder, rejection);
  const mode = await policyMode(deps, rejection, rejection.requester);
  if (mode !== "transparent") return false;
  if (rejection.retried && rejection.name) return awaitRetry(deps, rejection, rejection.name);
  const failed = await failRequester(deps.failures, rejection);
  if (failed) deps.logger.info({ transaction: failed, user: rejection.requester.username, reason: rejection.reason }, "a write was rejected before admission; failing its transaction");
  return failed !== undefined;
}

/** A rejected write of a named transaction: fails it, unless it has resolved or kubectl retries the write by itself (its exit decides). */
async function failNamed(deps: AuditSinkDeps, holder: NamedOwner, rejection: Rejection): Promise<boolean> {
  const about = { transaction: holder.id, user: rejection.requester.username, reason: rejection.reason };
  if (holder.ended) {
    deps.logger.debug(about, "a write of a resolved transaction was rejected before admission; kubectl tx reported it");
    return false;
  }
  if (holder.plugin && rejection.retried) {
    deps.logger.debug(about, "a write kubectl retries was refused before admission; kubectl's exit decides");
    return false;
  }
  deps.logger.info(about, "a member's write was rejected before admission; failing its transaction");
  if (!holder.failing) await deps.coordinator.fail(holder.id, rejection.reason);
  return true;
}

/** A write the client sends again by itself (a 429): its transparent transaction waits for the retry instead of failing. */
async function awaitRetry(deps: AuditSinkDeps, rejection: Rejection, name: string): Promise<boolean> {
  const lock = lockName({ group: rejection.group, version: "", resource: rejection.resource, namespace: rejection.namespace, name });
  const waiting = await expectRetry(deps.failures, { ...rejection, lock, receivedAt: new Date(rejection.receivedAtMs).toISOString() });
  if (waiting) deps.logger.info({ transaction: waiting, user: rejection.requester.username, reason: rejection.reason }, "a write the client retries was refused before admission; its transaction waits for the retry");
  return false;
}

/** The named transaction a rejected write belonged to; `ended`: resolved already, nothing left to fail. */
interface NamedOwner {
  readonly id: string;
  readonly failing: boolean;
  readonly ended: boolean;
  /** kubectl tx apply's: it closes when kubectl exits, so kubectl's own retries are for kubectl to settle. */
  readonly plugin: boolean;
}

/**
 * The transaction the rejected write's User-Agent names, when it is the
 * requester's own kubectl tx apply: kubectl tx ran kubectl under a name
 * that carries it (kubectlNameFor). Its kubectl saw the rejection too and
 * kubectl tx reports it, so a transaction already resolved is left alone,
 * and the requester's transparent transaction is never started for it.
 * The cache holds only unresolved records: a resolved one is one read.
 */
async function agentNamed(deps: AuditSinkDeps, rejection: Rejection): Promise<NamedOwner | undefined> {
  const id = rejection.userAgentTransaction;
  const tx = id === undefined ? undefined : await deps.store.get(id, { cached: true });
  if (!id || !tx || tx.spec.mode !== "plugin" || tx.spec.user !== rejection.requester.username) return undefined;
  return { id, failing: failingNow(tx), ended: TERMINAL_PHASES.has(tx.status?.phase ?? "Open"), plugin: true };
}

/**
 * The requester's own named transaction (kubectl tx apply, an explicit
 * one) that holds the rejected write's object, if one does and has not
 * ended: the write was its member's (kubectl tx apply's prepared create,
 * which kubetx never saw), so it fails that transaction, not the
 * requester's transparent one, which it would otherwise start for nothing.
 * From the caches, with no call.
 */
async function namedHolder(deps: AuditSinkDeps, rejection: Rejection): Promise<NamedOwner | undefined> {
  if (!rejection.name) return undefined;
  const lock = await deps.locks.lockNow({ group: rejection.group, version: "", resource: rejection.resource, namespace: rejection.namespace, name: rejection.name });
  if (!lock) return undefined;
  const tx = await deps.store.lookup(lock.member.transaction);
  if (!tx || !heldFor(tx, rejection)) return undefined;
  return { id: lock.member.transaction, failing: failingNow(tx), ended: false, plugin: tx.spec.mode === "plugin" };
}

function failingNow(tx: Transaction): boolean {
  return tx.status?.failure !== undefined || tx.status?.phase === "RollingBack";
}

/** Whether `tx` is the requester's named transaction, not ended, and already begun when the apiserver received the write. Pure. */
function heldFor(tx: Transaction, rejection: Rejection): boolean {
  if (tx.spec.mode === "transparent" || tx.spec.user !== rejection.requester.username || TERMINAL_PHASES.has(tx.status?.phase ?? "Open")) return false;
  // creationTimestamp has whole seconds.
  const began = Date.parse(tx.metadata?.creationTimestamp ?? "");
  return !Number.isNaN(began) && rejection.receivedAtMs >= began - 1000;
}
