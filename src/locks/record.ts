/**
 * A lock is a coordination.k8s.io/v1 Lease in kubetx-system, one per locked
 * object; its annotations say which member of which transaction it is.
 * This file maps between the record and the Lease; it does no I/O.
 */
import { createHash } from "node:crypto";
import type { KubeObject, ObjectRef } from "../kube/types.ts";
import { microTime } from "../telemetry/clock.ts";
import type { MemberOperation } from "../kube/vocabulary.ts";
import { LABEL_ROLE, LABEL_TRANSACTION, LABEL_USER } from "../kube/vocabulary.ts";

export const LOCK_ROLE = "lock";
export const HEARTBEAT_ROLE = "heartbeat";
/** A transaction's closing mark: see closingLease. */
export const CLOSING_ROLE = "closing";
const ANNOTATION_CLOSING = "kubetx.io/closing";
const ANNOTATION_MEMBER = "kubetx.io/member";

/** What kubetx needs to verify and restore one member. */
export interface Member {
  readonly transaction: string;
  readonly ref: ObjectRef;
  readonly kind: string;
  readonly operation: MemberOperation;
  /** The requester, for lock-conflict messages. */
  readonly user: string;
  /** The admission request uid, for idempotency. */
  readonly requestUid: string;
  /** When the member was admitted (ms, this process's clock). */
  readonly admittedAt: number;
  /** CREATE: the uid of the object being created. */
  readonly createdUid?: string;
  /** UPDATE/DELETE: the resourceVersion of the pre-image. */
  readonly oldResourceVersion?: string;
  /** UPDATE: digest of the admitted object, to recognise a no-op write as persisted. */
  readonly admittedDigest?: string;
  /**
   * Taken by a prepare (resolver/prepare.ts) before kubectl ran, for a
   * CREATE of an object that did not exist: admittedAt is the prepare's
   * time, and no createdUid is known; the object this transaction created
   * is the one carrying its kubetx.io/transaction annotation.
   */
  readonly prepared?: boolean;
}

export interface LockRecord {
  readonly name: string;
  readonly resourceVersion: string;
  readonly member: Member;
}

/** Lease names are DNS labels: a digest of the object's identity keeps them short and unique. */
export function lockName(ref: ObjectRef): string {
  const key = [ref.group, ref.resource, ref.namespace ?? "", ref.name].join("/");
  return `lk-${createHash("sha256").update(key).digest("hex").slice(0, 40)}`;
}

/** The value of LABEL_USER for a user name: 40 hex digits of its SHA-256, a valid label value for any name. */
export function userDigest(username: string): string {
  return createHash("sha256").update(username).digest("hex").slice(0, 40);
}

export function heartbeatName(transaction: string): string {
  return `hb-${transaction}`;
}

export function lockLease(member: Member, ttlSeconds: number): KubeObject {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: lockName(member.ref),
      labels: { [LABEL_ROLE]: LOCK_ROLE, [LABEL_TRANSACTION]: member.transaction, [LABEL_USER]: userDigest(member.user) },
      annotations: { [ANNOTATION_MEMBER]: JSON.stringify(member) },
    },
    spec: {
      holderIdentity: member.transaction,
      leaseDurationSeconds: ttlSeconds,
      acquireTime: microTime(member.admittedAt),
      renewTime: microTime(member.admittedAt),
    },
  };
}

/** Reads a lock Lease back; undefined when it is not one of kubetx's locks. */
export function lockFromLease(lease: KubeObject): LockRecord | undefined {
  const raw = lease.metadata?.annotations?.[ANNOTATION_MEMBER];
  const name = lease.metadata?.name;
  if (!raw || !name) return undefined;
  try {
    return { name, resourceVersion: lease.metadata?.resourceVersion ?? "", member: JSON.parse(raw) as Member };
  } catch {
    return undefined;
  }
}

export function heartbeatLease(transaction: string, holder: string, ttlSeconds: number, nowMs: number): KubeObject {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: heartbeatName(transaction), labels: { [LABEL_ROLE]: HEARTBEAT_ROLE, [LABEL_TRANSACTION]: transaction } },
    spec: { holderIdentity: holder, leaseDurationSeconds: ttlSeconds, acquireTime: microTime(nowMs), renewTime: microTime(nowMs) },
  };
}

export function closingName(transaction: string): string {
  return `cl-${transaction}`;
}

/** How the resolver decided to close a transaction: what it does again if its move was lost. */
export interface Closing {
  readonly next: "Verifying" | "RollingBack";
  readonly reason: string;
  readonly message?: string;
  /** For a close because the transaction went quiet: what it had seen when it decided (resolver.ts closeOpen). */
  readonly basis?: QuietBasis;
}

/**
 * What a close by the quiet window was decided on: the record's
 * lastActivity token and the Lease revision its lock count reflected. A
 * write that changed either before the closing mark existed joined after
 * the decision (chaos F23).
 */
export interface QuietBasis {
  readonly lastActivity: string;
  readonly countedAt: string;
}

/**
 * The mark the resolver writes before it moves a transaction out of Open.
 * It is a Lease beside the locks, so one watch delivers both in the order
 * etcd wrote them: admission, having written a lock, waits until its cache
 * holds that lock, and then knows whether the close began before it
 * (Coordinator.closedMeanwhile). Created once; the garbage collector
 * removes it a while after the transaction resolved (gc.ts).
 */
export function closingLease(transaction: string, holder: string, closing: Closing): KubeObject {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: closingName(transaction),
      labels: { [LABEL_ROLE]: CLOSING_ROLE, [LABEL_TRANSACTION]: transaction },
      annotations: { [ANNOTATION_CLOSING]: JSON.stringify(closing) },
    },
    spec: { holderIdentity: holder },
  };
}

/** The decision a closing mark holds; undefined for a Lease that is none. */
export function closingFromLease(lease: KubeObject): Closing | undefined {
  const raw = lease.metadata?.annotations?.[ANNOTATION_CLOSING];
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<Closing>;
    if ((parsed.next !== "Verifying" && parsed.next !== "RollingBack") || typeof parsed.reason !== "string") return undefined;
    const basis = parsed.basis;
    return {
      next: parsed.next,
      reason: parsed.reason,
      ...(typeof parsed.message === "string" ? { message: parsed.message } : {}),
      ...(typeof basis?.lastActivity === "string" && typeof basis.countedAt === "string" ? { basis: { lastActivity: basis.lastActivity, countedAt: basis.countedAt } } : {}),
    };
  } catch {
    return undefined;
  }
}
