/** Whether an admitted write really persisted, judged from the member, its journal entry and the live object. */
import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../src/kube/types.ts";
import type { Member } from "../../src/locks/record.ts";
import type { MemberOperation } from "../../src/transactions/model.ts";
import { intentDigest, persisted } from "../../src/transactions/verify.ts";

const REF = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" };

function member(operation: MemberOperation, extra: Partial<Member> = {}): Member {
  return { transaction: "t-0a1b2c3d", ref: REF, kind: "ConfigMap", operation, user: "alice", requestUid: "req-1", admittedAt: 0, ...extra };
}

function configMap(data: Record<string, string>, meta: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop", ...meta }, data };
}

describe("persisted: CREATE", () => {
  const created = member("CREATE", { createdUid: "uid-new" });

  it("counts a live object with the created uid as persisted", () => {
    expect(persisted(created, undefined, configMap({ a: "1" }, { uid: "uid-new", resourceVersion: "10" }))).toBe(true);
  });

  it("does not count a live object with another uid (someone else's object of the same name)", () => {
    expect(persisted(created, undefined, configMap({ a: "1" }, { uid: "uid-other", resourceVersion: "10" }))).toBe(false);
  });

  it("does not count an absent object", () => {
    expect(persisted(created, undefined, undefined)).toBe(false);
  });

  it("counts a create the same transaction then deleted as persisted once the object is gone", () => {
    expect(persisted(created, { pre: null, post: null }, undefined)).toBe(true);
    expect(persisted(created, { pre: null, post: null }, configMap({ a: "1" }, { uid: "uid-new" }))).toBe(false);
  });
});

describe("persisted: UPDATE", () => {
  const before = configMap({ a: "1", b: "x" }, { uid: "u", resourceVersion: "10" });
  const written = configMap({ a: "2", b: "x" }, { uid: "u", annotations: { "kubetx.io/transaction": "t-0a1b2c3d" }, resourceVersion: "10" });
  const updated = member("UPDATE", { oldResourceVersion: "10" });
  const entry = { pre: before, post: written };

  it("counts the object as persisted when every path the write changed has the written value", () => {
    expect(persisted(updated, entry, configMap({ a: "2", b: "x" }, { uid: "u", annotations: { "kubetx.io/transaction": "t-0a1b2c3d" }, resourceVersion: "11" }))).toBe(true);
  });

  it("is not fooled by a controller's write: a new resourceVersion without the written values does not count", () => {
    const statusOnly = { ...before, metadata: { ...before.metadata, resourceVersion: "12" }, status: { observed: 1 } };
    expect(persisted(updated, entry, statusOnly)).toBe(false);
  });

  it("counts a write that changed nothing as persisted", () => {
    expect(persisted(updated, { pre: before, post: before }, before)).toBe(true);
  });

  it("does not count an object of another uid or an absent object", () => {
    expect(persisted(updated, entry, { ...written, metadata: { ...written.metadata, uid: "u2" } })).toBe(false);
    expect(persisted(updated, entry, undefined)).toBe(false);
  });
});

describe("persisted: DELETE", () => {
  const deleted = member("DELETE", { oldResourceVersion: "10" });
  const entry = { pre: configMap({ a: "1" }, { uid: "u", resourceVersion: "10" }), post: null };

  it("counts an absent object as persisted", () => {
    expect(persisted(deleted, entry, undefined)).toBe(true);
  });

  it("counts an object that is being deleted (finalizers still running) as persisted", () => {
    const live = configMap({ a: "1" }, { uid: "u", resourceVersion: "11", deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: ["example.com/hold"] });
    expect(persisted(deleted, entry, live)).toBe(true);
  });

  it("does not count an object that is still there and not being deleted", () => {
    expect(persisted(deleted, entry, configMap({ a: "1" }, { uid: "u", resourceVersion: "10" }))).toBe(false);
  });
});

describe("persisted: entries journalled before post-images were kept", () => {
  const admitted = configMap({ a: "2" }, { annotations: { "kubetx.io/transaction": "t-0a1b2c3d" }, resourceVersion: "10" });
  const updated = member("UPDATE", { oldResourceVersion: "10", admittedDigest: intentDigest(admitted) });
  const legacy = { pre: configMap({ a: "1" }, { uid: "u", resourceVersion: "10" }) };

  it("counts a new resourceVersion as persisted", () => {
    expect(persisted(updated, legacy, configMap({ a: "2" }, { uid: "u", resourceVersion: "11" }))).toBe(true);
  });

  it("counts an unchanged resourceVersion with exactly the admitted content as a persisted no-op write", () => {
    const live = configMap({ a: "2" }, { annotations: { "kubetx.io/transaction": "t-0a1b2c3d" }, uid: "u", resourceVersion: "10", managedFields: [{ manager: "kubectl" }] });
    expect(persisted(updated, legacy, live)).toBe(true);
  });

  it("does not count an unchanged resourceVersion whose content differs from what was admitted", () => {
    const live = configMap({ a: "1" }, { annotations: { "kubetx.io/transaction": "t-0a1b2c3d" }, uid: "u", resourceVersion: "10" });
    expect(persisted(updated, legacy, live)).toBe(false);
  });
});

describe("intentDigest", () => {
  const base: KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "shop", labels: { app: "web", tier: "front" } },
    spec: { replicas: 2, template: { spec: { containers: [{ name: "web", image: "nginx:1" }] } } },
  };

  it("is the same for the same content written with keys in another order", () => {
    const reordered: KubeObject = {
      spec: { template: { spec: { containers: [{ image: "nginx:1", name: "web" }] } }, replicas: 2 },
      metadata: { labels: { tier: "front", app: "web" }, namespace: "shop", name: "web" },
      kind: "Deployment",
      apiVersion: "apps/v1",
    };
    expect(intentDigest(reordered)).toBe(intentDigest(base));
  });

  it("ignores resourceVersion, managedFields and status, which the server sets", () => {
    const served: KubeObject = {
      ...base,
      metadata: { ...base.metadata, resourceVersion: "42", uid: "u-1", generation: 3, creationTimestamp: "2026-01-01T00:00:00Z", managedFields: [{ manager: "kubectl" }] },
      status: { readyReplicas: 2 },
    };
    expect(intentDigest(served)).toBe(intentDigest(base));
  });

  it("changes when the user's content changes", () => {
    expect(intentDigest({ ...base, spec: { ...(base.spec as object), replicas: 3 } })).not.toBe(intentDigest(base));
  });

  it("keeps the order of list elements significant", () => {
    const twoContainers = (names: string[]): KubeObject => ({ ...base, spec: { template: { spec: { containers: names.map((name) => ({ name })) } } } });
    expect(intentDigest(twoContainers(["a", "b"]))).not.toBe(intentDigest(twoContainers(["b", "a"])));
  });
});
