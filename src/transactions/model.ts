/**
 * The Transaction record (kubetx.io/v1alpha1, cluster-scoped) and the names
 * other tools rely on (DESIGN.md section 2).
 */
import type { KubeObject, ObjectRef } from "../kube/types.ts";

import { GROUP, VERSION } from "../kube/vocabulary.ts";

export { ANNOTATION_EXPECTED_MEMBERS, ANNOTATION_TRANSACTION, GROUP, LABEL_RESOLVED, LABEL_ROLE, LABEL_TRANSACTION, VERSION } from "../kube/vocabulary.ts";
export const TRANSACTIONS = { group: GROUP, version: VERSION, resource: "transactions" } as const;

export type Phase = "Open" | "Verifying" | "Committed" | "RollingBack" | "RolledBack" | "Failed";
/** undo: kubetx reverts the committed transaction named in spec.undoOf (kubectl tx undo). */
export type Mode = "explicit" | "plugin" | "transparent" | "undo";
export type ClientState = "Applying" | "Applied" | "Failed";
export type { MemberOperation } from "../kube/vocabulary.ts";
import type { MemberOperation } from "../kube/vocabulary.ts";
/** Conflict: someone else changed what the transaction wrote since; their change was kept, not overwritten. */
export type MemberOutcome = "Pending" | "Persisted" | "Committed" | "NotPersisted" | "Restored" | "Unchanged" | "Conflict" | "Failed";

/**
 * The plugin's heartbeat protocol: kubectl tx apply changes
 * spec.clientHeartbeat this often while kubectl runs, and kubetx rolls a
 * plugin transaction back (ClientLost) once it has seen no change for the
 * timeout. Both sides read these constants, so they are part of the
 * protocol, not a policy: a few seconds is short enough that a killed
 * kubectl tx frees its locks soon, and three periods ride out one lost or
 * slow write.
 */
export const CLIENT_HEARTBEAT_PERIOD_MS = 5_000;
export const CLIENT_HEARTBEAT_TIMEOUT_MS = 3 * CLIENT_HEARTBEAT_PERIOD_MS;
/** The Transaction CRD's bound on spec.timeoutSeconds: the longest a live kubectl tx apply keeps its transaction open. */
export const MAX_TIMEOUT_SECONDS = 3600;

export const TERMINAL_PHASES: ReadonlySet<Phase> = new Set(["Committed", "RolledBack", "Failed"]);

export interface TransactionSpec {
  user: string;
  mode: Mode;
  expectedMembers?: number;
  clientState?: ClientState;
  clientMessage?: string;
  /**
   * Set by kubectl tx apply with clientState when kubectl exited on its
   * own (not by a signal): every request it sent had its answer, so none
   * of its writes can still land. A rollback then need not hold the
   * locks of its prepared creates (resolver/hold.ts).
   */
  clientSettled?: boolean;
  /**
   * kubectl tx apply's liveness: a counter it changes every
   * CLIENT_HEARTBEAT_PERIOD_MS while kubectl runs. Only its changes count,
   * as kubetx observes them on its own clock; it is never read as a time.
   */
  clientHeartbeat?: number;
  timeoutSeconds?: number;
  /** With mode undo: the committed transaction to revert. */
  undoOf?: string;
  /** kubectl tx apply's objects, for kubetx to lock before kubectl runs (prepared transactions; resolver/prepare.ts). */
  prepare?: PrepareSpec;
}

/** One object kubectl tx apply will write, as its manifest names it. */
export interface PrepareRef {
  apiVersion: string;
  kind: string;
  /** Absent for a cluster-scoped object; kubectl tx fills in the namespace kubectl would use. */
  namespace?: string;
  name: string;
}

/**
 * What kubectl tx apply asks kubetx to prepare. `groups` are the
 * requester's, as the apiserver authenticated them: kubetx's webhook
 * refuses a record whose groups are not the creator's own, so the
 * preparer may judge policy and RBAC by them.
 */
export interface PrepareSpec {
  members: PrepareRef[];
  groups: string[];
}

/** The most objects one record asks to prepare; kubectl tx apply prepares none beyond it (they join as kubectl writes them). */
export const MAX_PREPARED = 1000;

export interface MemberSummary extends ObjectRef {
  kind?: string;
  operation: MemberOperation;
  outcome: MemberOutcome;
  message?: string;
  /** Paths someone else changed after this transaction wrote them, left as they are by the rollback. */
  conflicts?: string[];
  /** For committed members: the object as this transaction left it (undo checks it is unchanged). */
  uid?: string;
  resourceVersion?: string;
  /** For committed members whose kind keeps one: metadata.generation, which moves only when someone changes the spec. */
  generation?: number;
  /**
   * For committed creates of kinds that keep no generation (a ConfigMap, a
   * Service): a digest of the object as the transaction left it, without
   * what the apiserver sets (status, resourceVersion, managedFields), so
   * that undo knows it unchanged after writes that put it back as it was
   * (a later transaction's rollback). verify.ts committedDigest.
   */
  digest?: string;
}

