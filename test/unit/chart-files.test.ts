/**
 * Each thing is written once: the chart's CRD templates, its copies of the
 * dashboard and alert rules, and the PrometheusRule object are derived from
 * manifests/ by `npm run chart:sync`, and the chart's default policy values
 * are manifests/policy/default.yaml. These checks fail when someone edits
 * one side only.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { chartCrdTemplate, derivedFiles, prometheusRule, REPO } from "../../tools/chart-sync.ts";

describe("the files derived from manifests/", () => {
  it("are what npm run chart:sync makes (run it after changing manifests/crds or manifests/monitoring)", async () => {
    for (const [file, expected] of await derivedFiles()) {
      const actual = await readFile(file, "utf8").catch(() => "(missing)");
      expect(actual, `${path.relative(REPO, file)} is out of date: run npm run chart:sync`).toBe(expected);
    }
  });

  it("wrap a CRD in crds.install and add Helm's labels after its own, then the keep policy", () => {
    const template = chartCrdTemplate("# c\nkind: CustomResourceDefinition\nmetadata:\n  name: x.kubetx.io\n  labels:\n    a: b\nspec: {}\n", "x.yaml");
    expect(template.split("\n").slice(1, 9)).toEqual([
      "{{- if .Values.crds.install }}", "# c", "kind: CustomResourceDefinition", "metadata:", "  name: x.kubetx.io", "  labels:", "    a: b",
      '    {{- include "kubetx.helmLabels" . | nindent 4 }}',
    ]);
    expect(template).toContain("helm.sh/resource-policy: keep");
    expect(template.endsWith("spec: {}\n{{- end }}\n")).toBe(true);
  });

  it("refuse a CRD that Helm would read as a template", () => {
    expect(() => chartCrdTemplate("metadata:\n  name: x\ndescription: '{{ x }}'\n", "x.yaml")).toThrow(/x\.yaml: '\{\{' would be read as a Helm template action/);
  });

  it("refuse a CRD without the labels every kubetx object has", () => {
    expect(() => chartCrdTemplate("metadata:\n  name: x\nspec: {}\n", "x.yaml")).toThrow(/x\.yaml: expected 'metadata:', then ' {2}name: \.\.\.', then ' {2}labels:'/);
  });

  it("turn the alert rules into a PrometheusRule whose spec is the rules file", () => {
    const rules = "# why\ngroups:\n  - name: g\n    rules: []\n";
    const object = parse(prometheusRule(rules)) as { kind: string; spec: unknown };
    expect(object.kind).toBe("PrometheusRule");
    expect(object.spec).toEqual(parse(rules));
  });
});

describe("the chart's default policy", () => {
  it("is manifests/policy/default.yaml, field for field", async () => {
    const values = parse(await readFile(path.join(REPO, "charts/kubetx/values.yaml"), "utf8")) as { defaultPolicy: { name: string; spec: unknown } };
    const policy = parse(await readFile(path.join(REPO, "manifests/policy/default.yaml"), "utf8")) as { metadata: { name: string }; spec: unknown };
    expect(values.defaultPolicy.name).toBe(policy.metadata.name);
    expect(values.defaultPolicy.spec).toEqual(policy.spec);
  });
});
