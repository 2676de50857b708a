/**
 * kubectl tx undo, in its pure parts: whether a committed member is still
 * as the transaction left it, which write reverts it, and the refusals that
 * need nothing but the two Transaction records.
 */
import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../src/kube/types.ts";
import type { Member } from "../../src/locks/record.ts";
import type { UndoDeps, UndoStep } from "../../src/resolver/undo.ts";
import type { StoredEntry } from "../../src/journal/journal.ts";
import { changedSinceCommit, planUndo, undoEntry, undoMember } from "../../src/resolver/undo.ts";
import type { MemberOperation, MemberSummary, Phase, Transaction } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";
import { committedDigest } from "../../src/transactions/verify.ts";

const REF = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" };
const ORIGINAL_ID = "t-0a1b2c3d";
const UNDO_ID = "t-undo1234";
const NOW = 1_750_000_000_000;

function committed(operation: MemberOperation, extra: Partial<MemberSummary> = {}): MemberSummary {
  return { ...REF, kind: "ConfigMap", operation, outcome: "Committed", ...extra };
}

function live(resourceVersion: string, uid = "uid-1"): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: REF.name, namespace: REF.namespace, uid, resourceVersion } };
}

function withData(object: KubeObject, data: Record<string, string>): KubeObject {
  return { ...object, data };
}

function step(operation: MemberOperation, liveObject: KubeObject | undefined): UndoStep {
  const original: Member = { transaction: ORIGINAL_ID, ref: REF, kind: "ConfigMap", operation, user: "alice", requestUid: "", admittedAt: 0 };
  return { original, committed: committed(operation), entry: undefined, live: liveObject };
}

const changed = (member: MemberSummary, object: KubeObject | undefined, entry?: StoredEntry): string | undefined => changedSinceCommit(member, entry, object);

describe("changedSinceCommit: a created or updated member", () => {
  it.each<MemberOperation>(["CREATE", "UPDATE"])("is unchanged after %s when resourceVersion and uid are as committed", (operation) => {
    expect(changed(committed(operation, { uid: "uid-1", resourceVersion: "42" }), live("42", "uid-1"))).toBeUndefined();
  });

  it.each<MemberOperation>(["CREATE", "UPDATE"])("has changed after %s when someone wrote it since and no journal tells what (another resourceVersion)", (operation) => {
    expect(changed(committed(operation, { uid: "uid-1", resourceVersion: "42" }), live("43", "uid-1"))).toBe("changed since the commit");
  });

  it.each<MemberOperation>(["CREATE", "UPDATE"])("has changed after %s when it was deleted and re-created (another uid)", (operation) => {
    expect(changed(committed(operation, { uid: "uid-1", resourceVersion: "42" }), live("42", "uid-2"))).toBe("changed since the commit (it was replaced)");
  });

  it.each<MemberOperation>(["CREATE", "UPDATE"])("has changed after %s when it is gone", (operation) => {
    expect(changed(committed(operation, { uid: "uid-1", resourceVersion: "42" }), undefined)).toBe("changed since the commit (it is gone)");
  });

  it("has changed when the commit recorded no resourceVersion to compare with, and no journal tells what", () => {
    expect(changed(committed("UPDATE", { uid: "uid-1" }), live("42", "uid-1"))).toBe("changed since the commit");
  });

  it("is judged by resourceVersion alone when the commit recorded no uid", () => {
    expect(changed(committed("UPDATE", { resourceVersion: "42" }), live("42", "uid-anything"))).toBeUndefined();
  });
});

describe("changedSinceCommit: a created member of a kind that keeps metadata.generation", () => {
  const member = committed("CREATE", { uid: "uid-1", resourceVersion: "42", generation: 1 });
  const at = (resourceVersion: string, generation?: number): KubeObject => {
    const object = live(resourceVersion);
    return { ...object, metadata: { ...object.metadata, ...(generation === undefined ? {} : { generation }) } };
  };

  it("is unchanged when only its status moved since (the same generation)", () => {
    expect(changed(member, at("57", 1))).toBeUndefined();
  });

  it("has changed, saying so, when someone changed its spec (a later generation)", () => {
    expect(changed(member, at("57", 2))).toBe("changed since the commit (metadata.generation 1, now 2: its spec changed)");
    expect(changed(member, at("57"))).toBe("changed since the commit (metadata.generation 1, now none: its spec changed)");
  });

  it("has changed when the commit recorded no generation (a ConfigMap), or it is being deleted", () => {
    expect(changed(committed("CREATE", { uid: "uid-1", resourceVersion: "42" }), at("57", 1))).toBe("changed since the commit");
    const deleting = at("57", 1);
    deleting.metadata = { ...deleting.metadata, deletionTimestamp: "2026-12-02T15:00:00Z" };
    expect(changed(member, deleting)).toBe("changed since the commit");
  });
});

