/**
 * validatePolicySpec: a TransactionPolicy spec as an admin wrote it either
 * comes back with the defaults filled in, or is refused with every problem
 * naming the field it concerns.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { POLICY_DEFAULTS } from "../../src/policy/policy.ts";
import type { PolicySpec } from "../../src/policy/policy.ts";
import { validatePolicySpec } from "../../src/policy/validate.ts";

const DEFAULT_POLICY = path.resolve(import.meta.dirname, "../../manifests/policy/default.yaml");

/** The spec a valid input turns into; fails the test with the problems otherwise. */
function accepted(spec: unknown): PolicySpec {
  const check = validatePolicySpec(spec);
  if (!check.ok) throw new Error(`expected a valid spec, got: ${check.problems.join("; ")}`);
  return check.spec;
}

/** The problems an invalid input is refused with; empty when it is accepted. */
function problems(spec: unknown): readonly string[] {
  const check = validatePolicySpec(spec);
  return check.ok ? [] : check.problems;
}

/** Expects exactly one problem, on the given field path. */
function expectOneProblemAt(spec: unknown, field: string): string {
  const found = problems(spec);
  expect(found).toHaveLength(1);
  expect(found[0]).toMatch(new RegExp(`^${field.replace(/[.[\]]/g, "\\$&")}: `));
  return found[0] ?? "";
}

describe("validatePolicySpec: defaults", () => {
  it("turns an empty spec into the default policy", () => {
    expect(accepted({})).toEqual(POLICY_DEFAULTS);
  });

  it("keeps the fields the admin set and fills in the others from the defaults", () => {
    const spec = accepted({ mode: "explicit", maxMembers: 50 });
    expect(spec).toEqual({ ...POLICY_DEFAULTS, mode: "explicit", maxMembers: 50 });
  });

  it("accepts a fully written-out policy unchanged", () => {
    const written = {
      mode: "off",
      namespaceSelector: { matchExpressions: [{ key: "team", operator: "In", values: ["a", "b"] }] },
      resources: { include: ["apps/*", "configmaps"], exclude: ["apps/replicasets"] },
      exemptUsers: ["admin"],
      exemptGroups: ["system:nodes"],
      exemptServiceAccounts: ["kube-system/replicaset-controller"],
      quietWindowSeconds: 1.5,
      lockTTLSeconds: 30,
      maxOpenSeconds: 120,
      maxMembers: 10,
      allowIrreversibleDeletes: true,
      journalRetentionSeconds: 0,
      recordRetentionSeconds: 86_400,
      maxRecords: 500,
      maxOpenTransactionsPerUser: 3,
      maxLocksPerUser: 50,
    };
    expect(accepted(written)).toEqual(written);
  });

  // Found and fixed: defaults used to be merged shallowly, so a `resources`
  // with only `include` came back without `exclude` and combine() threw on
  // every write the policy selected.
  it("fills in resources.exclude when the admin wrote only resources.include", () => {
    expect(accepted({ resources: { include: ["apps/*"] } }).resources).toEqual({ include: ["apps/*"], exclude: [] });
  });

  it("fills in resources.include when the admin wrote only resources.exclude", () => {
    expect(accepted({ resources: { exclude: ["secrets"] } }).resources).toEqual({ include: ["*"], exclude: ["secrets"] });
  });

  it("accepts manifests/policy/default.yaml, whose spec is exactly POLICY_DEFAULTS", async () => {
    const manifest = parse(await readFile(DEFAULT_POLICY, "utf8")) as { spec: unknown };
    expect(accepted(manifest.spec)).toEqual(POLICY_DEFAULTS);
    expect(manifest.spec).toEqual(POLICY_DEFAULTS);
  });
});

