/**
 * Whether an admitted write really persisted: pure, over the member, its
 * journal entry and the live object. Used where the apiserver's own
 * outcome of the request (the audit sink) is not available.
 */
import { createHash } from "node:crypto";
import type { StoredEntry } from "../journal/journal.ts";
import type { KubeObject } from "../kube/types.ts";
import type { Member } from "../locks/record.ts";
import { changedPaths, deepEqual, valueAt } from "../rollback/diff.ts";
import { createdByPrepared, imagesOf, userIntent } from "../rollback/plan.ts";

/** A digest of what a user wrote, independent of key order and server-set fields. */
export function intentDigest(object: KubeObject): string {
  return createHash("sha256").update(canonical(userIntent(object))).digest("hex");
}

/** What a committed create's member summary keeps of intentDigest: 128 bits, a record holds up to a thousand. */
export function committedDigest(object: KubeObject): string {
  return intentDigest(object).slice(0, 32);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The live object shows the member's last admitted write: a deleted object
 * is gone (or going, or replaced); a written one has the uid it was written
 * with and, on every path the transaction changed, the value it wrote. A
 * path someone else changed again since counts as not persisted: the
 * rollback then leaves their value (a conflict), so nothing is lost.
 */
export function persisted(member: Member, entry: StoredEntry | undefined, live: KubeObject | undefined): boolean {
  return !entry && member.prepared ? preparedPersisted(member, live) : journalledPersisted(member, entry, live);
}

function journalledPersisted(member: Member, entry: StoredEntry | undefined, live: KubeObject | undefined): boolean {
  const images = imagesOf(member, entry);
  if (!images || images.post === undefined) return legacyPersisted(member, live);
  const ours = images.pre?.metadata?.uid ?? member.createdUid;
  if (images.post === null) return live === undefined || Boolean(live.metadata?.deletionTimestamp) || live.metadata?.uid !== ours;
  return writePersisted(images.pre, images.post, live);
}

/** A create admitted from memory left no journal entry and no uid: the object that carries the transaction's annotation is its. */
function preparedPersisted(member: Member, live: KubeObject | undefined): boolean {
  return createdByPrepared(member, live) && !live.metadata?.deletionTimestamp;
}

function writePersisted(pre: KubeObject | null, post: KubeObject, live: KubeObject | undefined): boolean {
  const uid = live?.metadata?.uid;
  if (!live || (post.metadata?.uid && uid !== post.metadata.uid)) return false;
  if (pre === null || pre.metadata?.uid !== uid) return true;
  const [before, after, now] = [userIntent(pre), userIntent(post), userIntent(live)];
  return changedPaths(before, after).every((path) => deepEqual(valueAt(now, path), valueAt(after, path)));
}

/** Members journalled without a post-image: a new resourceVersion, or the admitted content. */
function legacyPersisted(member: Member, live: KubeObject | undefined): boolean {
  switch (member.operation) {
    case "CREATE":
      return live !== undefined && live.metadata?.uid === member.createdUid;
    case "UPDATE":
      return live !== undefined && (live.metadata?.resourceVersion !== member.oldResourceVersion || intentDigest(live) === member.admittedDigest);
    case "DELETE":
      return live === undefined || Boolean(live.metadata?.deletionTimestamp);
  }
}
