/**
 * Which write restores which member: a pure function of the member, its
 * journalled pre-image and the live object.
 */
import { createPatch } from "rfc6902";
import type { KubeObject, ObjectMeta, ObjectRef, PatchOperation } from "../kube/types.ts";
import { resourcePath } from "../kube/types.ts";
import type { Member } from "../locks/record.ts";

export type RestoreAction =
  | { readonly kind: "none"; readonly reason: string }
  | { readonly kind: "delete"; readonly path: string; readonly uid: string }
  | { readonly kind: "patch"; readonly path: string; readonly ops: PatchOperation[] }
  | { readonly kind: "create"; readonly collectionPath: string; readonly body: KubeObject }
  | { readonly kind: "impossible"; readonly reason: string };

/** Fields the apiserver sets; a restore neither compares nor writes them. */
const SERVER_SET_METADATA: readonly (keyof ObjectMeta)[] = [
  "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "managedFields",
];
const SERVER_SET_EXTRA = ["selfLink", "deletionGracePeriodSeconds"];

export function objectPath(ref: ObjectRef): string {
  return resourcePath(ref);
}

export function collectionPath(ref: ObjectRef): string {
  return resourcePath({ group: ref.group, version: ref.version, resource: ref.resource, ...(ref.namespace ? { namespace: ref.namespace } : {}) });
}

/** The object as a user would write it: no server-set metadata, no status. */
export function userIntent(object: KubeObject): KubeObject {
  const { status: _status, metadata = {}, ...rest } = object;
  const meta: Record<string, unknown> = { ...metadata };
  for (const field of [...SERVER_SET_METADATA, ...SERVER_SET_EXTRA]) delete meta[field];
  return { ...rest, metadata: meta };
}

export function planRestore(member: Member, preImage: KubeObject | undefined, live: KubeObject | undefined): RestoreAction {
  switch (member.operation) {
    case "CREATE":
      return planUndoCreate(member, live);
    case "UPDATE":
      return planUndoUpdate(member, preImage, live);
    case "DELETE":
      return planUndoDelete(member, preImage, live);
  }
}

function planUndoCreate(member: Member, live: KubeObject | undefined): RestoreAction {
  if (!live) return { kind: "none", reason: "the created object does not exist" };
  const uid = live.metadata?.uid;
  if (!member.createdUid || uid !== member.createdUid) {
    return { kind: "none", reason: `the live object (uid ${uid ?? "?"}) is not the one this transaction created` };
  }
  return { kind: "delete", path: objectPath(member.ref), uid: member.createdUid };
}

function planUndoUpdate(member: Member, preImage: KubeObject | undefined, live: KubeObject | undefined): RestoreAction {
  if (!preImage) {
    return live?.metadata?.resourceVersion === member.oldResourceVersion
      ? { kind: "none", reason: "the write never happened (no journal entry, object unchanged)" }
      : { kind: "impossible", reason: "no journalled pre-image for an updated object" };
  }
  if (!live) return { kind: "create", collectionPath: collectionPath(member.ref), body: userIntent(preImage) };
  if (live.metadata?.resourceVersion === preImage.metadata?.resourceVersion) {
    return { kind: "none", reason: "the update did not persist" };
  }
  const ops = createPatch(userIntent(live), userIntent(preImage)) as PatchOperation[];
  if (ops.length === 0) return { kind: "none", reason: "the live object already equals its pre-image" };
  const guard: PatchOperation = { op: "test", path: "/metadata/resourceVersion", value: live.metadata?.resourceVersion };
  return { kind: "patch", path: objectPath(member.ref), ops: [guard, ...ops] };
}

function planUndoDelete(member: Member, preImage: KubeObject | undefined, live: KubeObject | undefined): RestoreAction {
  if (live && !live.metadata?.deletionTimestamp) return { kind: "none", reason: "the delete did not persist" };
  if (live) {
    return { kind: "impossible", reason: `the object is being deleted and waits on finalizers ${JSON.stringify(live.metadata?.finalizers ?? [])}; it cannot be restored until they finish` };
  }
  if (!preImage) return { kind: "impossible", reason: "no journalled pre-image for a deleted object" };
  return { kind: "create", collectionPath: collectionPath(member.ref), body: userIntent(preImage) };
}