describe("changedSinceCommit: a created member of a kind that keeps no generation, judged by its digest", () => {
  const asCommitted = { ...withData(live("42"), { level: "new" }), metadata: { ...live("42").metadata, labels: { app: "web" } } };
  const member = committed("CREATE", { uid: "uid-1", resourceVersion: "42", digest: committedDigest(asCommitted) });

  it("is unchanged when written since but as the commit left it (a later transaction wrote it and was rolled back)", () => {
    const putBack = { ...asCommitted, metadata: { ...asCommitted.metadata, resourceVersion: "57", managedFields: [{ manager: "kubetx" }] } };
    expect(changed(member, putBack)).toBeUndefined();
  });

  it("has changed when its data or metadata someone set differ, or it is being deleted", () => {
    expect(changed(member, { ...asCommitted, data: { level: "edited" }, metadata: { ...asCommitted.metadata, resourceVersion: "57" } })).toBe("changed since the commit");
    expect(changed(member, { ...asCommitted, metadata: { ...asCommitted.metadata, resourceVersion: "57", labels: { app: "other" } } })).toBe("changed since the commit");
    expect(changed(member, { ...asCommitted, metadata: { ...asCommitted.metadata, resourceVersion: "57", deletionTimestamp: "2026-12-03T15:00:00Z" } })).toBe("changed since the commit");
  });
});

describe("changedSinceCommit: an updated member, judged by the paths its transaction wrote", () => {
  const pre = withData(live("40"), { level: "old", keep: "x" });
  const post = withData(live("42"), { level: "new", keep: "x" });
  const entry: StoredEntry = { pre, post, posts: [post] };
  const member = committed("UPDATE", { uid: "uid-1", resourceVersion: "42" });

  it("is unchanged when only what the transaction did not write changed since (a label, a status)", () => {
    const later = { ...withData(live("57"), { level: "new", keep: "x" }), status: { ready: true } };
    later.metadata = { ...later.metadata, labels: { team: "ops" } };
    expect(changed(member, later, entry)).toBeUndefined();
  });

  it("has changed, naming the path, when someone changed a value the transaction wrote", () => {
    expect(changed(member, withData(live("57"), { level: "edited", keep: "x" }), entry)).toBe("changed since the commit (data.level)");
  });

  it("has changed when someone put the value from before back", () => {
    expect(changed(member, withData(live("57"), { level: "old", keep: "x" }), entry)).toBe("changed since the commit (data.level)");
  });

  it("is unchanged when the object holds the value of any of the transaction's writes (a later one may have been refused)", () => {
    const second = withData(live("44"), { level: "newer", keep: "x" });
    expect(changed(member, withData(live("57"), { level: "new", keep: "x" }), { pre, post: second, posts: [post, second] })).toBeUndefined();
  });

  it("has changed when the object is being deleted", () => {
    const deleting = withData(live("57"), { level: "new", keep: "x" });
    deleting.metadata = { ...deleting.metadata, deletionTimestamp: "2026-12-02T15:00:00Z" };
    expect(changed(member, deleting, entry)).toBe("changed since the commit");
  });
});

describe("changedSinceCommit: a deleted member", () => {
  it("is unchanged while the object is still gone", () => {
    expect(changed(committed("DELETE"), undefined)).toBeUndefined();
  });

  it("has changed once an object of that name exists again", () => {
    expect(changed(committed("DELETE", { resourceVersion: "42", uid: "uid-1" }), live("50", "uid-9"))).toBe("changed since the commit (it exists again)");
  });
});

