/**
 * Which write restores which member: a pure function of the member, its
 * journal entry (the object before the transaction and after its last
 * admitted write) and the live object.
 *
 * A rollback undoes what the transaction changed, not the whole object: for
 * each path the transaction's write changed, a live value still equal to
 * what the transaction wrote is set back; a value someone else changed
 * since (a controller, an autoscaler's /scale, an exempt user) is a
 * conflict, reported and left as it is. Paths the transaction did not touch
 * (status, replicas set by an autoscaler) are never written. Every write is
 * guarded by the live object's resourceVersion or uid, so a plan made from
 * a read that is no longer true fails instead of overwriting.
 */
import type { JournalEntry, StoredEntry } from "../journal/journal.ts";
import type { KubeObject, ObjectMeta, ObjectRef, PatchOperation } from "../kube/types.ts";
import { resourcePath } from "../kube/types.ts";
import type { Member } from "../locks/record.ts";
import { ANNOTATION_TRANSACTION } from "../kube/vocabulary.ts";
import type { Path } from "./diff.ts";
import { changedPaths, deepEqual, describePath, pointer, valueAt } from "./diff.ts";

export type RestoreAction =
  | { readonly kind: "none"; readonly reason: string; readonly conflicts?: readonly string[] }
  /** Preconditions uid and resourceVersion: the object exactly as read, nothing written since. */
  | { readonly kind: "delete"; readonly path: string; readonly uid: string; readonly resourceVersion?: string }
  | { readonly kind: "patch"; readonly path: string; readonly ops: PatchOperation[]; readonly conflicts: readonly string[] }
  | { readonly kind: "create"; readonly collectionPath: string; readonly body: KubeObject }
  /** The transaction deleted and re-created the object: remove its copy (by uid), then put the original back. */
  | { readonly kind: "recreate"; readonly path: string; readonly uid: string; readonly resourceVersion?: string; readonly collectionPath: string; readonly body: KubeObject }
  /** Someone else's change to the whole object (deleted it, replaced it) wins; nothing is written. */
  | { readonly kind: "conflict"; readonly reason: string }
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

/**
 * The member's journal entry as planning needs it: a member created by the
 * transaction needs none (its uid is in the lock); `post` is undefined only
 * for entries journalled before post-images were kept.
 */
export interface Images {
  readonly pre: KubeObject | null;
  /** The last admitted write's image. */
  readonly post: KubeObject | null | undefined;
  /**
   * Every admitted write's image, oldest first (only `post` when there was
   * one write). Any of them may be what the object holds: a later write
   * admitted by kubetx can still be refused by another webhook (chaos F17).
   */
  readonly posts: readonly (KubeObject | null)[];
}

export function imagesOf(member: Member, entry: StoredEntry | undefined): Images | undefined {
  if (entry) return { pre: entry.pre, post: entry.post, posts: entry.posts ?? (entry.post === undefined ? [] : [entry.post]) };
  if (member.operation === "CREATE") {
    const post = { metadata: { ...(member.createdUid ? { uid: member.createdUid } : {}) } };
    return { pre: null, post, posts: [post] };
  }
  return undefined;
}

/** The images of the writes that left an object (not its delete). */
export function written(images: Images): KubeObject[] {
  return images.posts.filter((post): post is KubeObject => post !== null);
}

/** The first journal entry of a write: what admission stores before it allows the write. */
export function firstEntry(operation: Member["operation"], oldObject: KubeObject | undefined, object: KubeObject | undefined): JournalEntry {
  return { pre: operation === "CREATE" ? null : (oldObject ?? null), post: operation === "DELETE" ? null : (object ?? null) };
}

export function planRestore(member: Member, entry: StoredEntry | undefined, live: KubeObject | undefined): RestoreAction {
  const images = imagesOf(member, entry);
  if (!images) {
    return live?.metadata?.resourceVersion === member.oldResourceVersion
      ? { kind: "none", reason: "the write never happened (no journal entry, object unchanged)" }
      : { kind: "impossible", reason: "no journal entry for an object that existed before the transaction" };
  }
  if (images.pre === null) return planUndoCreate(member, images, live);
  return planUndoChange(member, { ...images, pre: images.pre }, live);
}

