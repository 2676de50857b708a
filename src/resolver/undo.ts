/**
 * `kubectl tx undo`: reverts a committed transaction from its kept journal,
 * as a transaction of its own. Refused, with every changed object listed,
 * when a member changed since the commit where the undo would write over
 * someone else's change (changedSinceCommit), when the journal is gone, or when the user
 * may not make one of the writes themselves (kubetx never writes on a
 * user's behalf what their RBAC forbids).
 */
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { getIfExists, userMay } from "../kube/index.ts";
import { describeRef } from "../kube/types.ts";
import type { Journal, JournalEntry, StoredEntry } from "../journal/journal.ts";
import type { LockRecord, Member } from "../locks/record.ts";
import type { LockStore } from "../locks/store.ts";
import { restoreMember } from "../rollback/apply.ts";
import type { Operation } from "rfc6902";
import { applyPatch } from "rfc6902";
import { changedSinceWritten, objectPath, planRestore } from "../rollback/plan.ts";
import { describePath } from "../rollback/diff.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { MemberOperation, MemberSummary, Transaction } from "../transactions/model.ts";
import { committedDigest } from "../transactions/verify.ts";

export type UndoPlan =
  | { readonly kind: "refused"; readonly message: string; readonly members: MemberSummary[] }
  | { readonly kind: "ready"; readonly steps: readonly UndoStep[] };

export interface UndoStep {
  /** The original member, as restore planning needs it. */
  readonly original: Member;
  /** The member as the committed record lists it: what "unchanged since the commit" is checked against. */
  readonly committed: MemberSummary;
  /** The original transaction's journal entry for the member (none for a create). */
  readonly entry: StoredEntry | undefined;
  readonly live: KubeObject | undefined;
}

/** The write that reverts each kind of member, and the RBAC verb it needs. */
const INVERSE: Readonly<Record<MemberOperation, { op: MemberOperation; verb: string }>> = {
  CREATE: { op: "DELETE", verb: "delete" },
  UPDATE: { op: "UPDATE", verb: "patch" },
  DELETE: { op: "CREATE", verb: "create" },
};

/**
 * How the object is no longer as the committed transaction left it, if it
 * is not. Pure. A deleted member must still be gone; a created one must be
 * the very object, at the commit's resourceVersion or with the spec it had
 * then (createChanged: its journal keeps no image to compare with). An
 * updated one must be the same object with
 * every path the transaction wrote still holding a value it wrote: what
 * others changed elsewhere since (a controller's status, a label) does not
 * refuse the undo, which keeps it, as a rollback does.
 */
export function changedSinceCommit(member: MemberSummary, entry: StoredEntry | undefined, live: KubeObject | undefined): string | undefined {
  if (member.operation === "DELETE") return live === undefined ? undefined : `${CHANGED} (it exists again)`;
  if (!live) return `${CHANGED} (it is gone)`;
  if (member.uid && live.metadata?.uid !== member.uid) return `${CHANGED} (it was replaced)`;
  if (live.metadata?.resourceVersion === member.resourceVersion) return undefined;
  return member.operation === "UPDATE" ? updateChanged(entry, live) : createChanged(member, live);
}

const CHANGED = "changed since the commit";

/**
 * A created member written since the commit: its undo deletes it, which is
 * safe while nobody changed its spec. Kinds that keep metadata.generation
 * (Deployments, Jobs, custom resources with a status) move it for the spec
 * (a Deployment's annotations too), not for a controller's status; for
 * others (a ConfigMap) the object must be as the commit left it, by its
 * digest (so a later transaction that wrote it and was rolled back leaves
 * it undoable); without a digest (a commit before digests) any write counts.
 */
function createChanged(member: MemberSummary, live: KubeObject): string | undefined {
  if (live.metadata?.deletionTimestamp) return CHANGED;
  if (member.generation === undefined) return member.digest !== undefined && committedDigest(live) === member.digest ? undefined : CHANGED;
  const generation = live.metadata?.generation;
  return generation === member.generation ? undefined : `${CHANGED} (metadata.generation ${member.generation}, now ${generation ?? "none"}: its spec changed)`;
}

