/**
 * POST /audit: the apiserver's audit webhook backend delivers EventLists
 * here. Member outcomes are recorded on their Transaction (one status patch
 * per transaction per batch) and a member whose request failed fails its
 * transaction; a covered write rejected before kubetx saw it fails its
 * requester's transparent transaction. Everything else is dropped at once:
 * the sink keeps no state of its own.
 */
import type { Logger } from "../telemetry/logger.ts";
import type { Coordinator } from "../transactions/coordinator.ts";
import type { RequesterFailureDeps } from "../transactions/failures.ts";
import { failRequester } from "../transactions/failures.ts";
import type { TransactionStore } from "../transactions/store.ts";
import type { MemberOutcome, Rejection, WriteProgress } from "./audit-events.ts";
import { findingOf, progressOf } from "./audit-events.ts";
import { InFlightTracker } from "./in-flight.ts";
import type { ScopeDeps } from "./scope.ts";
import { policyMode } from "./scope.ts";

export interface AuditSinkDeps extends ScopeDeps {
  readonly store: TransactionStore;
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
    await deps.store.recordRequests(transaction, list);
    const failure = list.find((o) => o.failure)?.failure;
    if (!failure) return;
    failed += 1;
    deps.logger.info({ transaction, reason: failure }, "a member's request failed after admission; failing its transaction");
    await deps.coordinator.fail(transaction, failure);
  }));
  return failed;
}

async function failCovered(deps: AuditSinkDeps, rejection: Rejection): Promise<boolean> {
  const mode = await policyMode(deps, rejection, rejection.requester);
  if (mode !== "transparent") return false;
  const failed = await failRequester(deps.failures, rejection);
  if (failed) deps.logger.info({ transaction: failed, user: rejection.requester.username, reason: rejection.reason }, "a write was rejected before admission; failing its transaction");
  return failed !== undefined;
}
