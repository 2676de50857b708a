/**
 * Failing a requester's transparent transaction from outside admission: a
 * write that never reached kubetx (seen by /observe or the audit sink)
 * failed, so the apply it belongs to must not commit. The requester's open
 * transaction fails, or, when none is open (the failed write was the
 * apply's first), a new one is opened failed, so the rest of the apply
 * joins it and is refused. A write the client sends again by itself (a
 * 429) is only noted there, to be waited for (expectRetry).
 */
import type { Logger } from "../telemetry/logger.ts";
import type { Coordinator, Requester } from "./coordinator.ts";
import type { Sessions } from "./sessions.ts";
import type { Transaction } from "./model.ts";
import { TERMINAL_PHASES } from "./model.ts";
import type { TransactionStore } from "./store.ts";

export interface RequesterFailureDeps {
  readonly sessions: Sessions;
  readonly store: TransactionStore;
  readonly coordinator: Coordinator;
  readonly logger: Logger;
  /**
   * The quiet window as the resolver counts it (resolver.ts effectiveQuietMs): a failure this
   * long before a transaction began belongs to an earlier apply.
   */
  readonly quietMs: () => number;
}

export interface RequesterFailure {
  readonly requester: Requester;
  readonly fieldManager?: string | undefined;
  readonly reason: string;
  /** When the apiserver received the failed request, on its clock (the clock of the record's creationTimestamp). */
  readonly receivedAtMs?: number;
}

/**
 * Returns the transaction it failed, or undefined when the failure belongs
 * to an apply that has ended. The same failure may be reported twice (by
 * /observe and by the audit sink, or by a batch the apiserver sent again):
 * a failure from before the requester's last transaction was resolved is
 * that transaction's, already counted or too late, and opens no new one
 * (endedWith).
 */
export async function failRequester(deps: RequesterFailureDeps, failure: RequesterFailure): Promise<string | undefined> {
  const id = await transactionOfFailure(deps, failure);
  if (id !== undefined) await deps.coordinator.fail(id, failure.reason);
  return id;
}

/**
 * A write of the requester that the apiserver refused with Retry-After
 * before kubetx saw it: kubectl sends it again by itself, so it fails
 * nothing yet. It is noted on the transaction the requester's writes join
 * now (opened for it, as for a failure, when it was the apply's first),
 * which stays open until a write of that object joins it, and fails if
 * none does (resolver/retries.ts). Returns that transaction, or undefined
 * when the write belongs to an apply that has ended, as failRequester.
 */
export async function expectRetry(deps: RequesterFailureDeps, failure: RequesterFailure & { readonly lock: string; readonly receivedAt: string }): Promise<string | undefined> {
  const id = await transactionOfFailure(deps, failure);
  if (id !== undefined) await deps.store.markRetrying(id, { [failure.lock]: { receivedAt: failure.receivedAt, reason: failure.reason } });
  return id;
}

/** The requester's transaction a failed write of theirs belongs to (opened when none is), or undefined when it belongs to an apply that has ended. */
async function transactionOfFailure(deps: RequesterFailureDeps, failure: RequesterFailure): Promise<string | undefined> {
  if (failure.receivedAtMs !== undefined && endedWith(await deps.sessions.last(failure.requester), failure.receivedAtMs, deps.quietMs())) {
    deps.logger.info({ user: failure.requester.username }, "a failed write from a transaction already resolved; nothing to fail");
    return undefined;
  }
  const { id, record } = await deps.sessions.transactionFor(failure.requester, failure.fieldManager, "CREATE");
  const tx = record ?? (await deps.store.getOrCreate(id, { user: failure.requester.username, mode: "transparent" }));
  const began = Date.parse(tx.metadata?.creationTimestamp ?? "");
  if (failure.receivedAtMs !== undefined && !Number.isNaN(began) && failure.receivedAtMs < began - deps.quietMs()) {
    deps.logger.info({ transaction: id, user: failure.requester.username }, "a failed write from before this transaction began; not failing it");
    return undefined;
  }
  return id;
}

/**
 * Whether a failure of a write received at `atMs` belongs to `tx`, which
 * has ended since: it was resolved at or after `atMs`, and either did not
 * commit (the failure was counted, or came too late to matter), or
 * committed but the write came before its last quiet window began. A
 * committed transaction never counted a failure of a write received in
 * its last quiet window: that write came as it closed, the first of the
 * requester's next apply (chaos F23), whose rest is refused by opening
 * a failed transaction for it.
 */
export function endedWith(tx: Transaction | undefined, atMs: number, quietMs: number): boolean {
  const status = tx?.status;
  if (!status || !TERMINAL_PHASES.has(status.phase ?? "Open") || !(atMs <= Date.parse(status.resolvedAt ?? ""))) return false;
  const closedAt = Date.parse(status.closedAt ?? "");
  return status.phase !== "Committed" || Number.isNaN(closedAt) || atMs < closedAt - quietMs;
}
