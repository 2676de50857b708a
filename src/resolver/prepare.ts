/**
 * The prepare phase of a `kubectl tx apply` (prepared transactions,
 * docs/prepared-transactions.md): before kubectl runs, kubetx locks every
 * object of the apply that does not exist yet, so that each one's create is
 * admitted from memory (Coordinator.admitPrepared) and a lock held by
 * another transaction fails the apply before anything is written.
 *
 * Only creates are prepared. An object that exists is written as an update,
 * which joins the usual way on its own request path (its pre-image is
 * journalled there, from the review's oldObject); the prepare only looks
 * at its lock, so that one another transaction holds fails the apply
 * before anything is written, as a held create lock does. An object is prepared
 * only where the write itself would join: a namespace a policy covers for
 * the requester (by the groups kubetx's webhook checked on the record), a
 * kind the apiserver serves, and a create RBAC lets the requester make;
 * anything else is left to admission, so a prepare never locks an object
 * its requester could not have locked by writing it.
 */
import type { KubeClient } from "../kube/index.ts";
import { Conflict } from "../kube/index.ts";
import { readMany } from "./read-many.ts";
import type { Discovery } from "../kube/discovery.ts";
import type { Subject } from "../kube/identity.ts";
import type { ObjectRef } from "../kube/types.ts";
import { describeRef, resourcePath } from "../kube/types.ts";
import type { LockRecord, Member } from "../locks/record.ts";
import type { LockStore } from "../locks/store.ts";
import type { Limits } from "../policy/policy.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { AccessChecks } from "../transactions/access.ts";
import { keepsLocks } from "../transactions/coordinator.ts";
import type { LockedTiming } from "../transactions/locked.ts";
import { lockedMessage } from "../transactions/locked.ts";
import type { PrepareRef, Transaction } from "../transactions/model.ts";
import type { TransactionStore } from "../transactions/store.ts";
import { userLimitRefusal } from "../transactions/user-limits.ts";
import { mapLimit } from "./concurrency.ts";

/** Reads and lock creates made at once: 100 objects prepare in a few round trips' time. */
const PARALLEL_PREPARE = 32;
/** From this many objects of one kind in one namespace, whether they exist is read by one list of names instead of a read each. */
const LIST_FROM = 4;

export interface PrepareDeps {
  readonly client: KubeClient;
  readonly store: TransactionStore;
  readonly locks: LockStore;
  readonly discovery: Discovery;
  readonly access: AccessChecks;
  /** Whether a policy covers writes of `requester` to this namespace and resource (admission/scope.ts policyMode). */
  readonly covered: (target: { namespace: string; group: string; resource: string }, requester: Subject) => Promise<boolean>;
  readonly limits: () => Limits;
  readonly lockedTiming: () => LockedTiming;
  readonly clock: Clock;
}

export type PrepareOutcome =
  | { readonly kind: "prepared"; readonly locks: readonly LockRecord[] }
  /** `failure` for the record: the transaction rolls back, nothing was written. */
  | { readonly kind: "refused"; readonly failure: string };

/** Whether the resolver still has to prepare `tx`: asked for, not done, not failing. */
export function awaitsPrepare(tx: Transaction): boolean {
  return tx.spec.mode === "plugin" && tx.spec.prepare !== undefined && !tx.status?.prepared && !tx.status?.failure && (tx.status?.phase ?? "Open") === "Open";
}

/**
 * Locks the objects of `tx`'s apply that may be prepared. Idempotent: a
 * replica that takes over a prepare half done finds its locks already the
 * transaction's. Each lock is taken after the object was found absent (by a
 * consistent read: a list from the watch cache could miss an object created
 * a moment ago, whose update kubectl then makes would be refused); an
 * object created in between (by someone kubetx does not stop) is caught
 * when kubectl writes it (Coordinator: a prepared create lock takes no
 * update of an object the transaction did not create).
 */
export async function prepareTransaction(deps: PrepareDeps, id: string, tx: Transaction): Promise<PrepareOutcome> {
  const requester: Subject = { username: tx.spec.user, groups: tx.spec.prepare?.groups ?? [] };
  const wanted = await mapLimit(unique(tx.spec.prepare?.members ?? []), PARALLEL_PREPARE, (ref) => preparable(deps, ref, requester));
  const { absent: refs, present } = await byExistence(deps.client, wanted.filter((r): r is Candidate => r !== undefined));
  const held = await heldElsewhere(deps, id, present);
  if (held) return { kind: "refused", failure: held };
  const tooMany = await refuseOverLimits(deps, id, tx.spec.user, refs.length);
  if (tooMany) return { kind: "refused", failure: tooMany };
  const now = deps.clock.now();
  const taken = await mapLimit(refs, PARALLEL_PREPARE, (c) => lockFor(deps, { transaction: id, ref: c.ref, kind: c.kind, operation: "CREATE", user: tx.spec.user, requestUid: `prepare/${id}`, admittedAt: now, prepared: true }));
  const refused = taken.find((t): t is { failure: string } => "failure" in t);
  if (refused) return { kind: "refused", failure: refused.failure };
  return { kind: "prepared", locks: taken.flatMap((t) => ("lock" in t ? [t.lock] : [])) };
}

