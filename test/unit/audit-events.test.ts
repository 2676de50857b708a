import { describe, expect, it } from "vitest";
import type { AuditEvent } from "../../src/audit/events.ts";
import { auditEventOf, entryOf, kubetxAnnotations, MESSAGE_MAX_CHARS, objectOf, requesterOf, restoreOf, writeTargetOf } from "../../src/audit/events.ts";
import { restoreUserAgent } from "../../src/kube/vocabulary.ts";
import { kubectlNameFor } from "../../src/transactions/model.ts";

/** A create of a ConfigMap by alice that kubetx admitted, as the apiserver logs it at Metadata level. */
const admitted: AuditEvent = {
  auditID: "a-1",
  stage: "ResponseComplete",
  verb: "create",
  user: { username: "alice" },
  objectRef: { resource: "configmaps", namespace: "shop", name: "settings" },
  responseStatus: { code: 201 },
  stageTimestamp: "2026-11-24T14:06:26.959165Z",
  annotations: {
    "authorization.k8s.io/decision": "allow",
    "authorization.k8s.io/reason": "RBAC: allowed",
    "validate.kubetx.io/decision": "member",
    "validate.kubetx.io/lock": "lk-1",
    "validate.kubetx.io/transaction": "t-0123abcd",
  },
};

describe("kubetx's audit annotations", () => {
  it("are read under whatever webhook name the apiserver prefixed them with", () => {
    expect(kubetxAnnotations({ "records.kubetx.io/transaction": "t-1", "records.kubetx.io/decision": "record" }))
      .toEqual({ transaction: "t-1", decision: "record", seen: true });
    expect(kubetxAnnotations({ "tx.example.com/decision": "pass" })).toEqual({ decision: "pass", seen: true });
  });

  it("are not confused with Kubernetes' own decision annotations", () => {
    expect(kubetxAnnotations({ "authorization.k8s.io/decision": "allow", "mutation.webhook.admission.k8s.io/round_0_index_0": "{}" }))
      .toEqual({ seen: false });
    expect(kubetxAnnotations({ "pod-security.kubernetes.io/decision": "x", "k8s.io/lock": "y" })).toEqual({ seen: false });
    expect(kubetxAnnotations(undefined)).toEqual({ seen: false });
  });
});

describe("an object as the review names it", () => {
  it("puts the group before the resource and the namespace before the name", () => {
    expect(objectOf({ resource: "configmaps", namespace: "shop", name: "a" })).toBe("configmaps shop/a");
    expect(objectOf({ apiGroup: "apps", resource: "deployments", namespace: "shop", name: "web" })).toBe("apps/deployments shop/web");
    expect(objectOf({ apiGroup: "kubetx.io", resource: "transactions", name: "t-1" })).toBe("kubetx.io/transactions t-1");
    expect(objectOf({ resource: "pods", subresource: "status", namespace: "x", name: "p" })).toBe("pods/status x/p");
    expect(objectOf({ resource: "configmaps", namespace: "shop" })).toBe("configmaps in shop");
    expect(objectOf({ resource: "namespaces" })).toBe("namespaces");
    expect(objectOf(undefined)).toBe("-");
  });
});

describe("who made a request", () => {
  it("is the user admission saw: the impersonated one when the request impersonated", () => {
    const asAlice = { ...admitted, user: { username: "admin", groups: ["system:masters"] }, impersonatedUser: { username: "alice", uid: "u-1", groups: ["dev"] } };
    expect(requesterOf(asAlice)).toEqual({ username: "alice", uid: "u-1", groups: ["dev"] });
    expect(entryOf(asAlice)?.user).toBe("alice");
    expect(requesterOf(admitted)).toEqual({ username: "alice" });
    expect(requesterOf({ ...admitted, user: {} })).toBeUndefined();
  });
});

describe("the object a write names", () => {
  it("is a namespaced object itself, which a kubetx webhook rule can select", () => {
    expect(writeTargetOf({ objectRef: { apiGroup: "apps", resource: "deployments", namespace: "shop", name: "web" } })).toEqual({ namespace: "shop", group: "apps", resource: "deployments" });
  });

  it("is none for a subresource or a cluster-scoped object", () => {
    expect(writeTargetOf({ objectRef: { apiGroup: "apps", resource: "deployments", subresource: "scale", namespace: "shop", name: "web" } })).toBeUndefined();
    expect(writeTargetOf({ objectRef: { resource: "namespaces", name: "shop" } })).toBeUndefined();
    expect(writeTargetOf({})).toBeUndefined();
  });
});

