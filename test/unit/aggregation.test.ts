import { describe, expect, it } from "vitest";
import { aggregateAll } from "../../src/devcluster/aggregation.ts";

const rule = (resource: string) => ({ apiGroups: [""], resources: [resource], verbs: ["get"] });

describe("cluster role aggregation", () => {
  it("fills a role from the roles its selector matches, following chains", () => {
    const roles: Parameters<typeof aggregateAll>[0] = [
      { metadata: { name: "edit" }, aggregationRule: { clusterRoleSelectors: [{ matchLabels: { "to-edit": "true" } }] } },
      { metadata: { name: "view", labels: { "to-edit": "true" } }, aggregationRule: { clusterRoleSelectors: [{ matchLabels: { "to-view": "true" } }] } },
      { metadata: { name: "agg-view", labels: { "to-view": "true" } }, rules: [rule("configmaps")] },
      { metadata: { name: "agg-edit", labels: { "to-edit": "true" } }, rules: [rule("secrets"), rule("configmaps")] },
      { metadata: { name: "unrelated" }, rules: [rule("nodes")] },
    ];
    const byName = new Map(aggregateAll(roles).map((r) => [r.metadata?.name, r.rules]));
    expect(byName.get("view")).toEqual([rule("configmaps")]);
    expect(byName.get("edit")).toEqual(expect.arrayContaining([rule("configmaps"), rule("secrets")]));
    expect(byName.get("edit")).toHaveLength(2);
  });
});
