/**
 * Failing a requester's transparent transaction from outside admission: a
 * write that never reached kubetx (seen by /observe or the audit sink)
 * failed, so the apply it belongs to must not commit. The requester's open
 * transaction fails, or, when none is open (the failed write was the
 * apply's first), a new one is opened failed, so the rest of the apply
 * joins it and is refused.
 */
import type { Logger } from "../telemetry/logger.ts";
import type { Coordinator, Requester } from "./coordinator.ts";
import type { Sessions } from "./sessions.ts";
import type { TransactionStore } from "./store.ts";

export interface RequesterFailureDeps {
  readonly sessions: Sessions;
  readonly store: TransactionStore;
  readonly coordinator: Coordinator;
  readonly logger: Logger;
  /** The quiet window in force: a failure this long before a transaction began belongs to an earlier apply. */
  readonly quietMs: () => number;
}

export interface RequesterFailure {
  readonly requester: Requester;
  readonly fieldManager?: string | undefined;
  readonly reason: string;
  /** When the apiserver received the failed request, on its clock (the clock of the record's creationTimestamp). */
  readonly receivedAtMs?: number;
}

/** Returns the transaction it failed, or undefined when the failure belongs to an apply that has ended. */
export async function failRequester(deps: RequesterFailureDeps, failure: RequesterFailure): Promise<string | undefined> {
  const { id, record } = await deps.sessions.transactionFor(failure.requester, failure.fieldManager, "CREATE");
  const tx = record ?? (await deps.store.getOrCreate(id, { user: failure.requester.username, mode: "transparent" }));
  const began = Date.parse(tx.metadata?.creationTimestamp ?? "");
  if (failure.receivedAtMs !== undefined && !Number.isNaN(began) && failure.receivedAtMs < began - deps.quietMs()) {
    deps.logger.info({ transaction: id, user: failure.requester.username }, "a failed write from before this transaction began; not failing it");
    return undefined;
  }
  await deps.coordinator.fail(id, failure.reason);
  return id;
}
