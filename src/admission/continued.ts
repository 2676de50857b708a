/**
 * A second write of one object in one apply. `kubectl apply --server-side`
 * over an object that client-side apply wrote before makes two more calls
 * after its apply patch (kubectl's migration of
 * last-applied-configuration to server-side apply): same user, same
 * object, and the object's kubetx.io/transaction annotation left as the
 * first call set it. Such a write names no transaction (scope.ts: an
 * annotation counts only when the write sets it), so in a transparent
 * namespace it would start a transparent transaction of its own, which the
 * first call's lock refuses: kubectl warns, and a rolled-back transaction
 * is left in the records.
 *
 * It continues the transaction the object's annotation names instead, when
 * that one is open, was opened by a name (an annotation or kubectl tx
 * apply, not transparent), belongs to the requester and holds the
 * object's lock: the object is that transaction's member already, so the
 * write joins it as a later write of the member (coordinator.ts), and a
 * rollback undoes both. Read from the watch caches, with no call; a cache
 * that has not caught up finds nothing to continue, and the write goes
 * where it went before. What the caches said is checked again by the
 * coordinator as for any write that names the transaction (a transaction
 * that closed meanwhile answers "closed", and the write then goes to its
 * own scope: validate.ts).
 */
import type { LockStore } from "../locks/store.ts";
import type { ObjectRef } from "../kube/types.ts";
import type { Transaction } from "../transactions/model.ts";
import { ANNOTATION_TRANSACTION } from "../transactions/model.ts";
import type { TransactionStore } from "../transactions/store.ts";
import type { AdmissionRequest } from "./review.ts";
import type { Scope } from "./scope.ts";
import { OPT_OUT } from "./scope.ts";

export interface ContinuedDeps {
  readonly records: Pick<TransactionStore, "lookup">;
  readonly locks: Pick<LockStore, "lockNow">;
}

/** The transaction the object's annotation names when this update leaves the annotation as it was. Pure. */
export function carriedTransaction(request: AdmissionRequest): string | undefined {
  if (request.operation !== "UPDATE") return undefined;
  const now = request.object?.metadata?.annotations?.[ANNOTATION_TRANSACTION];
  const before = request.oldObject?.metadata?.annotations?.[ANNOTATION_TRANSACTION];
  return now !== undefined && now !== OPT_OUT && now === before ? now : undefined;
}

/** Whether `tx` takes a later write of one of its members that names it no more. Pure. */
export function continues(tx: Transaction | undefined, requester: string): tx is Transaction {
  return tx !== undefined && tx.spec.mode !== "transparent" && tx.spec.user === requester && (tx.status?.phase ?? "Open") === "Open" && !tx.status?.failure;
}

/** The explicit scope this write continues, or undefined when it keeps the scope the policies gave it. */
export async function continuedScope(request: AdmissionRequest, scope: Scope, ref: ObjectRef, deps: ContinuedDeps): Promise<Scope | undefined> {
  if (scope.kind !== "transparent" && scope.kind !== "session-only") return undefined;
  const carried = carriedTransaction(request);
  if (carried === undefined) return undefined;
  const tx = await deps.records.lookup(carried);
  if (!continues(tx, request.userInfo.username)) return undefined;
  const lock = await deps.locks.lockNow(ref);
  return lock?.member.transaction === carried ? { kind: "explicit", transaction: carried, record: tx } : undefined;
}
