/** Which write restores which member: planned from the member, its pre-image and the live object. */
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
    expect(planRestore(created, undefined, live)).toEqual({ kind: "delete", path: OBJECT_PATH, uid: "uid-new" });
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

describe("planRestore: UPDATE", () => {
  const updated = member("UPDATE", { oldResourceVersion: "10" });
  /** The transaction changed a value, added a key, a label and an annotation, and removed a key. */
  const live = served(
    { mode: "new", added: "by-tx" },
    {
      resourceVersion: "17", generation: 2,
      labels: { app: "shop", tier: "added" },
      annotations: { owner: "team-a", "kubetx.io/transaction": "t-0a1b2c3d" },
    },
  );

  function patchOf(action: ReturnType<typeof planRestore>): Operation[] {
    if (action.kind !== "patch") throw new Error(`expected a patch, got ${JSON.stringify(action)}`);
    return action.ops as Operation[];
  }

  it("guards the patch with a test of the live resourceVersion as its first operation", () => {
    const action = planRestore(updated, preImage, live);
    expect(action).toMatchObject({ kind: "patch", path: OBJECT_PATH });
    expect(patchOf(action)[0]).toEqual({ op: "test", path: "/metadata/resourceVersion", value: "17" });
  });

  it("yields the pre-image's data, labels and annotations when applied to the live object", () => {
    const restored = structuredClone(live);
    const results = applyPatch(restored, patchOf(planRestore(updated, preImage, live)));
    expect(results.every((r) => r === null)).toBe(true);
    expect(restored.data).toEqual({ mode: "old", keep: "yes" });
    expect(restored.metadata?.labels).toEqual({ app: "shop" });
    expect(restored.metadata?.annotations).toEqual({ owner: "team-a" });
  });

  it("removes the annotations and labels maps when the transaction added them to an object that had none", () => {
    const bare = served({ mode: "old" }, { resourceVersion: "10" });
    const annotated = served({ mode: "old" }, { resourceVersion: "11", labels: { tier: "x" }, annotations: { "kubetx.io/transaction": "t-0a1b2c3d" } });
    const restored = structuredClone(annotated);
    applyPatch(restored, patchOf(planRestore(updated, bare, annotated)));
    expect(restored.metadata).not.toHaveProperty("annotations");
    expect(restored.metadata).not.toHaveProperty("labels");
    expect(restored.data).toEqual({ mode: "old" });
  });

  it("restores a nested spec, including list elements the transaction changed", () => {
    const deployment = (rv: string, image: string, replicas: number, extraContainer = false): KubeObject => ({
      apiVersion: "apps/v1", kind: "Deployment",
      metadata: { name: "web", namespace: "shop", uid: "uid-d", resourceVersion: rv },
      spec: { replicas, template: { spec: { containers: [{ name: "web", image }, ...(extraContainer ? [{ name: "sidecar", image: "envoy" }] : [])] } } },
      status: { readyReplicas: replicas },
    });
    const before = deployment("10", "nginx:1", 2);
    const after = deployment("15", "nginx:2", 5, true);
    const restored = structuredClone(after);
    const results = applyPatch(restored, patchOf(planRestore({ ...updated, ref: { ...REF, group: "apps", resource: "deployments", name: "web" } }, before, after)));
    expect(results.every((r) => r === null)).toBe(true);
    expect(restored.spec).toEqual(before.spec);
  });

  it("never writes server-set fields or status in the patch", () => {
    const ops = patchOf(planRestore(updated, { ...preImage, status: { a: 1 } }, { ...live, status: { a: 2 } })).slice(1);
    const touched = ops.map((op) => op.path);
    expect(touched.some((p) => /^\/(status|metadata\/(resourceVersion|uid|generation|managedFields|creationTimestamp))/.test(p))).toBe(false);
  });

  it("fails the guard when applied to a version newer than the one it was planned from", () => {
    const newer = structuredClone(live);
    newer.metadata = { ...newer.metadata, resourceVersion: "18" };
    const results = applyPatch(newer, patchOf(planRestore(updated, preImage, live)));
    expect(results[0]).not.toBeNull();
  });

  it("does nothing when the live object still has the pre-image's resourceVersion", () => {
    expect(planRestore(updated, preImage, served({ mode: "old", keep: "yes" }, { resourceVersion: "10" }))).toEqual({ kind: "none", reason: "the update did not persist" });
  });

  it("re-creates the object from the pre-image without server-set fields when the object is gone", () => {
    const action = planRestore(updated, { ...preImage, status: { phase: "x" } }, undefined);
    expect(action).toEqual({
      kind: "create",
      collectionPath: COLLECTION_PATH,
      body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop", labels: { app: "shop" }, annotations: { owner: "team-a" } }, data: { mode: "old", keep: "yes" } },
    });
  });

  it("is impossible without a journalled pre-image once the object changed", () => {
    const action = planRestore(updated, undefined, live);
    expect(action.kind).toBe("impossible");
    expect(action.kind === "impossible" ? action.reason : "").toMatch(/pre-image/);
  });

  it("does nothing without a pre-image when the object never changed (the write never happened)", () => {
    expect(planRestore(updated, undefined, served({ mode: "old" }, { resourceVersion: "10" }))).toMatchObject({ kind: "none" });
  });
});

describe("planRestore: DELETE", () => {
  const deleted = member("DELETE", { oldResourceVersion: "10" });

  it("re-creates the object from the pre-image stripped of uid, resourceVersion, creationTimestamp and managedFields", () => {
    const action = planRestore(deleted, preImage, undefined);
    expect(action.kind).toBe("create");
    if (action.kind !== "create") return;
    expect(action.collectionPath).toBe(COLLECTION_PATH);
    for (const field of ["uid", "resourceVersion", "creationTimestamp", "managedFields"]) expect(action.body.metadata).not.toHaveProperty(field);
    expect(action.body.metadata).toEqual({ name: "settings", namespace: "shop", labels: { app: "shop" }, annotations: { owner: "team-a" } });
    expect(action.body.data).toEqual({ mode: "old", keep: "yes" });
  });

  it("is impossible while the object waits on finalizers, and says so", () => {
    const terminating = served({ mode: "old" }, { resourceVersion: "11", deletionTimestamp: "2026-01-01T00:01:00Z", finalizers: ["example.com/cleanup"] });
    const action = planRestore(deleted, preImage, terminating);
    expect(action.kind).toBe("impossible");
    expect(action.kind === "impossible" ? action.reason : "").toMatch(/finalizers.*example\.com\/cleanup/);
  });

  it("does nothing when the object is still there and not being deleted", () => {
    expect(planRestore(deleted, preImage, served({ mode: "old" }, { resourceVersion: "10" }))).toEqual({ kind: "none", reason: "the delete did not persist" });
  });

  it("is impossible without a journalled pre-image once the object is gone", () => {
    expect(planRestore(deleted, undefined, undefined)).toMatchObject({ kind: "impossible" });
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
