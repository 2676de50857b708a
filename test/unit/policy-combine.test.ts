/**
 * Which writes a set of TransactionPolicies covers, in which mode, and under
 * which limits: label-selector and resource-pattern matching, the combined
 * view, and the fixed policy source built from it.
 */
import { describe, expect, it } from "vitest";
import type { NamedPolicy, Requester } from "../../src/policy/combine.ts";
import { combine } from "../../src/policy/combine.ts";
import type { LabelSelector, PolicySpec } from "../../src/policy/policy.ts";
import { ENABLED_LABEL, POLICY_DEFAULTS, limitsOf, resourceMatches, selectorMatches } from "../../src/policy/policy.ts";
import { staticPolicies } from "../../src/policy/watch.ts";

const ENABLED = { [ENABLED_LABEL]: "true" };
const ALICE: Requester = { username: "alice", groups: ["system:authenticated", "dev"] };

function policy(name: string, spec: Partial<PolicySpec> = {}): NamedPolicy {
  return { name, spec: { ...POLICY_DEFAULTS, ...spec } };
}

/** The mode for alice writing a ConfigMap in an enabled namespace, unless told otherwise. */
function modeOf(policies: readonly NamedPolicy[], write: { labels?: Record<string, string>; group?: string; resource?: string; requester?: Requester } = {}): string {
  const { labels = ENABLED, group = "", resource = "configmaps", requester = ALICE } = write;
  return combine(policies).modeFor(labels, group, resource, requester);
}

describe("selectorMatches", () => {
  const labels = { team: "shop", env: "prod" };

  it("matches everything with an empty selector, even a namespace without labels", () => {
    expect(selectorMatches({}, labels)).toBe(true);
    expect(selectorMatches({}, undefined)).toBe(true);
  });

  it("matches when every matchLabels pair is present with the same value", () => {
    expect(selectorMatches({ matchLabels: { team: "shop", env: "prod" } }, labels)).toBe(true);
  });

  it("does not match when one matchLabels value differs", () => {
    expect(selectorMatches({ matchLabels: { team: "shop", env: "dev" } }, labels)).toBe(false);
  });

  it("does not match matchLabels against a namespace without labels", () => {
    expect(selectorMatches({ matchLabels: { team: "shop" } }, undefined)).toBe(false);
  });

  it.each<[string, LabelSelector, boolean]>([
    ["In with the value listed", { matchExpressions: [{ key: "env", operator: "In", values: ["dev", "prod"] }] }, true],
    ["In with the value not listed", { matchExpressions: [{ key: "env", operator: "In", values: ["dev"] }] }, false],
    ["In with the key absent", { matchExpressions: [{ key: "tier", operator: "In", values: ["prod"] }] }, false],
    ["NotIn with the value listed", { matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] }, false],
    ["NotIn with the value not listed", { matchExpressions: [{ key: "env", operator: "NotIn", values: ["dev"] }] }, true],
    ["NotIn with the key absent", { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["prod"] }] }, true],
    ["Exists with the key present", { matchExpressions: [{ key: "team", operator: "Exists" }] }, true],
    ["Exists with the key absent", { matchExpressions: [{ key: "tier", operator: "Exists" }] }, false],
    ["DoesNotExist with the key present", { matchExpressions: [{ key: "team", operator: "DoesNotExist" }] }, false],
    ["DoesNotExist with the key absent", { matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] }, true],
  ])("evaluates %s", (_case, selector, expected) => {
    expect(selectorMatches(selector, labels)).toBe(expected);
  });

  it("needs matchLabels and every expression to hold at once", () => {
    const selector: LabelSelector = { matchLabels: { team: "shop" }, matchExpressions: [{ key: "env", operator: "Exists" }, { key: "env", operator: "In", values: ["dev"] }] };
    expect(selectorMatches(selector, labels)).toBe(false);
  });

  it("matches an empty label value only when the label is there with that empty value", () => {
    expect(selectorMatches({ matchLabels: { flag: "" } }, { flag: "" })).toBe(true);
    expect(selectorMatches({ matchLabels: { flag: "" } }, {})).toBe(false);
  });
});

describe("resourceMatches", () => {
  it.each<[string, string, string, boolean]>([
    ["*", "apps", "deployments", true],
    ["*", "", "configmaps", true],
    ["configmaps", "", "configmaps", true],
    ["configmaps", "", "secrets", false],
    ["deployments", "apps", "deployments", false],
    ["apps/deployments", "apps", "deployments", true],
    ["apps/deployments", "apps", "statefulsets", false],
    ["apps/deployments", "extensions", "deployments", false],
    ["apps/*", "apps", "statefulsets", true],
    ["apps/*", "", "pods", false],
    ["networking.k8s.io/*", "networking.k8s.io", "ingresses", true],
  ])("pattern %j against group %j resource %j: %s", (pattern, group, resource, expected) => {
    expect(resourceMatches(pattern, group, resource)).toBe(expected);
  });
});

