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
 * transaction. Deletes carry no field manager and join whatever is open.
 */
export function sameTool(sessionManager: string | undefined, writeManager: string | undefined): boolean {
  return !sessionManager || !writeManager || sessionManager === writeManager;
}

export function newTransactionId(): string {
  return `t-${randomBytes(4).toString("hex")}`;
}