interface Candidate {
  readonly ref: ObjectRef;
  readonly kind: string;
}

function unique(refs: readonly PrepareRef[]): PrepareRef[] {
  const seen = new Map<string, PrepareRef>();
  for (const ref of refs) seen.set(JSON.stringify([ref.apiVersion, ref.kind, ref.namespace ?? "", ref.name]), ref);
  return [...seen.values()];
}

/** The object as a member would name it, if its create would join and it does not exist. */
async function preparable(deps: PrepareDeps, wanted: PrepareRef, requester: Subject): Promise<Candidate | undefined> {
  if (!wanted.name || !wanted.namespace) return undefined;
  const resource = await deps.discovery.resourceOf(wanted.apiVersion, wanted.kind);
  // Cluster-scoped writes never join a transaction (admission/scope.ts).
  if (!resource?.namespaced) return undefined;
  const ref: ObjectRef = { group: resource.group, version: resource.version, resource: resource.resource, namespace: wanted.namespace, name: wanted.name };
  if (!(await deps.covered({ namespace: wanted.namespace, group: ref.group, resource: ref.resource }, requester))) return undefined;
  if (!(await deps.access.mayCreate(requester, ref))) return undefined;
  return { ref, kind: wanted.kind };
}

/** The candidates whose objects do not exist, and those that do (read-many.ts: a hundred of one kind in one namespace, one call). */
async function byExistence(client: KubeClient, candidates: readonly Candidate[]): Promise<{ absent: Candidate[]; present: Candidate[] }> {
  const found = await readMany(client, candidates.map((c) => c.ref), { listFrom: LIST_FROM, parallel: PARALLEL_PREPARE });
  const exists = (c: Candidate): boolean => found.get(resourcePath(c.ref)) !== undefined;
  return { absent: candidates.filter((c) => !exists(c)), present: candidates.filter(exists) };
}

/**
 * Why the apply would fail at an update: an object of it that exists is
 * locked by another transaction that keeps its locks. Looked at, not
 * locked (the update locks on its own request path): a lock taken after
 * this look still fails that write, and the transaction rolls back.
 */
async function heldElsewhere(deps: PrepareDeps, id: string, present: readonly Candidate[]): Promise<string | undefined> {
  const locks = await mapLimit(present, PARALLEL_PREPARE, (c) => deps.locks.lockNow(c.ref));
  for (const lock of locks) {
    if (!lock || lock.member.transaction === id) continue;
    const holder = await deps.store.get(lock.member.transaction);
    if (holder && keepsLocks(holder)) return heldBy({ ref: lock.member.ref, transaction: id }, lock, holder, deps.lockedTiming());
  }
  return undefined;
}

/** The policy's limits, as a write that takes this many new locks would meet them (coordinator.ts checks them per write). */
async function refuseOverLimits(deps: PrepareDeps, id: string, user: string, count: number): Promise<string | undefined> {
  const limits = deps.limits();
  if (count > limits.maxMembers) return `its apply has ${count} objects, more than the policy's limit of ${limits.maxMembers} members`;
  const usage = await deps.locks.heldBy(user);
  const mine = usage.transactions.has(id);
  const refusal = userLimitRefusal({ user, transaction: id, usage: { ...usage, locks: usage.locks + Math.max(0, count - 1) }, alreadyOpen: mine, limits });
  return refusal?.failure;
}

/** Takes one lock: new, already the transaction's, or taken over from a transaction that no longer keeps it. */
async function lockFor(deps: PrepareDeps, member: Member): Promise<{ lock: LockRecord } | { failure: string }> {
  const result = await deps.locks.acquire(member);
  if (result.kind !== "held") return { lock: result.lock };
  const holder = await deps.store.get(result.lock.member.transaction);
  if (holder && keepsLocks(holder)) return { failure: heldBy(member, result.lock, holder, deps.lockedTiming()) };
  try {
    return { lock: await deps.locks.takeOver(result.lock, member) };
  } catch (error) {
    if (!(error instanceof Conflict)) throw error;
    return { failure: `${describeRef(member.ref)} was locked by another transaction at the same moment` };
  }
}

function heldBy(member: Pick<Member, "ref" | "transaction">, lock: LockRecord, holder: Transaction, timing: LockedTiming): string {
  const message = lockedMessage({ ref: member.ref, transaction: member.transaction, dryRun: true, lock, holder }, timing);
  return `it could not be prepared: ${message} Nothing was written`;
}
