/**
 * Writes a transaction waits to see retried: the apiserver refused them
 * with Retry-After (status.retrying, from the audit sink), before kubetx
 * saw them (a transparent transaction's) or after it admitted them (a
 * member's own request), and kubectl's client sends them again by itself,
 * up to ten times. The transaction stays open while one waits, and fails
 * if no retry of it ever gets through: the apply did not complete.
 * Pure: the resolver passes what it has observed on its monotonic clock.
 */
import type { RetryingWrite, Transaction } from "../transactions/model.ts";

/**
 * How long after the last refusal of an object a retry may still come: the
 * apiserver's priority and fairness asks for at most 32 s (its
 * maxRetryAfter), and a few seconds more cover the request's own way.
 */
export const RETRY_WAIT_MS = 35_000;

/**
 * The noted writes not yet retried, by lock name: no member for their object
 * among `lockNames` yet, or, for a member's own refused request, no
 * successful request of that member reported (status.persisted).
 */
export function awaitedRetries(tx: Transaction, lockNames: ReadonlySet<string>): Map<string, RetryingWrite> {
  const persisted = tx.status?.persisted ?? {};
  return new Map(Object.entries(tx.status?.retrying ?? {}).filter(([lock, write]) => (write.admitted ? persisted[lock] !== true : !lockNames.has(lock))));
}

/** When this process saw each awaited write's latest refusal (receivedAt), on its clock. */
export type RetriesSeen = Map<string, { readonly receivedAt: string; readonly at: number }>;

export interface RetryState {
  /** A retry may still come: keep the transaction open. */
  readonly waiting: boolean;
  /** One whose retry did not come in time: the transaction fails with this. */
  readonly givenUp?: string;
}

/**
 * Notes what is new in `awaited` and judges it: each refusal of an object
 * (a newer receivedAt: the client is still retrying) starts its wait again.
 */
export function judgeRetries(awaited: ReadonlyMap<string, RetryingWrite>, seen: RetriesSeen, now: number, waitMs: number = RETRY_WAIT_MS): RetryState {
  for (const lock of seen.keys()) if (!awaited.has(lock)) seen.delete(lock);
  let waiting = false;
  for (const [lock, write] of awaited) {
    const known = seen.get(lock);
    const since = known && known.receivedAt === write.receivedAt ? known.at : now;
    seen.set(lock, { receivedAt: write.receivedAt, at: since });
    if (now - since < waitMs) waiting = true;
    else return { waiting: false, givenUp: retryFailure(write, waitMs) };
  }
  return { waiting };
}

function retryFailure(write: RetryingWrite, waitMs: number): string {
  return `${write.reason}; kubectl sends such a write again by itself, but no retry of it got through within ${Math.round(waitMs / 1000)} s of the last refusal, so the apply did not complete`;
}