describe("combine: no policies", () => {
  it("leaves every write alone", () => {
    expect(modeOf([])).toBe("off");
  });

  it("applies the default limits", () => {
    expect(combine([]).limits).toEqual(limitsOf(POLICY_DEFAULTS));
  });

  it("names no policy", () => {
    expect(combine([]).names).toEqual([]);
  });
});

describe("combine: which writes a policy selects", () => {
  it("selects a write in a namespace whose labels match the selector, in the policy's mode", () => {
    expect(modeOf([policy("default")])).toBe("transparent");
    expect(modeOf([policy("default", { mode: "explicit" })])).toBe("explicit");
  });

  it("leaves alone a write in a namespace the selector does not match", () => {
    expect(modeOf([policy("default")], { labels: { team: "shop" } })).toBe("off");
  });

  it("leaves alone a write in a namespace it could not find labels for", () => {
    expect(combine([policy("default")]).modeFor(undefined, "", "configmaps", ALICE)).toBe("off");
  });

  it("selects by matchExpressions too", () => {
    const prod = policy("prod", { namespaceSelector: { matchExpressions: [{ key: "env", operator: "In", values: ["prod"] }] } });
    expect(modeOf([prod], { labels: { env: "prod" } })).toBe("transparent");
    expect(modeOf([prod], { labels: { env: "dev" } })).toBe("off");
  });

  it("leaves alone a resource the include list does not name", () => {
    const apps = policy("apps", { resources: { include: ["apps/*"], exclude: [] } });
    expect(modeOf([apps], { group: "apps", resource: "deployments" })).toBe("transparent");
    expect(modeOf([apps], { group: "", resource: "configmaps" })).toBe("off");
  });

  it("leaves alone a resource the exclude list names although include selects it", () => {
    const noSecrets = policy("no-secrets", { resources: { include: ["*"], exclude: ["secrets"] } });
    expect(modeOf([noSecrets], { resource: "secrets" })).toBe("off");
    expect(modeOf([noSecrets], { resource: "configmaps" })).toBe("transparent");
  });

  it("covers a write that only one of several policies selects", () => {
    const prod = policy("prod", { namespaceSelector: { matchLabels: { env: "prod" } }, mode: "explicit" });
    expect(modeOf([policy("default"), prod], { labels: { env: "prod" } })).toBe("explicit");
  });
});

describe("combine: exemptions", () => {
  it("leaves alone the writes of an exempt user", () => {
    expect(modeOf([policy("default", { exemptUsers: ["alice"] })])).toBe("off");
    expect(modeOf([policy("default", { exemptUsers: ["bob"] })])).toBe("transparent");
  });

  it("leaves alone the writes of a member of an exempt group", () => {
    expect(modeOf([policy("default", { exemptGroups: ["dev"] })])).toBe("off");
    expect(modeOf([policy("default", { exemptGroups: ["ops"] })])).toBe("transparent");
  });

  it("leaves alone a requester with an exempt group whose groups are not listed at all", () => {
    expect(modeOf([policy("default", { exemptGroups: ["dev"] })], { requester: { username: "alice" } })).toBe("transparent");
  });

  it("leaves alone the writes of an exempt service account, known by its system:serviceaccount user name", () => {
    const spec = { exemptServiceAccounts: ["ci/deployer"] };
    expect(modeOf([policy("default", spec)], { requester: { username: "system:serviceaccount:ci:deployer" } })).toBe("off");
  });

  it("exempts only the service account named, not one in another namespace or with a longer name", () => {
    const spec = { exemptServiceAccounts: ["ci/deployer"] };
    for (const username of ["system:serviceaccount:prod:deployer", "system:serviceaccount:ci:deployer2", "ci/deployer"]) {
      expect(modeOf([policy("default", spec)], { requester: { username } }), username).toBe("transparent");
    }
  });

  it("exempts through a selecting policy even when another selecting policy does not exempt", () => {
    expect(modeOf([policy("a"), policy("b", { exemptUsers: ["alice"] })])).toBe("off");
  });

  it("ignores the exemptions of a policy that does not select the write", () => {
    const elsewhere = policy("elsewhere", { namespaceSelector: { matchLabels: { env: "dev" } }, exemptUsers: ["alice"] });
    expect(modeOf([policy("default"), elsewhere])).toBe("transparent");
  });
});

