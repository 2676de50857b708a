/**
 * kubetx as the apiserver's authorization webhook: a user may list and
 * watch their own Transaction records, asked for by field selector, and
 * kubetx has no opinion on anything else (RBAC decides).
 */
import { describe, expect, it } from "vitest";
import type { AccessQuestion } from "../../src/admission/record-access.ts";
import { accessReviewResponse, decideRecordAccess, parseSubjectAccessReview } from "../../src/admission/record-access.ts";

/** A SubjectAccessReview as kube-apiserver sends it for `kubectl get tx --field-selector spec.user=alice`. */
function review(attributes: Record<string, unknown>, user = "alice"): unknown {
  return {
    apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview",
    spec: { user, uid: "u-1", groups: ["system:authenticated"], resourceAttributes: { group: "kubetx.io", version: "v1alpha1", resource: "transactions", verb: "list", ...attributes } },
  };
}

const own = { fieldSelector: { requirements: [{ key: "spec.user", operator: "In", values: ["alice"] }] } };

function question(body: unknown): AccessQuestion {
  const parsed = parseSubjectAccessReview(body);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.question;
}

describe("who may list which transactions", () => {
  it.each(["list", "watch"])("allows a user to %s their own, by field selector", (verb) => {
    expect(decideRecordAccess(question(review({ verb, ...own })))).toEqual({ allowed: true, reason: `alice may ${verb} their own transactions` });
  });

  it("has no opinion on listing everyone's (RBAC decides: kubetx:viewer)", () => {
    const answer = decideRecordAccess(question(review({})));
    expect(answer.allowed).toBe(false);
    expect(answer.reason).toContain("spec.user=alice");
  });

  it.each([
    ["someone else's", { fieldSelector: { requirements: [{ key: "spec.user", operator: "In", values: ["bob"] }] } }],
    ["everyone but bob's", { fieldSelector: { requirements: [{ key: "spec.user", operator: "NotIn", values: ["bob"] }] } }],
    ["alice's or bob's", { fieldSelector: { requirements: [{ key: "spec.user", operator: "In", values: ["alice", "bob"] }] } }],
    ["a get of one record", { verb: "get", name: "t-0a1b2c3d", ...own }],
    ["a delete", { verb: "delete", ...own }],
    ["the status subresource", { subresource: "status", ...own }],
    ["another resource", { resource: "transactionpolicies", ...own }],
    ["another group", { group: "example.com", ...own }],
  ])("has no opinion on %s", (_what, attributes) => {
    expect(decideRecordAccess(question(review(attributes))).allowed).toBe(false);
  });

  it("has no opinion for a user with an empty name", () => {
    const body = review({ fieldSelector: { requirements: [{ key: "spec.user", operator: "In", values: [""] }] } }, "");
    expect(decideRecordAccess(question(body)).allowed).toBe(false);
  });

  it("has no opinion on a non-resource request", () => {
    const body = { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec: { user: "alice", nonResourceAttributes: { path: "/healthz", verb: "get" } } };
    expect(decideRecordAccess(question(body)).allowed).toBe(false);
  });

  it.each([
    ["not an object", []],
    ["another apiVersion", { apiVersion: "authorization.k8s.io/v1beta1", kind: "SubjectAccessReview", spec: { user: "a" } }],
    ["another kind", { apiVersion: "authorization.k8s.io/v1", kind: "AdmissionReview", spec: { user: "a" } }],
    ["no spec", { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview" }],
    ["a user that is not a string", { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec: { user: 7 } }],
  ])("refuses a body that is %s", (_what, body) => {
    expect(parseSubjectAccessReview(body).ok).toBe(false);
  });

  it("answers in the apiserver's format, never with denied (so other authorizers still decide)", () => {
    expect(accessReviewResponse({ allowed: false, reason: "no" })).toEqual({ apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", status: { allowed: false, reason: "no" } });
  });
});
