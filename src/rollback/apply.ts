/** Carries out a restore plan against the API, re-planning when the object changes underneath. */
import type { StoredEntry } from "../journal/journal.ts";
import type { KubeClient, KubeObject, RequestOptions } from "../kube/index.ts";
import { AlreadyExists, Conflict, Invalid, NotFound, getIfExists, isTransient } from "../kube/index.ts";
import type { Member } from "../locks/record.ts";
import type { Attempt, RetryOptions } from "../kube/retry.ts";
import { retry } from "../kube/retry.ts";
import { restoreUserAgent } from "../kube/vocabulary.ts";
import type { RestoreAction } from "./plan.ts";
import type { WriteConfirmation } from "./confirm.ts";
import { objectPath, planRestore } from "./plan.ts";

/**
 * A controller writing status can change the object between a read and
 * its guarded write, again and again during a rollout: re-read with
 * backoff for up to ten seconds before calling the restore impossible.
 */
const RESTORE_RETRY = { attempts: 20, deadlineMs: 10_000, initialDelayMs: 10, maxDelayMs: 1_000 };

export type RestoreOutcome =
  | { readonly kind: "restored"; readonly action: "delete" | "patch" | "create" | "recreate"; readonly detail: string; readonly conflicts?: readonly string[] }
  | { readonly kind: "unchanged"; readonly detail: string; readonly conflicts?: readonly string[] }
  /** Someone else's change to the object won; nothing was written. */
  | { readonly kind: "conflict"; readonly detail: string }
  | { readonly kind: "impossible"; readonly detail: string }
  /** The apiserver could not take the write for now (a 5xx or 429, or no answer, until the retries ran out): a later pass tries again. */
  | { readonly kind: "retry"; readonly detail: string }
  /** This coordinator no longer leads the transaction, or the lock moved on: it stops and writes nothing. */
  | { readonly kind: "fenced"; readonly detail: string };

/**
 * Checked before each attempt reads the object: the restore goes on only
 * while this coordinator still leads the transaction and the member's lock
 * is still the transaction's. Every write is then guarded by the object as
 * that attempt read it, so a coordinator paused after the check cannot
 * overwrite anything written since.
 */
export type RestoreFence = () => Promise<string | undefined>;

/** What a rollback checks before it writes: `fence` before each attempt, `confirm` before a planned write (see confirm.ts). */
export interface RestoreGuards {
  readonly fence?: RestoreFence;
  readonly confirm?: WriteConfirmation;
  /** RESTORE_RETRY unless a test says otherwise. */
  readonly retry?: RetryOptions;
  /** The transaction the writes are made for, named in their User-Agent (restoreUserAgent): the member's own unless an undo's. */
  readonly transaction?: string;
}

export async function restoreMember(client: KubeClient, member: Member, entry: StoredEntry | undefined, guards: RestoreGuards = {}): Promise<RestoreOutcome> {
  let transient = false;
  const result = await retry(guards.retry ?? RESTORE_RETRY, async (): Promise<Attempt<RestoreOutcome>> => {
    try {
      const { fenced, live } = await fencedRead(client, member, guards.fence);
      if (fenced) return { done: true, value: { kind: "fenced", detail: fenced } };
      const action = planRestore(member, entry, live);
      const refused = await unconfirmed(action, guards.confirm);
      if (refused) return { done: true, value: refused };
      return { done: true, value: await execute(client, action, { userAgent: restoreUserAgent(guards.transaction ?? member.transaction) }) };
    } catch (error) {
      // Re-read and planned again: the object changed under the guard, or the apiserver (or a webhook it calls) failed for now.
      if (!isRace(error) && !isTransient(error)) throw error;
      transient = !isRace(error);
      return { done: false, why: error instanceof Error ? error.message : String(error) };
    }
  });
  if (result.done) return result.value;
  return transient
    ? { kind: "retry", detail: `the apiserver could not take the write for now: ${result.why}` }
    : { kind: "impossible", detail: `the object kept changing during the restore: ${result.why}` };
}

