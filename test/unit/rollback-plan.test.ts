/** Which write restores which member: planned from the member, its journal entry and the live object. */
import { applyPatch } from "rfc6902";
import type { Operation } from "rfc6902";
import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../src/kube/types.ts";
import type { Member } from "../../src/locks/record.ts";
import { planRestore, userIntent } from "../../src/rollback/plan.ts";
import type { MemberOperation } from "../../src/transactions/model.ts";

const REF = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" };
const OBJECT_PATH = "/api/v1/namespaces/shop/configmaps/settings";
const COLLECTION_PATH = "/api/v1/namespaces/shop/configmaps";

function member(operation: MemberOperation, extra: Partial<Member> = {}): Member {
  return { transaction: "t-0a1b2c3d", ref: REF, kind: "ConfigMap", operation, user: "alice", requestUid: "req-1", admittedAt: 0, ...extra };
}

/** What the apiserver returns: user content plus the fields it sets itself. */
function served(data: Record<string, string>, meta: Record<string, unknown>, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "settings", namespace: "shop", uid: "uid-1", creationTimestamp: "2026-01-01T00:00:00Z",
      managedFields: [{ manager: "kubectl", operation: "Apply" }], ...meta,
    },
    data,
    ...extra,
  };
}

const preImage = served({ mode: "old", keep: "yes" }, { resourceVersion: "10", labels: { app: "shop" }, annotations: { owner: "team-a" } });

describe("planRestore: CREATE", () => {
  const created = member("CREATE", { createdUid: "uid-new" });

  it("deletes the created object with a uid precondition", () => {
    const live = served({ mode: "new" }, { uid: "uid-new", resourceVersion: "11" });
    expect(planRestore(created, undefined, live)).toEqual({ kind: "delete", path: OBJECT_PATH, uid: "uid-new", resourceVersion: "11" });
  });

  it("does nothing when the created object is gone", () => {
    expect(planRestore(created, undefined, undefined)).toMatchObject({ kind: "none" });
  });

  it("does nothing to an object of the same name with another uid", () => {
    const live = served({ mode: "new" }, { uid: "uid-someone-else", resourceVersion: "12" });
    const action = planRestore(created, undefined, live);
    expect(action.kind).toBe("none");
    expect(action.kind === "none" ? action.reason : "").toContain("uid-someone-else");
  });
});

