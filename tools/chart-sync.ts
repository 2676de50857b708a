/**
 * Files that are derived from others, so each thing is written once:
 * - the chart's CRD templates, from manifests/crds/ (each CRD file wrapped
 *   in `crds.install`, with Helm's labels and the `crds.keep` resource
 *   policy added to its metadata);
 * - the chart's copies of the other manifests it installs (RBAC, Deployment,
 *   Service, PodDisruptionBudget, webhook configurations, the NetworkPolicy
 *   of components/control-plane-only), which its templates read and change
 *   only where a value says so (a chart cannot read files outside itself);
 * - the default policy's spec in the chart's values.yaml, from
 *   manifests/policy/default.yaml, comments included;
 * - the chart's copies of the Grafana dashboard and the alert rules, from
 *   manifests/monitoring/;
 * - manifests/monitoring/prometheus-rule.yaml, the alert rules as a
 *   PrometheusRule object.
 * `npm run chart:sync` writes them; test/unit/chart-files.test.ts fails
 * when one differs from what this makes.
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

export const REPO = path.resolve(import.meta.dirname, "..");
const CRD_SOURCE_DIR = path.join(REPO, "manifests", "crds");
const MONITORING_DIR = path.join(REPO, "manifests", "monitoring");
const CHART_DIR = path.join(REPO, "charts", "kubetx");
const CRD_TEMPLATE_DIR = path.join(CHART_DIR, "templates", "crds");
const COPIED = ["grafana-dashboard.json", "alerts.yaml"] as const;
/** The manifests the chart's templates read from files/manifests/ (see templates/_helpers.tpl "kubetx.manifest"). */
export const CHART_MANIFESTS = [
  "deployment.yaml", "pdb.yaml", "rbac.yaml", "service.yaml", "user-rbac.yaml", "webhooks.yaml", "components/control-plane-only/networkpolicy.yaml",
] as const;
const DEFAULT_POLICY = path.join(REPO, "manifests", "policy", "default.yaml");
const VALUES = path.join(CHART_DIR, "values.yaml");
/** Where the default policy's spec sits in values.yaml: under `defaultPolicy:`, as `  spec:`. */
const VALUES_POLICY_SPEC = /^defaultPolicy:\n(?:(?: {2}.*)?\n)*? {2}spec:\n((?:(?: {4}.*)?\n)*)/m;

/** What follows the CRD's own `metadata.labels` (two-space indented metadata). */
const CRD_METADATA = `    {{- include "kubetx.helmLabels" . | nindent 4 }}
  {{- if .Values.crds.keep }}
  annotations:
    # helm uninstall leaves the CRD, and with it every Transaction record and policy.
    helm.sh/resource-policy: keep
  {{- end }}
`;

/** The chart template for one CRD file of manifests/crds/: Helm's labels after its own, then the keep policy. */
export function chartCrdTemplate(source: string, file: string): string {
  if (source.includes("{{")) throw new Error(`${file}: '{{' would be read as a Helm template action; write it another way`);
  const labels = /^metadata:\n {2}name: .*\n {2}labels:\n(?: {4}.*\n)+/m.exec(source);
  if (!labels) throw new Error(`${file}: expected 'metadata:', then '  name: ...', then '  labels:' with the labels every kubetx object has`);
  const at = labels.index + labels[0].length;
  return [
    `{{- /* Generated from manifests/crds/${file} by \`npm run chart:sync\`: edit that file, not this one. */ -}}\n`,
    "{{- if .Values.crds.install }}\n",
    source.slice(0, at),
    CRD_METADATA,
    source.slice(at),
    source.endsWith("\n") ? "" : "\n",
    "{{- end }}\n",
  ].join("");
}

/** The plain rules file as a monitoring.coreos.com/v1 PrometheusRule: its `groups` are the object's spec. */
export function prometheusRule(rules: string): string {
  const body = rules.split("\n").filter((line) => !line.startsWith("#")).join("\n").trim();
  const indented = body.split("\n").map((line) => (line ? `  ${line}` : line)).join("\n");
  return `# Generated from alerts.yaml by \`npm run chart:sync\`: edit that file, not this one.
# The kubetx alert rules for the Prometheus operator (kubectl apply -f this
# file where its CRDs are installed); alerts.yaml says what each rule means.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: kubetx
  namespace: kubetx-system
  labels:
    app.kubernetes.io/name: kubetx
    app.kubernetes.io/part-of: kubetx
spec:
${indented}
`;
}

/** The `spec:` block of a policy manifest, without the `spec:` line. */
function policySpec(policy: string): string {
  const spec = /^spec:\n((?:(?: {2}.*)?\n)*)/m.exec(policy);
  if (!spec?.[1]) throw new Error("manifests/policy/default.yaml: expected a top-level 'spec:' block, indented by two spaces");
  return spec[1];
}

/**
 * values.yaml with `defaultPolicy.spec` replaced by the spec of the default
 * policy (indented two more spaces, its comments kept), so `helm show
 * values` lists every field with its default. Blank lines that end the
 * block stay where they are, before the next value.
 */
export function valuesWithPolicy(values: string, policy: string): string {
  const block = VALUES_POLICY_SPEC.exec(values);
  const old = block?.[1];
  if (block === null || old === undefined) throw new Error("charts/kubetx/values.yaml: expected 'defaultPolicy:' with a '  spec:' line under it");
  const spec = withoutTrailingBlankLines(policySpec(policy)).split("\n").map((line) => (line ? `  ${line}` : line)).join("\n");
  const trailing = old.slice(withoutTrailingBlankLines(old).length);
  const at = block.index + block[0].length - old.length;
  return values.slice(0, at) + spec + trailing + values.slice(at + old.length);
}

function withoutTrailingBlankLines(block: string): string {
  return block.replace(/\n+$/, "\n");
}

/** Absolute path -> the content it should have. */
export async function derivedFiles(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const crds = (await readdir(CRD_SOURCE_DIR)).filter((f) => f.endsWith(".yaml")).sort();
  for (const file of crds) out.set(path.join(CRD_TEMPLATE_DIR, file), chartCrdTemplate(await readFile(path.join(CRD_SOURCE_DIR, file), "utf8"), file));
  for (const file of CHART_MANIFESTS) out.set(path.join(CHART_DIR, "files", "manifests", file), await readFile(path.join(REPO, "manifests", file), "utf8"));
  out.set(VALUES, valuesWithPolicy(await readFile(VALUES, "utf8"), await readFile(DEFAULT_POLICY, "utf8")));
  for (const file of COPIED) out.set(path.join(CHART_DIR, "files", file), await readFile(path.join(MONITORING_DIR, file), "utf8"));
  out.set(path.join(MONITORING_DIR, "prometheus-rule.yaml"), prometheusRule(await readFile(path.join(MONITORING_DIR, "alerts.yaml"), "utf8")));
  return out;
}

async function main(): Promise<void> {
  for (const [file, content] of await derivedFiles()) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    process.stderr.write(`wrote ${path.relative(REPO, file)}\n`);
  }
}

if (import.meta.main) await main();
