/**
 * Transparent grouping: which writes belong together when nobody named a
 * transaction. Pure: the key of a requester, and whether a write may join
 * the session's current transaction.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Requester } from "./coordinator.ts";

/**
 * One kubectl apply is one requester (name, uid, groups) sending requests
 * back to back; the key is a digest so it can name a Lease.
 */
export function sessionKey(requester: Requester): string {
  const groups = [...(requester.groups ?? [])].sort().join(",");
  return createHash("sha256").update(`${requester.username}\n${requester.uid ?? ""}\n${groups}`).digest("hex").slice(0, 40);
}

/**
 * A write with a field manager other than the session's came from another
 * tool (say, a script running beside kubectl) and starts its own
 * transaction, unless it writes an object an open transparent transaction
 * of the same user holds (sessions.ts takesOver). Deletes carry no field
 * manager and join whatever is open.
 */
export function sameTool(sessionManager: string | undefined, writeManager: string | undefined): boolean {
  return !sessionManager || !writeManager || toolOf(sessionManager) === toolOf(writeManager);
}

/**
 * Field managers one tool writes under besides its own. `kubectl apply
 * --server-side` (manager `kubectl`), over an object client-side apply
 * wrote, writes last-applied-configuration back as `kubectl-last-applied`
 * right after each object's apply patch: the same apply, which a
 * transaction of its own would split (and its lock refuse).
 */
const ALSO_WRITES_AS: Readonly<Record<string, string>> = { "kubectl-last-applied": "kubectl" };

function toolOf(manager: string): string {
  return ALSO_WRITES_AS[manager] ?? manager;
}

export function newTransactionId(): string {
  return `t-${randomBytes(4).toString("hex")}`;
}