export interface TransactionStatus {
  phase?: Phase;
  reason?: string;
  message?: string;
  failure?: string;
  /**
   * Changes (an opaque token) whenever a write of the requester is refused
   * by, or fails into, this transaction, and when a later write of an
   * object it holds arrives (noted before that write reads the closing
   * mark: a change after the resolver decided to close for quiet rolls it
   * back, chaos F23). A failed transparent transaction keeps the
   * requester's session, refusing the rest of their apply, until a quiet
   * window has passed since the last such write.
   */
  lastActivity?: string;
  /**
   * When kubetx last refused a write of the requester into this failed
   * transparent transaction. The resolver ends a rollback only a quiet
   * window after the last refusal it saw; one it could not see (noted just
   * as the rollback ended) keeps the session on this transaction, refusing
   * the rest of the apply, until a quiet window has passed since it
   * (chaos F16).
   */
  refusedAt?: string;
  /** Final HTTP status of each member's own request, by lock name, as the audit sink reported it. */
  requests?: Record<string, number>;
  /**
   * Lock names of the members at least one of whose requests the audit
   * sink reported successful. `requests` keeps only the last outcome: a
   * delete that succeeded and a repeated one that found nothing (404) must
   * still count as written.
   */
  persisted?: Record<string, boolean>;
  /**
   * Writes of a transparent transaction's requester that the apiserver has
   * received and not yet finished (audit ID to when it received them), as
   * the audit sink reports them: the transaction stays open, and a failed
   * one keeps refusing, while one is in flight.
   */
  inFlight?: Record<string, string>;
  /**
   * Writes the apiserver refused with Retry-After (a 429 of its priority
   * and fairness, a rate-limiting webhook), by the lock name of their
   * object, as the audit sink reports them: a transparent transaction's
   * requester's write refused before kubetx saw it, or a member's own
   * request refused after kubetx admitted it (`admitted`). kubectl sends
   * such a write again by itself. The transaction stays open while one
   * waits for its retry, and fails if none gets through (resolver/retries.ts).
   */
  retrying?: Record<string, RetryingWrite>;
  /** Set by a rollback that kept changes others made since: one line per object. */
  conflicts?: string[];
  coordinator?: string;
  memberCount?: number;
  /** The namespaces of the members admitted so far, while members is not yet written (kubectl tx list -n). */
  namespaces?: string[];
  openedAt?: string;
  closedAt?: string;
  /**
   * The resourceVersion of the lock list the resolver counted when it
   * decided to close. Closed because its members were all there (by count
   * or by its client), a lock written at or before it is among the members
   * the resolver verifies, so its admission may still complete (chaos F22);
   * closed because it went quiet, a lock written after it joined as it
   * closed, and the transaction rolls back (chaos F23).
   */
  countedAt?: string;
  resolvedAt?: string;
  members?: MemberSummary[];
  /**
   * With spec.prepare: when kubetx had locked every object it could
   * prepare (RFC 3339), and how many. kubectl tx apply runs kubectl only
   * then; a prepare that meets another transaction's lock sets failure
   * instead, before anything is written.
   */
  prepared?: string;
  preparedMembers?: number;
}

/** A write the client will send again (TransactionStatus.retrying). */
export interface RetryingWrite {
  /** When the apiserver received the refused request (RFC 3339, its clock). */
  readonly receivedAt: string;
  /** The apiserver's answer, for the failure should no retry get through. */
  readonly reason: string;
  /**
   * A member's own request, refused after kubetx admitted it (another
   * webhook): waited for until a request of that member succeeds
   * (status.persisted), not merely until a member holds the object.
   */
  readonly admitted?: boolean;
}

export interface Transaction extends KubeObject {
  spec: TransactionSpec;
  status?: TransactionStatus;
}

/** `t-` and 8 to 40 lowercase letters, digits or dashes: short enough to embed in Lease and Secret names. */
const ID_PATTERN = /^t-[a-z0-9](?:[a-z0-9-]{6,38}[a-z0-9])$/;

export function isValidTransactionId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/**
 * The name kubectl tx runs kubectl under (its argv[0]). kubectl names
 * itself by it in the User-Agent of every request, which the apiserver's
 * audit events carry: so the audit sink knows a request kubectl tx's
 * kubectl made for transaction `id` even when no webhook saw it.
 */
export function kubectlNameFor(id: string): string {
  return `kubectl@${id}`;
}

/** The transaction a User-Agent's program name carries (kubectlNameFor), if it carries a valid one. */
export function transactionOfUserAgent(userAgent: string | undefined): string | undefined {
  const id = /^kubectl@([^/\s]+)\//.exec(userAgent ?? "")?.[1];
  return id !== undefined && isValidTransactionId(id) ? id : undefined;
}

export function transactionIdProblem(id: string): string | undefined {
  return isValidTransactionId(id)
    ? undefined
    : `transaction id '${id}' must look like t-4f2a9c1e: 't-' then 8 to 40 lowercase letters, digits or dashes`;
}

export function transactionPath(id?: string): string {
  return `/apis/${GROUP}/${VERSION}/transactions${id ? `/${encodeURIComponent(id)}` : ""}`;
}

export function newTransaction(id: string, spec: TransactionSpec): Transaction {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: "Transaction", metadata: { name: id }, spec };
}
