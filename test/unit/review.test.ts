import { describe, expect, it } from "vitest";
import { allowed, denied, errored, review } from "../../src/admission/response.ts";
import { parseAdmissionReview, uidOf } from "../../src/admission/review.ts";

function body(request: Record<string, unknown> | undefined, envelope: Record<string, unknown> = {}): unknown {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request, ...envelope };
}

const valid = {
  uid: "u-1",
  kind: { group: "", version: "v1", kind: "ConfigMap" },
  resource: { group: "", version: "v1", resource: "configmaps" },
  operation: "CREATE",
  userInfo: { username: "alice" },
  object: { metadata: { name: "a" } },
};

describe("parseAdmissionReview", () => {
  it("accepts a v1 review and returns its request", () => {
    const result = parseAdmissionReview(body(valid));
    expect(result).toEqual({ ok: true, request: valid });
  });

  it.each([
    ["a string body", "hello", /not a JSON object/],
    ["the v1beta1 version", body(valid, { apiVersion: "admission.k8s.io/v1beta1" }), /apiVersion must be admission.k8s.io\/v1/],
    ["another kind", body(valid, { kind: "Pod" }), /kind must be AdmissionReview/],
    ["no request", body(undefined), /request is missing/],
    ["no uid", body({ ...valid, uid: "" }), /uid is missing/],
    ["an unknown operation", body({ ...valid, operation: "PATCH" }), /operation must be one of/],
    ["no resource", body({ ...valid, resource: { group: "" } }), /resource must have/],
    ["no kind", body({ ...valid, kind: {} }), /kind must have a kind/],
    ["no user", body({ ...valid, userInfo: {} }), /username is missing/],
    ["an array object", body({ ...valid, object: [] }), /object must be an object/],
    // Found by the fuzzer: each reached code that read it as its type, and was answered "internal error".
    ["groups that are not a list", body({ ...valid, userInfo: { username: "alice", groups: "system:masters" } }), /userInfo.groups must be a list of strings, got "system:masters"/],
    ["a group that is not a string", body({ ...valid, userInfo: { username: "alice", groups: ["a", 7] } }), /userInfo.groups must be a list of strings, got a list/],
    ["a user uid that is not a string", body({ ...valid, userInfo: { username: "alice", uid: {} } }), /userInfo.uid must be a string, got an object/],
    ["extra that is not lists", body({ ...valid, userInfo: { username: "alice", extra: { scopes: "x" } } }), /userInfo.extra must map names to lists of strings/],
    ["a namespace that is not a string", body({ ...valid, namespace: 12 }), /request.namespace must be a string, got 12/],
    ["a dryRun that is not a boolean", body({ ...valid, dryRun: "true" }), /request.dryRun must be true or false, got "true"/],
  ])("rejects %s with a reason", (_name, input, reason) => {
    const result = parseAdmissionReview(input);
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.reason).toMatch(reason);
  });

  it("accepts what the apiserver sends beside the username: groups, uid, extra, namespace, dryRun", () => {
    const full = { ...valid, namespace: "shop", name: "a", dryRun: false, userInfo: { username: "alice", uid: "1", groups: ["dev", "system:authenticated"], extra: { scopes: ["a"] } } };
    expect(parseAdmissionReview(body(full))).toEqual({ ok: true, request: full });
  });

  it("finds the uid of a request that failed the checks", () => {
    expect(uidOf(body({ uid: "u-9" }))).toBe("u-9");
    expect(uidOf("junk")).toBe("");
  });
});

describe("response helpers", () => {
  it("echo the request uid in every kind of response", () => {
    const request = { uid: "u-7" };
    expect(allowed(request).uid).toBe("u-7");
    expect(denied(request, "no").uid).toBe("u-7");
    expect(errored(request, 500, new Error("boom")).uid).toBe("u-7");
  });

  it("prefix a denial with kubetx: exactly once", () => {
    expect(denied({ uid: "u" }, "locked; retry").status?.message).toBe("kubetx: locked; retry");
    expect(denied({ uid: "u" }, "kubetx: locked").status?.message).toBe("kubetx: locked");
  });

  it("leave out empty warnings and audit annotations", () => {
    expect(allowed({ uid: "u" }, { warnings: [], auditAnnotations: {} })).toEqual({ uid: "u", allowed: true });
    expect(allowed({ uid: "u" }, { warnings: ["w"] }).warnings).toEqual(["w"]);
  });

  it("wrap a response in a v1 AdmissionReview", () => {
    expect(review(allowed({ uid: "u" }))).toEqual({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u", allowed: true } });
  });
});