describe("validatePolicySpec: the spec as a whole", () => {
  it.each([
    ["null", null],
    ["a list", []],
    ["a string", "transparent"],
    ["missing", undefined],
  ])("refuses a spec that is %s", (_what, spec) => {
    expect(problems(spec)).toEqual(["spec: must be an object"]);
  });

  it("names an unknown top-level field and lists the known ones", () => {
    const problem = expectOneProblemAt({ quietWindow: 2 }, "spec.quietWindow");
    expect(problem).toContain("unknown field");
    expect(problem).toContain("quietWindowSeconds");
  });

  it("reports several problems together, one per bad field", () => {
    const found = problems({ mode: "always", maxMembers: 0, exemptUsers: "root", colour: "blue" });
    expect(found).toHaveLength(4);
    for (const field of ["spec.colour", "spec.mode", "spec.maxMembers", "spec.exemptUsers"]) {
      expect(found.some((p) => p.startsWith(`${field}: `)), field).toBe(true);
    }
  });
});

describe("validatePolicySpec: mode", () => {
  it.each(["off", "explicit", "transparent"])("accepts mode %s", (mode) => {
    expect(accepted({ mode }).mode).toBe(mode);
  });

  it.each([["Transparent"], ["on"], [""], [1], [null]])("refuses mode %j and quotes it", (mode) => {
    expect(expectOneProblemAt({ mode }, "spec.mode")).toContain(JSON.stringify(mode));
  });
});

describe("validatePolicySpec: numbers", () => {
  it.each([
    ["quietWindowSeconds", 0],
    ["quietWindowSeconds", 301],
    ["quietWindowSeconds", "2"],
    ["lockTTLSeconds", 0],
    ["lockTTLSeconds", 3601],
    ["lockTTLSeconds", 1.5],
    ["maxOpenSeconds", 86_401],
    ["maxOpenSeconds", 90.5],
    ["maxMembers", 0],
    ["maxMembers", 100_001],
    ["maxMembers", Number.POSITIVE_INFINITY],
    ["journalRetentionSeconds", -1],
    ["journalRetentionSeconds", 30 * 86_400 + 1],
    ["journalRetentionSeconds", Number.NaN],
    ["maxOpenTransactionsPerUser", 0],
    ["maxOpenTransactionsPerUser", 2.5],
    ["maxOpenTransactionsPerUser", 10_001],
    ["maxLocksPerUser", 0],
    ["maxLocksPerUser", "100"],
    ["maxLocksPerUser", 1_000_001],
  ])("refuses %s = %s and names the field", (field, value) => {
    expectOneProblemAt({ [field]: value }, `spec.${field}`);
  });

  it("takes a fractional quiet window, which is not a count", () => {
    expect(accepted({ quietWindowSeconds: 1.5 }).quietWindowSeconds).toBe(1.5);
  });

  it("says a whole number is needed where a fraction was given", () => {
    expect(expectOneProblemAt({ lockTTLSeconds: 2.5 }, "spec.lockTTLSeconds")).toContain("whole number");
  });

  it("accepts a journal retention of 0, meaning journals go at commit", () => {
    expect(accepted({ journalRetentionSeconds: 0 }).journalRetentionSeconds).toBe(0);
  });

  it("refuses a maxOpenSeconds no longer than the quiet window", () => {
    expect(expectOneProblemAt({ quietWindowSeconds: 30, maxOpenSeconds: 30 }, "spec.maxOpenSeconds")).toContain("spec.quietWindowSeconds");
  });

  it("compares maxOpenSeconds against the default quiet window when only maxOpenSeconds is set", () => {
    expectOneProblemAt({ maxOpenSeconds: POLICY_DEFAULTS.quietWindowSeconds }, "spec.maxOpenSeconds");
  });

  it("accepts a maxOpenSeconds just longer than the quiet window", () => {
    expect(accepted({ quietWindowSeconds: 30, maxOpenSeconds: 31 }).maxOpenSeconds).toBe(31);
  });
});

describe("validatePolicySpec: allowIrreversibleDeletes", () => {
  it.each([["true"], [1], [null]])("refuses %j", (value) => {
    expect(expectOneProblemAt({ allowIrreversibleDeletes: value }, "spec.allowIrreversibleDeletes")).toContain("true or false");
  });
});