describe("combine: several policies select one write", () => {
  it("leaves the write alone when one of them is off: an admin's opt-out wins", () => {
    expect(modeOf([policy("default"), policy("opt-out", { mode: "off" })])).toBe("off");
  });

  it("does not let an off policy that selects nothing here turn off other writes", () => {
    const offElsewhere = policy("opt-out", { mode: "off", namespaceSelector: { matchLabels: { env: "dev" } } });
    expect(modeOf([policy("default"), offElsewhere])).toBe("transparent");
  });

  it("makes the write transparent when any of them is transparent, whatever their order", () => {
    expect(modeOf([policy("a", { mode: "explicit" }), policy("b", { mode: "transparent" })])).toBe("transparent");
    expect(modeOf([policy("a", { mode: "transparent" }), policy("b", { mode: "explicit" })])).toBe("transparent");
  });

  it("makes the write explicit when all of them are explicit", () => {
    expect(modeOf([policy("a", { mode: "explicit" }), policy("b", { mode: "explicit" })])).toBe("explicit");
  });

  it("lists the policy names in order", () => {
    expect(combine([policy("zeta"), policy("alpha"), policy("mu")]).names).toEqual(["alpha", "mu", "zeta"]);
  });
});

describe("combine: limits take the safest value over the policies", () => {
  const loose = policy("loose", {
    quietWindowSeconds: 1, lockTTLSeconds: 60, maxOpenSeconds: 600, maxMembers: 5000, allowIrreversibleDeletes: true, journalRetentionSeconds: 60,
    maxOpenTransactionsPerUser: 100, maxLocksPerUser: 10,
  });
  const strict = policy("strict", {
    quietWindowSeconds: 5, lockTTLSeconds: 10, maxOpenSeconds: 30, maxMembers: 20, allowIrreversibleDeletes: false, journalRetentionSeconds: 86_400,
    maxOpenTransactionsPerUser: 2, maxLocksPerUser: 500,
  });
  const limits = combine([loose, strict]).limits;

  it("takes the longest quiet window, in milliseconds", () => {
    expect(limits.quietWindowMs).toBe(5_000);
  });

  it("takes the longest lock TTL", () => {
    expect(limits.lockTtlSeconds).toBe(60);
  });

  it("takes the longest journal retention", () => {
    expect(limits.journalRetentionSeconds).toBe(86_400);
  });

  it("takes the shortest open time", () => {
    expect(limits.maxOpenSeconds).toBe(30);
  });

  it("takes the fewest members", () => {
    expect(limits.maxMembers).toBe(20);
  });

  it("takes the lowest per-user limits, each from whichever policy sets it lower", () => {
    expect(limits.maxOpenTransactionsPerUser).toBe(2);
    expect(limits.maxLocksPerUser).toBe(10);
  });

  it("allows irreversible deletes only if every policy allows them", () => {
    expect(limits.allowIrreversibleDeletes).toBe(false);
    const permissive = policy("permissive", { allowIrreversibleDeletes: true });
    expect(combine([loose, permissive]).limits.allowIrreversibleDeletes).toBe(true);
  });

  it("does not count off policies", () => {
    const off = policy("off", { mode: "off", quietWindowSeconds: 100, maxMembers: 1, allowIrreversibleDeletes: false });
    expect(combine([loose, off]).limits).toEqual(limitsOf(loose.spec));
  });

  it("falls back to the default limits when every policy is off", () => {
    const off = policy("off", { mode: "off", quietWindowSeconds: 100, maxMembers: 1 });
    expect(combine([off]).limits).toEqual(limitsOf(POLICY_DEFAULTS));
  });
});

describe("combine: the view", () => {
  it("is frozen, with its names and limits", () => {
    const view = combine([policy("default")]);
    expect(Object.isFrozen(view)).toBe(true);
    expect(Object.isFrozen(view.names)).toBe(true);
    expect(Object.isFrozen(view.limits)).toBe(true);
    expect(() => {
      (view.limits as { maxMembers: number }).maxMembers = 1;
    }).toThrow(TypeError);
  });

  it("does not change when the list it was built from changes later", () => {
    const policies = [policy("default")];
    const view = combine(policies);
    policies.push(policy("opt-out", { mode: "off" }));
    expect(view.names).toEqual(["default"]);
    expect(view.modeFor(ENABLED, "", "configmaps", ALICE)).toBe("transparent");
  });
});

describe("staticPolicies", () => {
  it("is ready at once and serves the combined view of the policies given", () => {
    const source = staticPolicies([policy("default", { mode: "explicit", maxMembers: 7 })]);
    expect(source.ready).toBe(true);
    expect(source.view().names).toEqual(["default"]);
    expect(source.view().limits.maxMembers).toBe(7);
    expect(source.view().modeFor(ENABLED, "", "configmaps", ALICE)).toBe("explicit");
  });

  it("serves the same view every time", () => {
    const source = staticPolicies([policy("default")]);
    expect(source.view()).toBe(source.view());
  });

  it("serves the policies themselves, by name, for the webhook configurations", () => {
    const source = staticPolicies([policy("shop"), policy("billing", { mode: "off" })]);
    expect(source.view().policies.map((p) => [p.name, p.spec.mode])).toEqual([["billing", "off"], ["shop", "transparent"]]);
  });
});
