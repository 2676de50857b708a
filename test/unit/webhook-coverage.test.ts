/**
 * Which writes kubetx's object webhooks send to kubetx, derived from the
 * TransactionPolicies: one entry per policy that is not off, whose selector,
 * rules and matchConditions say what the policy covers.
 */
import { describe, expect, it } from "vitest";
import type { NamedPolicy } from "../../src/policy/combine.ts";
import type { PolicySpec } from "../../src/policy/policy.ts";
import { POLICY_DEFAULTS } from "../../src/policy/policy.ts";
import type { WebhookMatch } from "../../src/webhooks/coverage.ts";
import { EXCLUDED_NAMESPACES, MATCH_CONDITIONS, NO_POLICY_CONDITION, OPT_OUT_CONDITION, objectWebhooks } from "../../src/webhooks/coverage.ts";

const BASE = "validate.kubetx.io";
const OPERATIONS = ["CREATE", "UPDATE", "DELETE"];
/** What every policy's entry skips: kubetx's own writes, Events, and objects opted out by annotation. */
const ALWAYS = [...MATCH_CONDITIONS, OPT_OUT_CONDITION];
const NOT_EXCLUDED = { key: "kubernetes.io/metadata.name", operator: "NotIn", values: EXCLUDED_NAMESPACES };

/** A policy that covers namespaces labelled team=<name>, every resource, with no exemptions. */
function policy(name: string, spec: Partial<PolicySpec> = {}): NamedPolicy {
  return {
    name,
    spec: { ...POLICY_DEFAULTS, namespaceSelector: { matchLabels: { team: name } }, exemptUsers: [], exemptGroups: [], exemptServiceAccounts: [], ...spec },
  };
}

function only(policies: readonly NamedPolicy[]): WebhookMatch {
  const entries = objectWebhooks(policies, BASE);
  expect(entries).toHaveLength(1);
  return entries[0] as WebhookMatch;
}

function rulesFor(include: string[], exclude: string[] = []): WebhookMatch["rules"] {
  return only([policy("p", { resources: { include, exclude } })]).rules;
}

function conditionsFor(spec: Partial<PolicySpec>): Record<string, string> {
  return Object.fromEntries(only([policy("p", spec)]).matchConditions.map((c) => [c.name, c.expression]));
}

describe("objectWebhooks with no policy", () => {
  it("keeps one entry under the base name that calls nothing", () => {
    const entry = only([]);
    expect(entry.name).toBe(BASE);
    expect(entry.matchConditions).toContainEqual(NO_POLICY_CONDITION);
    expect(NO_POLICY_CONDITION.expression).toBe("false");
  });

  it("treats policies that are all off as no policy", () => {
    expect(only([policy("a", { mode: "off" }), policy("b", { mode: "off" })]).matchConditions).toContainEqual(NO_POLICY_CONDITION);
  });

  it("treats a policy that excludes everything it includes as no policy", () => {
    expect(only([policy("a", { resources: { include: ["configmaps"], exclude: ["*"] } })]).matchConditions).toContainEqual(NO_POLICY_CONDITION);
  });
});

