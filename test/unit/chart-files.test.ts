/**
 * Each thing is written once: the chart's CRD templates, its copies of the
 * manifests its templates read, of the dashboard and the alert rules, the
 * default policy in its values.yaml, and the PrometheusRule object are
 * derived from manifests/ by `npm run chart:sync`. These checks fail when
 * someone edits one side only.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { chartCrdTemplate, derivedFiles, prometheusRule, REPO, valuesWithPolicy } from "../../tools/chart-sync.ts";

describe("the files derived from manifests/", () => {
  it("are what npm run chart:sync makes (run it after changing manifests/)", async () => {
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

describe("the default policy in the chart's values", () => {
  const values = "replicas: 2\ndefaultPolicy:\n  create: true\n  # why\n  spec:\n    mode: explicit\n\n# next\nauditSink: {}\n";

  it("is the policy's spec, comments included, indented under defaultPolicy.spec, and leaves every other value alone", () => {
    const policy = "kind: TransactionPolicy\nspec:\n  mode: transparent\n  # the control plane\n  exemptUsers: [a]\n";
    expect(valuesWithPolicy(values, policy)).toBe(
      "replicas: 2\ndefaultPolicy:\n  create: true\n  # why\n  spec:\n    mode: transparent\n    # the control plane\n    exemptUsers: [a]\n\n# next\nauditSink: {}\n",
    );
  });

  it("is refused without a place for it, or from a policy without a spec", () => {
    expect(() => valuesWithPolicy("replicas: 2\n", "spec:\n  mode: off\n")).toThrow(/values\.yaml: expected 'defaultPolicy:' with a ' {2}spec:' line under it/);
    expect(() => valuesWithPolicy(values, "kind: TransactionPolicy\n")).toThrow(/default\.yaml: expected a top-level 'spec:' block/);
  });
});

describe("the chart's values", () => {
  it("restore with the rules of manifests/rbac.yaml's kubetx:restore unless told otherwise", async () => {
    const values = parse(await readFile(path.join(REPO, "charts/kubetx/values.yaml"), "utf8")) as { restoreRules: unknown };
    const restore = parseAllDocuments(await readFile(path.join(REPO, "manifests/rbac.yaml"), "utf8"))
      .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; rules?: unknown })
      .find((o) => o.kind === "ClusterRole" && o.metadata?.name === "kubetx:restore");
    expect(values.restoreRules).toEqual(restore?.rules);
  });

  it("in mode networkPolicy, admit to /metrics whom components/control-plane-only admits unless told otherwise, and name no webhook source of their own", async () => {
    type Values = { apiserverClient: { mode: string; networkPolicy: { from: unknown[]; metricsFrom: unknown } } };
    const values = parse(await readFile(path.join(REPO, "charts/kubetx/values.yaml"), "utf8")) as Values;
    const policy = parse(await readFile(path.join(REPO, "manifests/components/control-plane-only/networkpolicy.yaml"), "utf8")) as { spec: { ingress: { ports: { port: string }[]; from: unknown }[] } };
    const metrics = policy.spec.ingress.find((rule) => rule.ports.some((p) => p.port === "metrics"));
    expect(values.apiserverClient.mode).toBe("certificate");
    expect(values.apiserverClient.networkPolicy.metricsFrom).toEqual(metrics?.from);
    expect(values.apiserverClient.networkPolicy.from).toEqual([]);
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

describe("the chart's Chart.yaml", () => {
  /** The first Kubernetes minor version that serves a CRD's selectableFields by default (CustomResourceFieldSelectors beta). */
  const SELECTABLE_FIELDS_SINCE = 32;

  it("asks for a Kubernetes that serves every CRD feature the chart installs: 1.32, for the Transaction CRD's selectableFields", async () => {
    type Crd = { spec: { versions: { selectableFields?: unknown[] }[] } };
    const dir = path.join(REPO, "manifests/crds");
    const crds: Crd[] = [];
    for (const file of (await readdir(dir)).filter((f) => f.endsWith(".yaml"))) crds.push(parse(await readFile(path.join(dir, file), "utf8")) as Crd);
    expect(crds.some((crd) => crd.spec.versions.some((v) => (v.selectableFields ?? []).length > 0))).toBe(true);
    const chart = parse(await readFile(path.join(REPO, "charts/kubetx/Chart.yaml"), "utf8")) as { kubeVersion: string };
    const minimum = /^>=1\.(\d+)\.0-0$/.exec(chart.kubeVersion);
    expect(minimum, chart.kubeVersion).not.toBeNull();
    expect(Number(minimum?.[1])).toBeGreaterThanOrEqual(SELECTABLE_FIELDS_SINCE);
  });
});