/** An updated member written since the commit: changed only where the transaction wrote, by the journal's images. */
function updateChanged(entry: StoredEntry | undefined, live: KubeObject): string | undefined {
  if (!entry?.pre || entry.post === undefined || live.metadata?.deletionTimestamp) return CHANGED;
  const posts = (entry.posts ?? [entry.post]).filter((post): post is KubeObject => post !== null);
  const paths = changedSinceWritten({ pre: entry.pre, posts, live });
  return paths.length === 0 ? undefined : `${CHANGED} (${paths.slice(0, 5).map(describePath).join(", ")})`;
}

export interface UndoDeps {
  readonly client: KubeClient;
  readonly journal: Journal;
  readonly locks: LockStore;
  readonly clock: Clock;
}

export async function planUndo(deps: UndoDeps, undo: Transaction, original: Transaction | undefined): Promise<UndoPlan> {
  const refusal = originalProblem(undo, original);
  if (refusal || !original) return { kind: "refused", message: refusal ?? "", members: [] };
  const originalId = original.metadata?.name ?? "";
  const steps: UndoStep[] = [];
  const problems: MemberSummary[] = [];
  for (const m of original.status?.members ?? []) {
    const [live, entry] = await Promise.all([getIfExists(deps.client, objectPath(m)), m.operation === "CREATE" ? undefined : deps.journal.read(originalId, m)]);
    const problem = await stepProblem(deps, undo, { member: m, live, entry });
    if (problem) problems.push({ ...m, outcome: "Failed", message: problem });
    else steps.push({ original: asMember(original, m), committed: m, entry, live });
  }
  if (problems.length === 0) return { kind: "ready", steps };
  return { kind: "refused", message: `cannot undo ${originalId}: ${problems.map((p) => `${describeRef(p)} ${p.message ?? ""}`).join("; ")}`, members: problems };
}

function originalProblem(undo: Transaction, original: Transaction | undefined): string | undefined {
  const id = undo.spec.undoOf ?? "?";
  if (!original) return `transaction ${id} does not exist`;
  if (original.spec.user !== undo.spec.user) return `transaction ${id} belongs to ${original.spec.user}; you may only undo your own transactions`;
  // An undo keeps no journal for later: its own entries go with it.
  if (original.spec.mode === "undo") return `transaction ${id} is itself an undo (of ${original.spec.undoOf ?? "?"}); to redo that, apply your manifests again`;
  const phase = original.status?.phase ?? "Open";
  return phase === "Committed" ? undefined : `transaction ${id} is ${phase}; only a committed transaction can be undone`;
}

async function stepProblem(deps: UndoDeps, undo: Transaction, at: { member: MemberSummary; live: KubeObject | undefined; entry: StoredEntry | undefined }): Promise<string | undefined> {
  const { member, live, entry } = at;
  if (member.operation !== "CREATE" && !entry) return "has no journal entry any more (the policy's journalRetentionSeconds passed)";
  const changed = changedSinceCommit(member, entry, live);
  if (changed) return changed;
  const verb = INVERSE[member.operation].verb;
  return (await userMay(deps.client, undo.spec.user, { verb, group: member.group, version: member.version, resource: member.resource, ...(member.namespace ? { namespace: member.namespace } : {}), name: member.name })) ? undefined : `may not be ${verb === "patch" ? "patched" : `${verb}d`} by ${undo.spec.user} (RBAC)`;
}

/** The undo's own member for a step: locks it, and lets the generic rollback revert the undo if it fails halfway. */
export function undoMember(undoId: string, step: UndoStep, nowMs: number): Member {
  const { original, live } = step;
  const base = { transaction: undoId, ref: original.ref, kind: original.kind, user: original.user, requestUid: `undo-${undoId}`, admittedAt: nowMs };
  const op = INVERSE[original.operation].op;
  return { ...base, operation: op, ...(live?.metadata?.resourceVersion ? { oldResourceVersion: live.metadata.resourceVersion } : {}) };
}

function asMember(original: Transaction, m: MemberSummary): Member {
  return {
    transaction: original.metadata?.name ?? "",
    ref: { group: m.group, version: m.version, resource: m.resource, name: m.name, ...(m.namespace ? { namespace: m.namespace } : {}) },
    kind: m.kind ?? "",
    operation: m.operation,
    user: original.spec.user,
    requestUid: "",
    admittedAt: 0,
    ...(m.operation === "CREATE" && m.uid ? { createdUid: m.uid } : {}),
  };
}