describe("objectWebhooks with one policy", () => {
  it("names the entry after the base name, as manifests/ installs it", () => {
    expect(only([policy("default")]).name).toBe(BASE);
  });

  it("selects the policy's namespaces and never the ones kubetx leaves alone", () => {
    const entry = only([policy("p", { namespaceSelector: { matchLabels: { env: "prod" }, matchExpressions: [{ key: "tier", operator: "In", values: ["web"] }] } })]);
    expect(entry.namespaceSelector).toEqual({
      matchLabels: { env: "prod" },
      matchExpressions: [{ key: "tier", operator: "In", values: ["web"] }, NOT_EXCLUDED],
    });
  });

  it("selects every namespace but the excluded ones for an empty selector", () => {
    expect(only([policy("p", { namespaceSelector: {} })]).namespaceSelector).toEqual({ matchExpressions: [NOT_EXCLUDED] });
  });

  it("leaves out the values of Exists and DoesNotExist, as the apiserver stores them", () => {
    const entry = only([policy("p", { namespaceSelector: { matchExpressions: [{ key: "team", operator: "Exists", values: [] }] } })]);
    expect(entry.namespaceSelector.matchExpressions?.[0]).toEqual({ key: "team", operator: "Exists" });
  });

  it("keeps kubetx's own writes and Events out first", () => {
    expect(only([policy("p")]).matchConditions.slice(0, 2)).toEqual(MATCH_CONDITIONS);
  });

  it("skips objects opted out with kubetx.io/transaction: none, as admission does", () => {
    expect(only([policy("p")]).matchConditions).toContainEqual(OPT_OUT_CONDITION);
    expect(OPT_OUT_CONDITION.expression).toContain('oldObject.metadata.annotations["kubetx.io/transaction"] == "none"');
    expect(OPT_OUT_CONDITION.expression).toMatch(/^!\(request\.operation == "DELETE" \? \(oldObject != null/);
  });

  it("adds no condition of its own for a policy without exclusions or exemptions", () => {
    expect(only([policy("p")]).matchConditions).toEqual(ALWAYS);
  });

  it("ignores the policy's limits and mode, which the webhook cannot act on", () => {
    const a = only([policy("p", { mode: "explicit", quietWindowSeconds: 9, maxMembers: 3 })]);
    expect(a).toEqual(only([policy("p")]));
  });
});

describe("objectWebhooks rules for resource patterns", () => {
  it("matches every namespaced resource for *", () => {
    expect(rulesFor(["*"])).toEqual([{ operations: OPERATIONS, apiGroups: ["*"], apiVersions: ["*"], resources: ["*"], scope: "Namespaced" }]);
  });

  it("matches a core resource in the core group", () => {
    expect(rulesFor(["configmaps"])).toEqual([{ operations: OPERATIONS, apiGroups: [""], apiVersions: ["*"], resources: ["configmaps"], scope: "Namespaced" }]);
  });

  it("matches every resource of a group for group/*", () => {
    expect(rulesFor(["apps/*"]).map((r) => [r.apiGroups, r.resources])).toEqual([[["apps"], ["*"]]]);
  });

  it("gathers the resources of one group into one rule, groups in order", () => {
    const rules = rulesFor(["apps/statefulsets", "secrets", "apps/deployments", "configmaps"]);
    expect(rules.map((r) => [r.apiGroups, r.resources])).toEqual([[[""], ["configmaps", "secrets"]], [["apps"], ["deployments", "statefulsets"]]]);
  });

  it("lets group/* absorb that group's single resources", () => {
    expect(rulesFor(["apps/deployments", "apps/*"]).map((r) => r.resources)).toEqual([["*"]]);
  });

  it("lets * absorb everything else", () => {
    expect(rulesFor(["configmaps", "*", "apps/*"]).map((r) => [r.apiGroups, r.resources])).toEqual([[["*"], ["*"]]]);
  });

  it("drops an included pattern that an exclusion swallows whole, with no condition for it", () => {
    const entry = only([policy("p", { resources: { include: ["configmaps", "secrets", "apps/deployments"], exclude: ["secrets", "apps/*"] } })]);
    expect(entry.rules.map((r) => [r.apiGroups, r.resources])).toEqual([[[""], ["configmaps"]]]);
    expect(entry.matchConditions).toEqual(ALWAYS);
  });
});

describe("objectWebhooks conditions for what rules cannot say", () => {
  it("skips an excluded resource inside an included wildcard by a condition", () => {
    expect(conditionsFor({ resources: { include: ["*"], exclude: ["secrets"] } })["not-excluded-resources"])
      .toBe('!((request.resource.group == "" && request.resource.resource == "secrets"))');
  });

  it("skips an excluded group by comparing the group alone", () => {
    expect(conditionsFor({ resources: { include: ["*"], exclude: ["batch/*", "apps/deployments"] } })["not-excluded-resources"])
      .toBe('!(request.resource.group == "batch" || (request.resource.group == "apps" && request.resource.resource == "deployments"))');
  });

  it("keeps only the exclusions that fall inside what is still included", () => {
    expect(conditionsFor({ resources: { include: ["apps/*"], exclude: ["apps/daemonsets", "secrets", "batch/*"] } })["not-excluded-resources"])
      .toBe('!((request.resource.group == "apps" && request.resource.resource == "daemonsets"))');
  });

  it("skips exempt users and exempt service accounts by user name", () => {
    expect(conditionsFor({ exemptUsers: ["ci-bot"], exemptServiceAccounts: ["flux-system/kustomize-controller"] })["not-exempt-users"])
      .toBe('!(request.userInfo.username in ["ci-bot", "system:serviceaccount:flux-system:kustomize-controller"])');
  });

  it("skips exempt groups, and requests without groups do not make the condition fail", () => {
    expect(conditionsFor({ exemptGroups: ["system:nodes"] })["not-exempt-groups"])
      .toBe('!(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in ["system:nodes"]))');
  });

  it("quotes names with quotes and backslashes as valid CEL strings", () => {
    expect(conditionsFor({ exemptUsers: ['o"brien\\x'] })["not-exempt-users"]).toBe('!(request.userInfo.username in ["o\\"brien\\\\x"])');
  });

  it("keeps the default policy's control-plane identities out", () => {
    const conditions = Object.fromEntries(only([{ name: "default", spec: POLICY_DEFAULTS }]).matchConditions.map((c) => [c.name, c.expression]));
    expect(conditions["not-exempt-users"]).toContain('"system:kube-controller-manager"');
    expect(conditions["not-exempt-groups"]).toContain('"system:serviceaccounts:kube-system"');
  });
});

describe("objectWebhooks with several policies", () => {
  it("gives each policy that is not off an entry, the first by name under the base name", () => {
    const entries = objectWebhooks([policy("shop"), policy("billing"), policy("legacy", { mode: "off" })], BASE);
    expect(entries.map((e) => e.name)).toEqual([BASE, `shop.${BASE}`]);
    expect(entries.map((e) => e.namespaceSelector.matchLabels)).toEqual([{ team: "billing" }, { team: "shop" }]);
  });

  it("gives the same entries whatever order the policies come in", () => {
    const policies = [policy("c"), policy("a"), policy("b")];
    expect(objectWebhooks(policies, BASE)).toEqual(objectWebhooks([...policies].reverse(), BASE));
  });

  it("keeps each policy's own exemptions on its own entry", () => {
    const [billing, shop] = objectWebhooks([policy("shop", { exemptUsers: ["carol"] }), policy("billing")], BASE);
    expect(billing?.matchConditions.map((c) => c.name)).not.toContain("not-exempt-users");
    expect(shop?.matchConditions.map((c) => c.name)).toContain("not-exempt-users");
  });

  it("shares one entry between policies that would have identical ones", () => {
    const same = { namespaceSelector: { matchLabels: { team: "shop" } } };
    expect(objectWebhooks([policy("a", same), policy("b", { ...same, quietWindowSeconds: 5 })], BASE).map((e) => e.name)).toEqual([BASE]);
  });

  it("names an entry by a hash when the policy's name would make it too long", () => {
    const long = "p".repeat(240);
    const [, second] = objectWebhooks([policy("a"), policy(long)], BASE);
    expect(second?.name).toMatch(/^policy-[0-9a-f]{16}\.validate\.kubetx\.io$/);
  });
});