/**
 * Whether `live` is the object a prepared create of `member` made
 * (locks/record.ts Member.prepared): admitted from memory, its uid was
 * never recorded, but the object did not exist when the transaction locked
 * it, and only a write naming the transaction carries its annotation.
 */
export function createdByPrepared(member: Member, live: KubeObject | undefined): live is KubeObject {
  return member.prepared === true && member.operation === "CREATE" && live?.metadata?.annotations?.[ANNOTATION_TRANSACTION] === member.transaction;
}

function planUndoCreate(member: Member, images: Images, live: KubeObject | undefined): RestoreAction {
  if (!live) return { kind: "none", reason: "the created object does not exist" };
  const uid = live.metadata?.uid;
  const ours = [member.createdUid, ...written(images).map((post) => post.metadata?.uid), ...(createdByPrepared(member, live) ? [uid] : [])].filter(Boolean);
  if (!uid || !ours.includes(uid)) return { kind: "none", reason: `the live object (uid ${uid ?? "?"}) is not the one this transaction created` };
  return { kind: "delete", path: objectPath(member.ref), uid, ...versionOf(live) };
}

function versionOf(live: KubeObject): { resourceVersion?: string } {
  return live.metadata?.resourceVersion ? { resourceVersion: live.metadata.resourceVersion } : {};
}

function planUndoChange(member: Member, images: Images & { pre: KubeObject }, live: KubeObject | undefined): RestoreAction {
  const { ref } = member;
  const { pre, post } = images;
  if (!live) return planWhenGone(member, images);
  const preUid = pre.metadata?.uid;
  if (preUid && live.metadata?.uid !== preUid) return planWhenReplaced(ref, pre, images, live);
  if (live.metadata?.deletionTimestamp) {
    return { kind: "impossible", reason: `the object is being deleted and waits on finalizers ${JSON.stringify(live.metadata.finalizers ?? [])}; it cannot be restored until they finish` };
  }
  if (post === undefined) return planWholeObject(ref, pre, live);
  const posts = written(images);
  if (posts.length === 0) return { kind: "none", reason: "the delete did not persist" };
  return planThreeWay(ref, { pre, posts, live });
}

/**
 * Gone: re-created when the transaction deleted it (or may have: old
 * entries), left alone when someone else did. A transaction that deleted
 * the object in any of its writes is what removed it, whatever its other
 * writes were: the post-image of a create that followed is only what that
 * create asked for, and another webhook may have refused it (chaos F15).
 */
function planWhenGone(member: Member, images: Images & { pre: KubeObject }): RestoreAction {
  const deleted = member.operation === "DELETE" || images.post === undefined || images.posts.includes(null);
  if (deleted) return { kind: "create", collectionPath: collectionPath(member.ref), body: userIntent(images.pre) };
  return { kind: "conflict", reason: "someone else deleted the object after this transaction wrote it; it is not re-created" };
}

/** Another object of the same name: the transaction's own copy (delete then create) is swapped back, anyone else's stays. */
function planWhenReplaced(ref: ObjectRef, pre: KubeObject, images: Images, live: KubeObject): RestoreAction {
  const liveUid = live.metadata?.uid;
  if (liveUid && written(images).some((post) => post.metadata?.uid === liveUid)) {
    return { kind: "recreate", path: objectPath(ref), uid: liveUid, ...versionOf(live), collectionPath: collectionPath(ref), body: userIntent(pre) };
  }
  return { kind: "conflict", reason: `someone else replaced the object (uid ${liveUid ?? "?"}) after this transaction; it is left as it is` };
}