describe("planRestore: UPDATE undoes what the transaction changed", () => {
  const updated = member("UPDATE", { oldResourceVersion: "10" });
  /** The transaction changed a value, added a key, a label and an annotation, and removed a key. */
  const written = served(
    { mode: "new", added: "by-tx" },
    {
      resourceVersion: "17", generation: 2,
      labels: { app: "shop", tier: "added" },
      annotations: { owner: "team-a", "kubetx.io/transaction": "t-0a1b2c3d" },
    },
  );
  const entry = { pre: preImage, post: written };

  function patchOf(action: ReturnType<typeof planRestore>): Operation[] {
    if (action.kind !== "patch") throw new Error(`expected a patch, got ${JSON.stringify(action)}`);
    return action.ops as Operation[];
  }

  function restore(live: KubeObject, journal = entry): KubeObject {
    const restored = structuredClone(live);
    const results = applyPatch(restored, patchOf(planRestore(updated, journal, live)));
    expect(results.every((r) => r === null)).toBe(true);
    return restored;
  }

  it("guards the patch with a test of the live resourceVersion as its first operation", () => {
    const action = planRestore(updated, entry, written);
    expect(action).toMatchObject({ kind: "patch", path: OBJECT_PATH });
    expect(patchOf(action)[0]).toEqual({ op: "test", path: "/metadata/resourceVersion", value: "17" });
  });

  it("yields the pre-image's data, labels and annotations when applied to the object as the transaction left it", () => {
    const restored = restore(written);
    expect(restored.data).toEqual({ mode: "old", keep: "yes" });
    expect(restored.metadata?.labels).toEqual({ app: "shop" });
    expect(restored.metadata?.annotations).toEqual({ owner: "team-a" });
  });

  it("keeps a change someone else made since to a path the transaction did not touch", () => {
    const later = served({ mode: "new", added: "by-tx", other: "by-controller" }, { ...written.metadata, resourceVersion: "18", labels: { app: "shop", tier: "added", scaled: "yes" } });
    const restored = restore(later);
    expect(restored.data).toEqual({ mode: "old", keep: "yes", other: "by-controller" });
    expect(restored.metadata?.labels).toEqual({ app: "shop", scaled: "yes" });
  });

  it("reports a path both the transaction and someone else changed as a conflict and leaves their value", () => {
    const later = served({ mode: "someone-else", added: "by-tx" }, { ...written.metadata, resourceVersion: "18" });
    const action = planRestore(updated, entry, later);
    expect(action).toMatchObject({ kind: "patch", conflicts: ["data.mode"] });
    const restored = restore(later);
    expect(restored.data).toEqual({ mode: "someone-else", keep: "yes" });
  });

  it("keeps an autoscaler's replicas and a controller's status while restoring the image the transaction changed", () => {
    const deployment = (rv: string, image: string, replicas: number, ready: number): KubeObject => ({
      apiVersion: "apps/v1", kind: "Deployment",
      metadata: { name: "web", namespace: "shop", uid: "uid-d", resourceVersion: rv },
      spec: { replicas, template: { spec: { containers: [{ name: "web", image }] } } },
      status: { readyReplicas: ready },
    });
    const ref = { ...REF, group: "apps", resource: "deployments", name: "web" };
    const before = deployment("10", "nginx:1", 2, 2);
    const afterWrite = deployment("11", "nginx:2", 2, 2);
    const scaled = deployment("14", "nginx:2", 5, 3);
    const action = planRestore({ ...updated, ref }, { pre: before, post: afterWrite }, scaled);
    const restored = structuredClone(scaled);
    applyPatch(restored, patchOf(action));
    expect(restored.spec).toEqual({ replicas: 5, template: { spec: { containers: [{ name: "web", image: "nginx:1" }] } } });
    expect(restored.status).toEqual({ readyReplicas: 3 });
  });

  it("removes the annotations and labels maps when the transaction added them to an object that had none", () => {
    const bare = served({ mode: "old" }, { resourceVersion: "10" });
    const annotated = served({ mode: "old" }, { resourceVersion: "11", labels: { tier: "x" }, annotations: { "kubetx.io/transaction": "t-0a1b2c3d" } });
    const restored = restore(annotated, { pre: bare, post: annotated });
    expect(restored.metadata).not.toHaveProperty("annotations");
    expect(restored.metadata).not.toHaveProperty("labels");
    expect(restored.data).toEqual({ mode: "old" });
  });

  it("adds back a map the transaction removed whole", () => {
    const stripped = served({ mode: "old", keep: "yes" }, { resourceVersion: "11", labels: { app: "shop" } });
    const restored = restore(stripped, { pre: preImage, post: stripped });
    expect(restored.metadata?.annotations).toEqual({ owner: "team-a" });
  });

  it("never writes server-set fields or status in the patch", () => {
    const ops = patchOf(planRestore(updated, { pre: { ...preImage, status: { a: 1 } }, post: written }, { ...written, status: { a: 2 } })).slice(1);
    const touched = ops.map((op) => op.path);
    expect(touched.some((p) => /^\/(status|metadata\/(resourceVersion|uid|generation|managedFields|creationTimestamp))/.test(p))).toBe(false);
  });

  it("fails the guard when applied to a version newer than the one it was planned from", () => {
    const newer = structuredClone(written);
    newer.metadata = { ...newer.metadata, resourceVersion: "18" };
    const results = applyPatch(newer, patchOf(planRestore(updated, entry, written)));
    expect(results[0]).not.toBeNull();
  });

  it("does nothing when every path the transaction changed already has its value from before", () => {
    const unchanged = served({ mode: "old", keep: "yes" }, { resourceVersion: "12", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    expect(planRestore(updated, entry, unchanged)).toMatchObject({ kind: "none" });
  });

  it("does not re-create an object someone else deleted after the transaction updated it, and says so", () => {
    expect(planRestore(updated, entry, undefined)).toMatchObject({ kind: "conflict", reason: expect.stringContaining("someone else deleted") as unknown });
  });

  it("restores the whole object from an entry journalled before post-images were kept", () => {
    const restored = restore(written, { pre: preImage } as typeof entry);
    expect(restored.data).toEqual({ mode: "old", keep: "yes" });
  });

  it("is impossible without a journal entry once the object changed", () => {
    const action = planRestore(updated, undefined, written);
    expect(action.kind).toBe("impossible");
    expect(action.kind === "impossible" ? action.reason : "").toMatch(/no journal entry/);
  });

  it("does nothing without a journal entry when the object never changed (the write never happened)", () => {
    expect(planRestore(updated, undefined, served({ mode: "old" }, { resourceVersion: "10" }))).toMatchObject({ kind: "none" });
  });
});

describe("planRestore: DELETE", () => {
  const deleted = member("DELETE", { oldResourceVersion: "10" });
  const entry = { pre: preImage, post: null };

  it("re-creates the object from the pre-image stripped of uid, resourceVersion, creationTimestamp and managedFields", () => {
    const action = planRestore(deleted, entry, undefined);
    expect(action.kind).toBe("create");
    if (action.kind !== "create") return;
    expect(action.collectionPath).toBe(COLLECTION_PATH);
    for (const field of ["uid", "resourceVersion", "creationTimestamp", "managedFields"]) expect(action.body.metadata).not.toHaveProperty(field);
    expect(action.body.metadata).toEqual({ name: "settings", namespace: "shop", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    expect(action.body.data).toEqual({ mode: "old", keep: "yes" });
  });

  it("re-creates the object it deleted when the create that followed was refused: the journal's post-image is only what that create asked for (chaos F15)", () => {
    const refusedCreate = { metadata: { name: "settings", namespace: "shop" }, data: { mode: "new" } };
    const action = planRestore(deleted, { pre: preImage, post: refusedCreate }, undefined);
    expect(action.kind).toBe("create");
    expect(action.kind === "create" ? action.body.data : undefined).toEqual({ mode: "old", keep: "yes" });
  });

  it("is impossible while the object waits on finalizers, and says so", () => {
    const terminating = served({ mode: "old" }, { resourceVersion: "11", deletionTimestamp: "2026-01-01T00:01:00Z", finalizers: ["example.com/cleanup"] });
    const action = planRestore(deleted, entry, terminating);
    expect(action.kind).toBe("impossible");
    expect(action.kind === "impossible" ? action.reason : "").toMatch(/finalizers.*example\.com\/cleanup/);
  });

  it("does nothing when the object is still there and not being deleted", () => {
    expect(planRestore(deleted, entry, served({ mode: "old" }, { resourceVersion: "10" }))).toEqual({ kind: "none", reason: "the delete did not persist" });
  });

  it("is impossible without a journal entry once the object is gone", () => {
    expect(planRestore(deleted, undefined, undefined)).toMatchObject({ kind: "impossible" });
  });
});

describe("planRestore: one object written twice in a transaction", () => {
  it("delete then create (replace --force): removes the transaction's copy by its uid and re-creates the original", () => {
    const copy = served({ mode: "new" }, { uid: "uid-2", resourceVersion: "20" });
    const action = planRestore(member("DELETE", { oldResourceVersion: "10" }), { pre: preImage, post: copy }, copy);
    expect(action).toMatchObject({ kind: "recreate", path: OBJECT_PATH, uid: "uid-2", collectionPath: COLLECTION_PATH });
    expect(action.kind === "recreate" ? action.body.data : undefined).toEqual({ mode: "old", keep: "yes" });
  });

  it("delete then create, then someone else replaced the object: their object stays", () => {
    const copy = served({ mode: "new" }, { uid: "uid-2", resourceVersion: "20" });
    const theirs = served({ mode: "theirs" }, { uid: "uid-3", resourceVersion: "25" });
    expect(planRestore(member("DELETE"), { pre: preImage, post: copy }, theirs)).toMatchObject({ kind: "conflict" });
  });

  it("create then update: deletes the object it created", () => {
    const live = served({ mode: "newer" }, { uid: "uid-new", resourceVersion: "21" });
    expect(planRestore(member("CREATE", { createdUid: "uid-new" }), { pre: null, post: live }, live)).toEqual({ kind: "delete", path: OBJECT_PATH, uid: "uid-new", resourceVersion: "21" });
  });

  it("update then an update another webhook refused: undoes the first, which is what the object holds (chaos F17)", () => {
    const first = served({ mode: "first", keep: "yes" }, { resourceVersion: "11", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    const refused = served({ mode: "second", keep: "no" }, { resourceVersion: "11", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    const action = planRestore(member("UPDATE"), { pre: preImage, post: refused, posts: [first, refused] }, first);
    expect(action).toMatchObject({ kind: "patch", conflicts: [] });
    const live = structuredClone(first);
    expect(applyPatch(live, (action.kind === "patch" ? action.ops : []) as Operation[]).every((error) => error === null)).toBe(true);
    expect(live.data).toEqual({ mode: "old", keep: "yes" });
  });

  it("update then a delete another webhook refused: still undoes the update", () => {
    const first = served({ mode: "first", keep: "yes" }, { resourceVersion: "11", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    const action = planRestore(member("UPDATE"), { pre: preImage, post: null, posts: [first, null] }, first);
    expect(action).toMatchObject({ kind: "patch", ops: expect.arrayContaining([{ op: "replace", path: "/data/mode", value: "old" }]) as unknown });
  });

  it("update then a delete that persisted: re-creates the object", () => {
    const first = served({ mode: "first", keep: "yes" }, { resourceVersion: "11" });
    expect(planRestore(member("UPDATE"), { pre: preImage, post: null, posts: [first, null] }, undefined)).toMatchObject({ kind: "create", collectionPath: COLLECTION_PATH });
  });

  it("two updates: a path someone else changed after both is still a conflict", () => {
    const first = served({ mode: "first", keep: "yes" }, { resourceVersion: "11", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    const second = served({ mode: "second", keep: "yes" }, { resourceVersion: "12", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    const theirs = served({ mode: "theirs", keep: "yes" }, { resourceVersion: "13", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    expect(planRestore(member("UPDATE"), { pre: preImage, post: second, posts: [first, second] }, theirs)).toMatchObject({ kind: "none", conflicts: ["data.mode"] });
  });

  it("create then delete: nothing to do", () => {
    expect(planRestore(member("CREATE", { createdUid: "uid-new" }), { pre: null, post: null }, undefined)).toMatchObject({ kind: "none" });
  });
});

describe("userIntent", () => {
  it("strips status and every server-set metadata field, keeping what a user writes", () => {
    const object = served({ a: "1" }, {
      resourceVersion: "5", generation: 3, deletionTimestamp: "2026-01-01T00:00:00Z", deletionGracePeriodSeconds: 30, selfLink: "/x",
      labels: { app: "x" }, annotations: { note: "y" }, finalizers: ["f"], ownerReferences: [{ uid: "o" }],
    }, { status: { phase: "Active" } });
    expect(userIntent(object)).toEqual({
      apiVersion: "v1", kind: "ConfigMap", data: { a: "1" },
      metadata: { name: "settings", namespace: "shop", labels: { app: "x" }, annotations: { note: "y" }, finalizers: ["f"], ownerReferences: [{ uid: "o" }] },
    });
  });

  it("leaves its input untouched", () => {
    const object = served({ a: "1" }, { resourceVersion: "5" }, { status: { phase: "Active" } });
    const copy = structuredClone(object);
    userIntent(object);
    expect(object).toEqual(copy);
  });
});