describe("validatePolicySpec: namespaceSelector", () => {
  it("refuses a selector that is not an object", () => {
    expectOneProblemAt({ namespaceSelector: "kubetx.io/enabled=true" }, "spec.namespaceSelector");
  });

  it("names an unknown selector field", () => {
    expect(expectOneProblemAt({ namespaceSelector: { matchLabel: { a: "b" } } }, "spec.namespaceSelector.matchLabel")).toContain("unknown field");
  });

  it("accepts an empty selector, which selects every namespace", () => {
    expect(accepted({ namespaceSelector: {} }).namespaceSelector).toEqual({});
  });

  it("accepts prefixed label keys and an empty label value", () => {
    expect(accepted({ namespaceSelector: { matchLabels: { "example.com/team": "", "env": "prod_1.a-b" } } })).toBeTruthy();
  });

  it("refuses matchLabels that is not a map", () => {
    expectOneProblemAt({ namespaceSelector: { matchLabels: ["a=b"] } }, "spec.namespaceSelector.matchLabels");
  });

  it.each(["-team", "team-", "a/b/c", "Example.com/team", "x".repeat(64), ""])("refuses the label key %j and quotes it", (key) => {
    expect(expectOneProblemAt({ namespaceSelector: { matchLabels: { [key]: "v" } } }, "spec.namespaceSelector.matchLabels")).toContain(`'${key}'`);
  });

  it.each([["has space"], ["-lead"], ["trail-"], ["y".repeat(64)], [true], [3]])("refuses the label value %j under its key", (value) => {
    expectOneProblemAt({ namespaceSelector: { matchLabels: { team: value } } }, "spec.namespaceSelector.matchLabels.team");
  });

  it("refuses matchExpressions that is not a list", () => {
    expectOneProblemAt({ namespaceSelector: { matchExpressions: { key: "a", operator: "Exists" } } }, "spec.namespaceSelector.matchExpressions");
  });

  it("refuses a requirement that is not an object, naming its index", () => {
    const selector = { matchExpressions: [{ key: "a", operator: "Exists" }, "a in (b)"] };
    expectOneProblemAt({ namespaceSelector: selector }, "spec.namespaceSelector.matchExpressions[1]");
  });

  it("refuses an unknown operator, naming the requirement's operator field", () => {
    const problem = expectOneProblemAt({ namespaceSelector: { matchExpressions: [{ key: "team", operator: "Equals", values: ["a"] }] } },
      "spec.namespaceSelector.matchExpressions[0].operator");
    expect(problem).toContain("\"Equals\"");
  });

  it("refuses a requirement whose key is not a label key", () => {
    expectOneProblemAt({ namespaceSelector: { matchExpressions: [{ key: "no spaces", operator: "Exists" }] } }, "spec.namespaceSelector.matchExpressions[0].key");
  });

  it("refuses a requirement without a key", () => {
    expectOneProblemAt({ namespaceSelector: { matchExpressions: [{ operator: "Exists" }] } }, "spec.namespaceSelector.matchExpressions[0].key");
  });

  it.each(["In", "NotIn"])("refuses %s without values", (operator) => {
    for (const values of [undefined, []]) {
      const problem = expectOneProblemAt({ namespaceSelector: { matchExpressions: [{ key: "team", operator, values }] } },
        "spec.namespaceSelector.matchExpressions[0].values");
      expect(problem).toContain("at least one value");
    }
  });

  it.each(["Exists", "DoesNotExist"])("refuses %s with values", (operator) => {
    const problem = expectOneProblemAt({ namespaceSelector: { matchExpressions: [{ key: "team", operator, values: ["a"] }] } },
      "spec.namespaceSelector.matchExpressions[0].values");
    expect(problem).toContain("takes no values");
  });

  it.each(["Exists", "DoesNotExist"])("accepts %s with an empty values list", (operator) => {
    expect(accepted({ namespaceSelector: { matchExpressions: [{ key: "team", operator, values: [] }] } })).toBeTruthy();
  });

  it("refuses values that are not a list", () => {
    expectOneProblemAt({ namespaceSelector: { matchExpressions: [{ key: "team", operator: "In", values: "a" }] } }, "spec.namespaceSelector.matchExpressions[0].values");
  });

  // Found and fixed: a list of numbers used to pass, and could never match.
  it("refuses values that are not strings", () => {
    expectOneProblemAt({ namespaceSelector: { matchExpressions: [{ key: "tier", operator: "In", values: [1, 2] }] } }, "spec.namespaceSelector.matchExpressions[0].values");
  });

  it("reports a problem for each bad requirement with its own index", () => {
    const selector = { matchExpressions: [{ key: "a", operator: "In" }, { key: "b", operator: "Exists" }, { key: "c", operator: "Exists", values: ["x"] }] };
    expect(problems({ namespaceSelector: selector })).toEqual([
      expect.stringMatching(/^spec\.namespaceSelector\.matchExpressions\[0\]\.values: /),
      expect.stringMatching(/^spec\.namespaceSelector\.matchExpressions\[2\]\.values: /),
    ]);
  });
});

