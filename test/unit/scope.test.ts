/**
 * Which writes kubetx takes part in: the transaction a write names by
 * annotation, and the scope (pass, explicit, transparent, session-only)
 * that policy and annotation give it together.
 */
import { describe, expect, it } from "vitest";
import { OPT_OUT, namedTransaction, scopeOf } from "../../src/admission/scope.ts";
import type { ScopeDeps } from "../../src/admission/scope.ts";
import type { NamespaceLabels } from "../../src/policy/namespaces.ts";
import type { PolicyMode } from "../../src/policy/policy.ts";
import { ENABLED_LABEL, POLICY_DEFAULTS } from "../../src/policy/policy.ts";
import { staticPolicies } from "../../src/policy/watch.ts";
import { settingsWrite as request } from "../support/admission-requests.ts";

const SELF = "system:serviceaccount:kubetx-system:kubetx";
const TX = "t-0a1b2c3d";
const OTHER_TX = "t-9f8e7d6c";

/** Namespace labels from a fixed map, counting how often it was asked. */
function namespaces(labels: Readonly<Record<string, string>> | undefined): { lookups: () => number; fake: NamespaceLabels } {
  let count = 0;
  const fake = {
    ready: true,
    labelsOf: (): Promise<Readonly<Record<string, string>> | undefined> => {
      count += 1;
      return Promise.resolve(labels);
    },
  };
  return { lookups: () => count, fake: fake as unknown as NamespaceLabels };
}

const ENABLED = { [ENABLED_LABEL]: "true" };

/** `labels: null`: the namespace is not found. */
function deps(mode: PolicyMode, labels: Readonly<Record<string, string>> | null = ENABLED): ScopeDeps & { lookups: () => number } {
  const ns = namespaces(labels ?? undefined);
  const source = staticPolicies([{ name: "default", spec: { ...POLICY_DEFAULTS, mode } }]);
  return { namespaces: ns.fake, policy: () => source.view(), selfUsername: SELF, lookups: ns.lookups };
}

describe("namedTransaction", () => {
  it("names the transaction a new object's annotation names", () => {
    expect(namedTransaction(request("CREATE", { now: TX }))).toBe(TX);
  });

  it("names none for a new object without the annotation", () => {
    expect(namedTransaction(request("CREATE"))).toBeUndefined();
  });

  it("names none for an update that keeps the annotation left over from an earlier transaction", () => {
    expect(namedTransaction(request("UPDATE", { now: TX, before: TX }))).toBeUndefined();
  });

  it("names the new transaction for an update that changes the annotation", () => {
    expect(namedTransaction(request("UPDATE", { now: OTHER_TX, before: TX }))).toBe(OTHER_TX);
  });

  it("names the transaction for an update that adds the annotation", () => {
    expect(namedTransaction(request("UPDATE", { now: TX }))).toBe(TX);
  });

  it("names none for an update that removes the annotation", () => {
    expect(namedTransaction(request("UPDATE", { before: TX }))).toBeUndefined();
  });

  it("names none for a delete, whose object carries the last transaction's annotation", () => {
    expect(namedTransaction(request("DELETE", { before: TX }))).toBeUndefined();
  });

  it("names the opt-out for a delete of an object annotated none", () => {
    expect(namedTransaction(request("DELETE", { before: OPT_OUT }))).toBe(OPT_OUT);
  });

  it("names the opt-out for a new object annotated none", () => {
    expect(namedTransaction(request("CREATE", { now: OPT_OUT }))).toBe(OPT_OUT);
  });

  it("names the opt-out for an update that keeps none, although the value did not change", () => {
    expect(namedTransaction(request("UPDATE", { now: OPT_OUT, before: OPT_OUT }))).toBe(OPT_OUT);
  });
});

describe("scopeOf: passes that need no lookup", () => {
  it("passes a write to a subresource", async () => {
    const d = deps("transparent");
    expect(await scopeOf(request("UPDATE", {}, { subResource: "status" }), d)).toEqual({ kind: "pass", reason: "subresource" });
    expect(d.lookups()).toBe(0);
  });

  it("passes kubetx's own writes, such as its rollbacks", async () => {
    const d = deps("transparent");
    expect(await scopeOf(request("UPDATE", { now: TX }, { userInfo: { username: SELF } }), d)).toEqual({ kind: "pass", reason: "kubetx itself" });
    expect(d.lookups()).toBe(0);
  });

  it("passes a write of a cluster-scoped object", async () => {
    const d = deps("transparent");
    const clusterRole = { resource: { group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterroles" }, namespace: undefined };
    expect(await scopeOf(request("CREATE", { now: TX }, clusterRole), d)).toEqual({ kind: "pass", reason: "cluster-scoped" });
    expect(d.lookups()).toBe(0);
  });

  it("passes a CONNECT", async () => {
    expect(await scopeOf(request("CONNECT", {}, { object: null, oldObject: null }), deps("transparent"))).toEqual({ kind: "pass", reason: "connect" });
  });
});

describe("scopeOf: policy and annotation", () => {
  it("passes a write in a namespace no policy covers, even one that names a transaction", async () => {
    const d = deps("transparent", { team: "shop" });
    expect(await scopeOf(request("CREATE", { now: TX }), d)).toEqual({ kind: "pass", reason: "no policy covers it" });
    expect(d.lookups()).toBe(1);
  });

  it("passes a write in a namespace that no longer exists", async () => {
    expect(await scopeOf(request("CREATE", { now: TX }), deps("transparent", null))).toMatchObject({ kind: "pass" });
  });

  it("passes every write under an off policy", async () => {
    expect(await scopeOf(request("CREATE", { now: TX }), deps("off"))).toMatchObject({ kind: "pass" });
  });

  it("joins the named transaction under an explicit policy", async () => {
    expect(await scopeOf(request("CREATE", { now: TX }), deps("explicit"))).toEqual({ kind: "explicit", transaction: TX });
  });

  it("joins the named transaction under a transparent policy too", async () => {
    expect(await scopeOf(request("CREATE", { now: TX }), deps("transparent"))).toEqual({ kind: "explicit", transaction: TX });
  });

  it("makes a write that names no transaction transparent under a transparent policy", async () => {
    expect(await scopeOf(request("CREATE"), deps("transparent"))).toEqual({ kind: "transparent" });
  });

  it("makes a write that names no transaction session-only under an explicit policy", async () => {
    expect(await scopeOf(request("CREATE"), deps("explicit"))).toEqual({ kind: "session-only" });
  });

  it("treats an update that keeps an old annotation like a write that names none", async () => {
    expect(await scopeOf(request("UPDATE", { now: TX, before: TX }), deps("transparent"))).toEqual({ kind: "transparent" });
  });

  it("passes an object that opts out with none", async () => {
    expect(await scopeOf(request("CREATE", { now: OPT_OUT }), deps("transparent"))).toEqual({ kind: "pass", reason: "object opted out" });
  });

  it("passes the delete of an object annotated none", async () => {
    expect(await scopeOf(request("DELETE", { before: OPT_OUT }), deps("transparent"))).toEqual({ kind: "pass", reason: "object opted out" });
  });
});