describe("undoEntry: the undo's own journal entry", () => {
  const pre = withData(live("40"), { level: "old" });
  const post = withData(live("42"), { level: "new" });
  const now = { ...withData(live("57"), { level: "new", extra: "kept" }), metadata: { ...live("57").metadata, labels: { team: "ops" } } };

  it("records as its post-image the object with only what the transaction changed put back", () => {
    const entry = undoEntry({ ...step("UPDATE", now), entry: { pre, post, posts: [post] } });
    expect(entry.pre).toEqual(now);
    expect(entry.post).toEqual({ ...now, data: { level: "old", extra: "kept" } });
  });

  it("records nothing after a created member (the undo deletes it) and the pre-image after a deleted one", () => {
    expect(undoEntry(step("CREATE", now))).toEqual({ pre: now, post: null });
    expect(undoEntry({ ...step("DELETE", undefined), entry: { pre, post: null } })).toEqual({ pre: null, post: pre });
  });
});

describe("undoMember", () => {
  it("reverts a CREATE with a DELETE guarded by the live resourceVersion", () => {
    expect(undoMember(UNDO_ID, step("CREATE", live("42")), NOW)).toEqual({
      transaction: UNDO_ID, ref: REF, kind: "ConfigMap", operation: "DELETE", user: "alice",
      requestUid: `undo-${UNDO_ID}`, admittedAt: NOW, oldResourceVersion: "42",
    });
  });

  it("reverts an UPDATE with an UPDATE guarded by the live resourceVersion", () => {
    expect(undoMember(UNDO_ID, step("UPDATE", live("43")), NOW)).toMatchObject({ operation: "UPDATE", oldResourceVersion: "43" });
  });

  it("reverts a DELETE with a CREATE, with no resourceVersion since nothing is there", () => {
    const member = undoMember(UNDO_ID, step("DELETE", undefined), NOW);
    expect(member).toMatchObject({ transaction: UNDO_ID, ref: REF, operation: "CREATE" });
    expect(member).not.toHaveProperty("oldResourceVersion");
  });

  it("belongs to the undo transaction, not to the original", () => {
    const member = undoMember(UNDO_ID, step("UPDATE", live("43")), NOW);
    expect(member.transaction).toBe(UNDO_ID);
    expect(member.admittedAt).toBe(NOW);
  });
});

describe("planUndo: refusals from the records alone", () => {
  /** Refusals about the records themselves happen before any read, write or RBAC check. */
  const noDeps = {} as UndoDeps;

  function undoBy(user: string): Transaction {
    return newTransaction(UNDO_ID, { user, mode: "undo", undoOf: ORIGINAL_ID });
  }

  function original(user: string, phase: Phase): Transaction {
    return { ...newTransaction(ORIGINAL_ID, { user, mode: "transparent" }), status: { phase, members: [committed("UPDATE", { resourceVersion: "1" })] } };
  }

  it("refuses to undo a transaction that does not exist", async () => {
    expect(await planUndo(noDeps, undoBy("alice"), undefined)).toEqual({ kind: "refused", message: `transaction ${ORIGINAL_ID} does not exist`, members: [] });
  });

  it("refuses to undo an undo, saying how to redo instead", async () => {
    const anUndo = original("alice", "Committed");
    anUndo.spec = { ...anUndo.spec, mode: "undo", undoOf: "t-earlier1" };
    const plan = await planUndo(noDeps, undoBy("alice"), anUndo);
    expect(plan).toEqual({ kind: "refused", message: `transaction ${ORIGINAL_ID} is itself an undo (of t-earlier1); to redo that, apply your manifests again`, members: [] });
  });

  it("refuses to undo another user's transaction", async () => {
    const plan = await planUndo(noDeps, undoBy("bob"), original("alice", "Committed"));
    expect(plan.kind).toBe("refused");
    expect(plan.kind === "refused" ? plan.message : "").toContain("belongs to alice");
  });

  it.each<Phase>(["Open", "Verifying", "RollingBack", "RolledBack", "Failed"])("refuses to undo a %s transaction", async (phase) => {
    const plan = await planUndo(noDeps, undoBy("alice"), original("alice", phase));
    expect(plan.kind === "refused" ? plan.message : "").toContain(`is ${phase}; only a committed transaction can be undone`);
  });
});