describe("validatePolicySpec: resources", () => {
  it("accepts every pattern form: resource, group/resource, group/* and *", () => {
    const resources = { include: ["configmaps", "apps/deployments", "networking.k8s.io/*", "*"], exclude: ["apps/replicasets"] };
    expect(accepted({ resources }).resources).toEqual(resources);
  });

  it("refuses resources that is not an object", () => {
    expectOneProblemAt({ resources: ["*"] }, "spec.resources");
  });

  it("names an unknown field under resources", () => {
    expect(expectOneProblemAt({ resources: { include: ["*"], exclude: [], only: ["pods"] } }, "spec.resources.only")).toContain("unknown field");
  });

  it("refuses an include that is not a list", () => {
    expectOneProblemAt({ resources: { include: "*", exclude: [] } }, "spec.resources.include");
  });

  it("refuses an empty pattern, naming the include list", () => {
    const found = problems({ resources: { include: [""], exclude: [] } });
    expect(found.length).toBeGreaterThan(0);
    for (const problem of found) expect(problem).toMatch(/^spec\.resources\.include(\[0\])?: /);
  });

  it.each(["*/deployments", "apps/deployments/scale", "Deployments", "apps/", "/pods", "apps/*s"])("refuses the pattern %j and names its index", (pattern) => {
    const problem = expectOneProblemAt({ resources: { include: ["*"], exclude: ["configmaps", pattern] } }, "spec.resources.exclude[1]");
    expect(problem).toContain(`'${pattern}'`);
  });
});

describe("validatePolicySpec: exemptions", () => {
  it.each(["exemptUsers", "exemptGroups"])("refuses %s that is not a list of non-empty strings", (field) => {
    for (const value of ["admin", [""], [1], {}]) expectOneProblemAt({ [field]: value }, `spec.${field}`);
  });

  it("accepts exempt service accounts written as namespace/name", () => {
    expect(accepted({ exemptServiceAccounts: ["kube-system/replicaset-controller", "ci/deployer.v2"] }).exemptServiceAccounts).toHaveLength(2);
  });

  it.each(["deployer", "system:serviceaccount:ci:deployer", "ci/deployer/extra", "CI/deployer", "/deployer", "ci/"])("refuses the service account %j and quotes it", (account) => {
    expect(expectOneProblemAt({ exemptServiceAccounts: [account] }, "spec.exemptServiceAccounts")).toContain(`'${account}'`);
  });

  it("refuses exempt service accounts that are not a list of strings", () => {
    expectOneProblemAt({ exemptServiceAccounts: "ci/deployer" }, "spec.exemptServiceAccounts");
  });
});
