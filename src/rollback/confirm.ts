/**
 * Defence in depth for rollback: kubetx writes a journalled pre-image back
 * (or deletes what a member created) only for a write it can confirm came
 * from the apiserver. A review that never did (forged and posted to a
 * kubetx pod where nothing checked the caller) names an object and an
 * `oldObject` of the sender's choosing; without this check a rollback
 * would write that invented pre-image with kubetx's own rights.
 *
 * The evidence is the object as the apiserver stored it at the revision of
 * the member's lock Lease. kubetx creates the lock while the apiserver waits
 * on admission, after it read the object and before it writes it, so a real
 * write's pre-image is what the object was at that revision (and a real
 * create's object did not exist yet). That is read back exactly
 * (`resourceVersionMatch=Exact`, from etcd or the watch cache). An invented
 * pre-image does not match it, nor does a "create" of an object that was
 * already there. Where that history can no longer be read (etcd compacts
 * old revisions after a few minutes) the member's own audit event decides:
 * a success code from the apiserver's audit webhook confirms the write.
 *
 * This relies on lock Leases and the members being stored in one etcd
 * (revisions are comparable); a cluster that keeps Leases in an etcd of
 * their own (--etcd-servers-overrides) reads an unrelated revision, which
 * fails the check (the member's restore is refused and its transaction
 * ends Failed), never passes it by accident unless the object was
 * unchanged over both revisions.
 */
import type { StoredEntry } from "../journal/journal.ts";
import type { KubeClient, KubeObject, ObjectList } from "../kube/index.ts";
import { KubeError } from "../kube/index.ts";
import type { LockRecord, Member } from "../locks/record.ts";
import type { Path } from "./diff.ts";
import { deepEqual, valueAt } from "./diff.ts";
import type { Images, RestoreAction } from "./plan.ts";
import { collectionPath, imagesOf, userIntent, written, writtenPaths } from "./plan.ts";

export type Confirmation = { readonly confirmed: true } | { readonly confirmed: false; readonly detail: string };

/** Asked before a restore writes; answers once per member and pass. */
export type WriteConfirmation = (action: RestoreAction) => Promise<Confirmation>;

/** What the object looked like at the lock's revision: `undefined` when it did not exist, "unreadable" with why. */
export type AtLock = { readonly object: KubeObject | undefined } | { readonly unreadable: string };

const CONFIRMED: Confirmation = { confirmed: true };

/**
 * Pure: whether the object as stored when the lock was taken is where the
 * member's write started from, on everything `action` would write back.
 */
export function startedFrom(member: Member, images: Images, action: RestoreAction, atLock: KubeObject | undefined): Confirmation {
  if (images.pre === null) return createdLater(member, images, action, atLock);
  if (!atLock) return { confirmed: false, detail: "the object did not exist when kubetx locked it, so the journalled pre-image is not what the write started from" };
  const [preUid, uid] = [images.pre.metadata?.uid, atLock.metadata?.uid];
  if (uid !== preUid) return { confirmed: false, detail: `the object had uid ${uid ?? "?"} when kubetx locked it, not the journalled pre-image's ${preUid ?? "?"}` };
  const differs = differingPaths(images.pre, action.kind === "patch" ? written(images) : undefined, atLock);
  if (differs.length === 0) return CONFIRMED;
  const where = differs.map((p) => (p.length ? p.join(".") : "the object")).slice(0, 5).join(", ");
  return { confirmed: false, detail: `the journalled pre-image differs from the object as it was when kubetx locked it (${where})` };
}

/**
 * A create: the object it names must not have existed, with that uid, when
 * the lock was taken; for a prepared create (whose uid was never recorded),
 * not the object the rollback would delete.
 */
function createdLater(member: Member, images: Images, action: RestoreAction, atLock: KubeObject | undefined): Confirmation {
  const deleting = action.kind === "delete" && member.prepared ? [action.uid] : [];
  const ours = [member.createdUid, ...written(images).map((post) => post.metadata?.uid), ...deleting].filter(Boolean);
  const uid = atLock?.metadata?.uid;
  if (!uid || !ours.includes(uid)) return CONFIRMED;
  return { confirmed: false, detail: `the object it names (uid ${uid}) already existed when kubetx locked it, so this transaction did not create it` };
}

/**
 * Where the pre-image and the stored object disagree: on the paths the
 * write changed when a patch puts only those back, on the whole object
 * (as a user writes it) when it is re-created whole.
 */
function differingPaths(pre: KubeObject, posts: readonly KubeObject[] | undefined, atLock: KubeObject): Path[] {
  const [was, stored] = [withoutType(userIntent(pre)), withoutType(userIntent(atLock))];
  const paths: Path[] = posts ? writtenPaths(was, posts.map(userIntent)) : [[]];
  return paths.filter((path) => !deepEqual(valueAt(was, path), valueAt(stored, path)));
}

/**
 * The object without apiVersion and kind: a list's items carry neither
 * (the list names them once), and the type is the one kubetx asked for.
 */
function withoutType(object: KubeObject): KubeObject {
  const { apiVersion: _apiVersion, kind: _kind, ...rest } = object;
  return rest;
}

/**
 * The confirmation for one member of a rollback: the object at the lock's
 * revision, else the member's own request outcome as the audit sink
 * reported it (`reportedCode`). Writes nothing.
 */
export function writeConfirmation(client: KubeClient, lock: LockRecord, entry: StoredEntry | undefined, reportedCode: number | undefined): WriteConfirmation {
  let history: Promise<AtLock> | undefined;
  return async (action) => {
    const images = imagesOf(lock.member, entry);
    if (!images) return { confirmed: false, detail: "no journal entry" };
    history ??= objectAtRevision(client, lock.member, lock.resourceVersion);
    const atLock = await history;
    if ("object" in atLock) {
      const verdict = startedFrom(lock.member, images, action, atLock.object);
      return verdict.confirmed ? verdict : { confirmed: false, detail: `kubetx could not confirm that the apiserver made this write: ${verdict.detail}; nothing was written back` };
    }
    if (reportedCode !== undefined && reportedCode < 400) return CONFIRMED;
    return {
      confirmed: false,
      detail: `kubetx could not confirm that the apiserver made this write: the object's history at the lock's revision cannot be read (${atLock.unreadable}) and the apiserver's audit events did not report the request; nothing was written back`,
    };
  };
}

/** The object exactly as stored at `resourceVersion` (an etcd revision), by a list of one name. */
async function objectAtRevision(client: KubeClient, member: Member, resourceVersion: string): Promise<AtLock> {
  if (!resourceVersion) return { unreadable: "the lock has no resourceVersion" };
  try {
    const list = await client.get<ObjectList>(collectionPath(member.ref), {
      query: { fieldSelector: `metadata.name=${member.ref.name}`, resourceVersion, resourceVersionMatch: "Exact" },
    });
    return { object: list.items[0] };
  } catch (error) {
    if (error instanceof KubeError) return { unreadable: `${error.status} ${error.reason}` };
    throw error;
  }
}