describe("the entry kept of an audit event", () => {
  it("has the time, user, verb, object, code and kubetx's annotations of a complete request", () => {
    expect(entryOf(admitted)).toEqual({
      auditID: "a-1", time: "2026-11-24T14:06:26.959165Z", timeMs: Date.parse("2026-11-24T14:06:26.959Z"), user: "alice", verb: "create",
      object: "configmaps shop/settings", target: { namespace: "shop", group: "", resource: "configmaps" }, code: 201, transaction: "t-0123abcd", decision: "member", lock: "lk-1", seenByKubetx: true, dryRun: false,
    });
  });

  it("is only made of ResponseComplete events with a time", () => {
    expect(entryOf({ ...admitted, stage: "RequestReceived" })).toBeUndefined();
    expect(entryOf({ ...admitted, stage: "ResponseStarted" })).toBeUndefined();
    expect(entryOf({ ...admitted, stageTimestamp: "yesterday" })).toBeUndefined();
    expect(entryOf({ ...admitted, stageTimestamp: undefined })).toBeUndefined();
  });

  it("keeps the apiserver's message of a failed request, cut to a bounded length", () => {
    const rejected = { ...admitted, annotations: {}, responseStatus: { code: 422, message: `ConfigMap "c" is invalid: ${"x".repeat(2000)}` } };
    const entry = entryOf(rejected);
    expect(entry?.seenByKubetx).toBe(false);
    expect(entry?.message?.length).toBe(MESSAGE_MAX_CHARS);
    expect(entry?.message).toMatch(/^ConfigMap "c" is invalid: x+\.\.\.$/);
    expect(entryOf({ ...admitted, responseStatus: { code: 200, message: "fine" } })?.message).toBeUndefined();
  });
});

describe("a write kubetx made to restore an object", () => {
  const restore: AuditEvent = {
    ...admitted, verb: "patch", annotations: {}, responseStatus: { code: 200 },
    user: { username: "system:serviceaccount:kubetx-system:kubetx" }, userAgent: restoreUserAgent("t-0123abcd"),
  };

  it("names the transaction its User-Agent says it restored for", () => {
    expect(restoreOf(restore)).toBe("t-0123abcd");
    expect(entryOf(restore)).toMatchObject({ restoreFor: "t-0123abcd", user: "system:serviceaccount:kubetx-system:kubetx", verb: "patch" });
    expect(entryOf(restore)?.transaction).toBeUndefined();
  });

  it("is only one made by kubetx's own service accounts, not impersonated, with a User-Agent of that exact form", () => {
    expect(restoreOf({ ...restore, user: { username: "alice" } })).toBeUndefined();
    expect(restoreOf({ ...restore, user: { username: "system:serviceaccount:shop:kubetx" } })).toBeUndefined();
    expect(restoreOf({ ...restore, impersonatedUser: { username: "alice" } })).toBeUndefined();
    expect(restoreOf({ ...restore, userAgent: "kubetx" })).toBeUndefined();
    expect(restoreOf({ ...restore, userAgent: `${restoreUserAgent("t-0123abcd")} extra` })).toBeUndefined();
    expect(restoreOf({ ...restore, userAgent: undefined })).toBeUndefined();
    expect(entryOf({ ...restore, user: { username: "alice" } })?.restoreFor).toBeUndefined();
  });

  it("reads the User-Agent only when it is a string", () => {
    expect(auditEventOf({ ...restore, userAgent: 42 }).userAgent).toBeUndefined();
  });
});

describe("a request of kubectl tx's kubectl", () => {
  it("names the transaction kubectl ran for by the name in its User-Agent", () => {
    const rejected: AuditEvent = { ...admitted, annotations: {}, responseStatus: { code: 422 }, userAgent: `${kubectlNameFor("t-0123abcd")}/v1.37.2 (linux/amd64) kubernetes/abcdef0` };
    expect(entryOf(rejected)).toMatchObject({ kubectlFor: "t-0123abcd", code: 422 });
    expect(entryOf({ ...rejected, userAgent: "kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef0" })).not.toHaveProperty("kubectlFor");
    expect(entryOf({ ...rejected, userAgent: "kubectl@../v1.37.2" })).not.toHaveProperty("kubectlFor");
  });
});