/**
 * The fence and the object's read, side by side: one round trip instead of
 * two per attempt. The fence answering after the read is as strong as
 * before it: the lock is still the one the transaction took (same
 * resourceVersion), so no other transaction wrote the object in between,
 * and the write is guarded by the object as read either way. A read that
 * fails on a fenced attempt is dropped, not thrown.
 */
async function fencedRead(client: KubeClient, member: Member, fence: RestoreFence | undefined): Promise<{ fenced?: string; live?: KubeObject }> {
  const [fenced, read] = await Promise.allSettled([fence?.(), getIfExists(client, objectPath(member.ref))]);
  if (fenced.status === "rejected") throw fenced.reason;
  if (fenced.value) return { fenced: fenced.value };
  if (read.status === "rejected") throw read.reason;
  return read.value ? { live: read.value } : {};
}

/** A planned write kubetx cannot confirm the member's own write for: written nothing, reported as impossible (its transaction ends Failed). */
async function unconfirmed(action: RestoreAction, confirm: WriteConfirmation | undefined): Promise<RestoreOutcome | undefined> {
  if (!confirm || !WRITES.has(action.kind)) return undefined;
  const verdict = await confirm(action);
  return verdict.confirmed ? undefined : { kind: "impossible", detail: verdict.detail };
}

const WRITES: ReadonlySet<RestoreAction["kind"]> = new Set(["delete", "patch", "create", "recreate"]);

/**
 * A guard that failed because the object changed between the read and the
 * write: a precondition (409), a JSON Patch whose `test` failed (the
 * apiserver answers 422, often with only "the server rejected our request
 * due to an error in our request"), or the object appearing or going away.
 * Each is re-read and planned again; a patch that is invalid for another
 * reason fails every attempt and ends as impossible, with the message.
 */
function isRace(error: unknown): error is Error {
  if (error instanceof Invalid) return error.method === "PATCH";
  return error instanceof Conflict || error instanceof AlreadyExists || error instanceof NotFound;
}

/** `as`: the request options every write carries (its User-Agent). */
async function execute(client: KubeClient, action: RestoreAction, as: RequestOptions): Promise<RestoreOutcome> {
  switch (action.kind) {
    case "none":
      return { kind: "unchanged", detail: action.reason, ...(action.conflicts?.length ? { conflicts: action.conflicts } : {}) };
    case "conflict":
      return { kind: "conflict", detail: action.reason };
    case "impossible":
      return { kind: "impossible", detail: action.reason };
    case "delete":
      await client.delete(action.path, { ...as, ...deleteOptions(action) });
      return { kind: "restored", action: "delete", detail: "deleted the object this transaction created" };
    case "patch":
      await client.jsonPatch(action.path, action.ops, as);
      return {
        kind: "restored", action: "patch",
        detail: `restored what this transaction changed (${action.ops.length - 1} patch operations)${action.conflicts.length ? `; kept changes someone else made since to ${action.conflicts.join(", ")}` : ""}`,
        ...(action.conflicts.length ? { conflicts: action.conflicts } : {}),
      };
    case "create":
      await client.create(action.collectionPath, action.body, as);
      return { kind: "restored", action: "create", detail: "re-created the object from its pre-image" };
    case "recreate":
      await client.delete(action.path, { ...as, ...deleteOptions(action) });
      await client.create(action.collectionPath, action.body, as);
      return { kind: "restored", action: "recreate", detail: "removed the copy this transaction created and re-created the original from its pre-image" };
  }
}

/** Background propagation: the garbage collector removes what the object owns (a Deployment's ReplicaSets and Pods). */
function deleteOptions(action: { uid: string; resourceVersion?: string }): { body: unknown } {
  const preconditions = { uid: action.uid, ...(action.resourceVersion ? { resourceVersion: action.resourceVersion } : {}) };
  return { body: { preconditions, propagationPolicy: "Background" } };
}