/**
 * Runs the plan: lock every object first, then check again that each is
 * unchanged since the commit (the check planUndo made was before the
 * locks, and someone may have written since), journal, revert. Returns
 * the locks and, when it stopped, why.
 */
export async function executeUndo(deps: UndoDeps, undoId: string, planned: readonly UndoStep[]): Promise<{ locks: LockRecord[]; failure?: string }> {
  const locks: LockRecord[] = [];
  for (const step of planned) {
    const result = await deps.locks.acquire(undoMember(undoId, step, deps.clock.now()));
    if (result.kind === "held") return { locks, failure: `${describeRef(step.original.ref)} is locked by transaction ${result.lock.member.transaction}` };
    locks.push(result.lock);
  }
  const steps = await recheck(deps, planned);
  if (typeof steps === "string") return { locks, failure: steps };
  for (const step of steps) await deps.journal.record(undoId, step.original.ref, undoEntry(step));
  for (const [i, step] of steps.entries()) {
    const failure = await revert(deps, undoId, step);
    if (failure) return { locks, failure };
    const created = step.original.operation === "DELETE" ? await getIfExists(deps.client, objectPath(step.original.ref)) : undefined;
    const lock = locks[i];
    if (created?.metadata?.uid && lock) locks[i] = await deps.locks.takeOver(lock, { ...lock.member, createdUid: created.metadata.uid });
  }
  return { locks };
}

/** Writes one step's pre-commit state back; why it could not, if it could not. */
async function revert(deps: UndoDeps, undoId: string, step: UndoStep): Promise<string | undefined> {
  const outcome = await restoreMember(deps.client, step.original, step.entry, { transaction: undoId });
  if (outcome.kind === "impossible") return `${describeRef(step.original.ref)}: ${outcome.detail}`;
  // An undo is all or nothing: a field someone changed since the recheck fails it (and the undo's own writes go back).
  if (outcome.kind === "conflict") return `${describeRef(step.original.ref)}: ${outcome.detail}`;
  if ((outcome.kind === "restored" || outcome.kind === "unchanged") && outcome.conflicts?.length) {
    return `${describeRef(step.original.ref)} changed since the commit (${outcome.conflicts.join(", ")})`;
  }
  // Thrown, as an apiserver error always was here: the undo's caller handles it.
  if (outcome.kind === "retry") throw new Error(`${describeRef(step.original.ref)}: ${outcome.detail}`);
  return undefined;
}

/** Each step with its object read again under the lock, or why the undo cannot go on. */
async function recheck(deps: UndoDeps, planned: readonly UndoStep[]): Promise<UndoStep[] | string> {
  const steps: UndoStep[] = [];
  for (const step of planned) {
    const live = await getIfExists(deps.client, objectPath(step.original.ref));
    const changed = changedSinceCommit(step.committed, step.entry, live);
    if (changed) return `${describeRef(step.original.ref)} ${changed}; nothing was undone`;
    steps.push({ ...step, live });
  }
  return steps;
}

/**
 * The undo's own journal entry for a step: the object as the commit left
 * it (and others since), and as the undo will leave it. Pure. An update's
 * undo patches back only what the transaction changed, so its post-image
 * is the live object with that patch applied, others' changes kept: what
 * the rollback of an undo that fails halfway compares with.
 */
export function undoEntry(step: UndoStep): JournalEntry {
  const { operation } = step.original;
  if (operation === "CREATE") return { pre: step.live ?? null, post: null };
  return { pre: step.live ?? null, post: operation === "UPDATE" && step.live ? undone(step, step.live) : (step.entry?.pre ?? null) };
}

function undone(step: UndoStep, live: KubeObject): KubeObject | null {
  const action = planRestore(step.original, step.entry, live);
  if (action.kind === "none") return live;
  if (action.kind !== "patch") return step.entry?.pre ?? null;
  const after = structuredClone(live);
  // kube/types.ts PatchOperation is RFC 6902's shape; rfc6902 types each op by its name.
  return applyPatch(after, action.ops as Operation[]).every((error) => error === null) ? after : (step.entry?.pre ?? null);
}