/**
 * Restores each path the transaction changed whose live value is still one
 * the transaction wrote. With several writes, any of them may be the one
 * the object shows: a later one may have been refused after kubetx
 * admitted it.
 */
export function planThreeWay(ref: ObjectRef, objects: { pre: KubeObject; posts: readonly KubeObject[]; live: KubeObject }): RestoreAction {
  const [pre, live] = [userIntent(objects.pre), userIntent(objects.live)];
  const posts = objects.posts.map(userIntent);
  const ops: PatchOperation[] = [];
  const conflicts: string[] = [];
  for (const path of writtenPaths(pre, posts)) {
    const [was, now] = [valueAt(pre, path), valueAt(live, path)];
    if (deepEqual(now, was)) continue;
    if (!posts.some((post) => deepEqual(now, valueAt(post, path)))) {
      conflicts.push(describePath(path));
      continue;
    }
    ops.push(...restoreOps(live, path, was));
  }
  if (ops.length === 0) {
    return conflicts.length > 0
      ? { kind: "none", reason: `someone else changed ${conflicts.join(", ")} since; left as they are`, conflicts }
      : { kind: "none", reason: "the object already has its values from before the transaction" };
  }
  return { kind: "patch", path: objectPath(ref), ops: [guard(objects.live), ...ops], conflicts };
}

/**
 * The paths the transaction wrote whose live value is none of the values
 * it wrote: what someone changed since (or put back). Pure; the question
 * `kubectl tx undo` asks of an updated member before it reverts it.
 */
export function changedSinceWritten(objects: { pre: KubeObject; posts: readonly KubeObject[]; live: KubeObject }): Path[] {
  const [pre, live] = [userIntent(objects.pre), userIntent(objects.live)];
  const posts = objects.posts.map(userIntent);
  return writtenPaths(pre, posts).filter((path) => !posts.some((post) => deepEqual(valueAt(live, path), valueAt(post, path))));
}

/**
 * Every path one of the writes changed from the pre-image; where one
 * write changed a path and another a path inside it, only the outer one
 * (both are restored or left whole).
 */
export function writtenPaths(pre: KubeObject, posts: readonly KubeObject[]): Path[] {
  const all = new Map<string, Path>();
  for (const post of posts) for (const path of changedPaths(pre, post)) all.set(JSON.stringify(path), path);
  const paths = [...all.values()];
  const inside = (path: Path, outer: Path): boolean => outer.length < path.length && outer.every((key, i) => path[i] === key);
  return paths.filter((path) => !paths.some((outer) => inside(path, outer)));
}

/**
 * The operations that put `was` back at `path`. A parent the transaction
 * removed whole is added back whole, so every op's parent exists.
 */
function restoreOps(live: KubeObject, path: Path, was: unknown): PatchOperation[] {
  if (was === undefined) return [{ op: "remove", path: pointer(path) }];
  let depth = 1;
  while (depth < path.length && valueAt(live, path.slice(0, depth)) !== undefined) depth += 1;
  if (depth < path.length) {
    const parent = path.slice(0, depth);
    const rebuilt: Record<string, unknown> = {};
    let cursor = rebuilt;
    for (const key of path.slice(depth, -1)) cursor = (cursor[key] = {});
    cursor[path.at(-1) ?? ""] = was;
    return [{ op: "add", path: pointer(parent), value: rebuilt }];
  }
  return [{ op: valueAt(live, path) === undefined ? "add" : "replace", path: pointer(path), value: was }];
}

/** Entries journalled before post-images were kept: the whole object goes back to its pre-image. */
function planWholeObject(ref: ObjectRef, pre: KubeObject, live: KubeObject): RestoreAction {
  if (live.metadata?.resourceVersion === pre.metadata?.resourceVersion) return { kind: "none", reason: "the update did not persist" };
  return planThreeWay(ref, { pre, posts: [live], live });
}

function guard(live: KubeObject): PatchOperation {
  return { op: "test", path: "/metadata/resourceVersion", value: live.metadata?.resourceVersion };
}
