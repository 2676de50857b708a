/**
 * Which audited writes failed, and which failed before reaching kubetx:
 * the one rule the audit sink (admission/audit-events.ts) and `kubectl tx
 * audit` (group.ts) both judge an entry by. Pure.
 */
import type { AuditEntry, WriteTarget } from "./events.ts";

/** Requests that write: a rejected read (kubectl apply's GET of an object that does not exist yet) is not a failed member. */
export const WRITE_VERBS: ReadonlySet<string> = new Set(["create", "update", "patch", "delete", "deletecollection"]);

/**
 * A write that failed for good: status 400 or above. Not a resourceVersion
 * conflict of an update or patch: kubectl re-reads and sends the write
 * again by itself, and the retry is what counts. A server-side apply's
 * conflict with another field manager is final, though (kubectl reports
 * it and goes on to the next object): counted as a retried conflict, it
 * let the rest of the apply commit without that object. Not a dry run.
 */
export function isFailedWrite(entry: Pick<AuditEntry, "verb" | "code" | "reason" | "dryRun" | "fieldManagerConflict">): boolean {
  if (entry.dryRun || entry.code < 400 || !WRITE_VERBS.has(entry.verb)) return false;
  return !(entry.code === 409 && entry.reason === "Conflict" && (entry.verb === "update" || entry.verb === "patch") && entry.fieldManagerConflict !== true);
}

/** What the rule reads of an entry. */
export type RuleFacts = Pick<AuditEntry, "verb" | "code" | "reason" | "dryRun" | "seenByKubetx" | "user" | "target" | "fieldManagerConflict">;

/**
 * A failed write (isFailedWrite) by a known requester, to an object kubetx
 * could cover (a namespaced object itself, `target`), that no kubetx webhook
 * answered: the apiserver rejected it before validating admission (bad
 * request, unknown field, invalid object, forbidden), or a webhook called
 * before kubetx's failed. Whether the requester and namespace are covered
 * is the caller's to judge: the sink asks the policy, `kubectl tx audit`
 * looks for a transaction of the same user nearby.
 *
 * Not a create that failed with 409 (AlreadyExists): storage finds that
 * after admission, so kubetx would have seen it had its policy covered it.
 * Not a delete of an object that was not there (404): it changed nothing,
 * and what it asked for, the object gone, holds. `kubectl delete
 * --ignore-not-found` sends it and exits 0; counted as a failure, it
 * rolled back the user's apply of a moment before (same requester, and a
 * delete names no field manager, so it joins any tool's transaction).
 * Not a subresource (`/scale`, `/status`) or a cluster-scoped object: no
 * kubetx webhook rule selects them, so their failure is no member's.
 */
export function isRejectedBeforeKubetx<E extends RuleFacts>(entry: E): entry is E & { readonly target: WriteTarget } {
  if (entry.seenByKubetx || !entry.user || !entry.target || !isFailedWrite(entry)) return false;
  return !(entry.code === 409 && entry.verb === "create") && !isDeleteOfNothing(entry);
}

/** A delete refused because the object did not exist. */
function isDeleteOfNothing(entry: Pick<AuditEntry, "verb" | "code">): boolean {
  return entry.code === 404 && (entry.verb === "delete" || entry.verb === "deletecollection");
}

/**
 * A failed write the client sends again by itself: 429 (the apiserver's
 * priority and fairness, or its in-flight limit, always with Retry-After),
 * or any answer with Retry-After (details.retryAfterSeconds: a webhook's
 * or a storage timeout's). client-go, kubectl's client, retries such a
 * request up to ten times, so it is no failure of the apply unless no
 * retry of it ever gets through.
 */
export function isRetriedByClient(entry: Pick<AuditEntry, "code" | "retryAfterSeconds">): boolean {
  return entry.code === 429 || (entry.retryAfterSeconds ?? 0) > 0;
}
