/**
 * Files that are derived from others, so each thing is written once:
 * - the chart's CRD templates, from manifests/crds/ (each CRD file wrapped
 *   in `crds.install`, with Helm's labels and the `crds.keep` resource
 *   policy added to its metadata);
 * - the chart's copies of the Grafana dashboard and the alert rules, from
 *   manifests/monitoring/ (a chart cannot read files outside itself);
 * - manifests/monitoring/prometheus-rule.yaml, the alert rules as a
 *   PrometheusRule object.
 * `npm run chart:sync` writes them; test/unit/chart-files.test.ts fails
 * when one differs from what this makes.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

export const REPO = path.resolve(import.meta.dirname, "..");
const CRD_SOURCE_DIR = path.join(REPO, "manifests", "crds");
const MONITORING_DIR = path.join(REPO, "manifests", "monitoring");
const CHART_DIR = path.join(REPO, "charts", "kubetx");
const CRD_TEMPLATE_DIR = path.join(CHART_DIR, "templates", "crds");
const COPIED = ["grafana-dashboard.json", "alerts.yaml"] as const;

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

/** Absolute path -> the content it should have. */
export async function derivedFiles(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const crds = (await readdir(CRD_SOURCE_DIR)).filter((f) => f.endsWith(".yaml")).sort();
  for (const file of crds) out.set(path.join(CRD_TEMPLATE_DIR, file), chartCrdTemplate(await readFile(path.join(CRD_SOURCE_DIR, file), "utf8"), file));
  for (const file of COPIED) out.set(path.join(CHART_DIR, "files", file), await readFile(path.join(MONITORING_DIR, file), "utf8"));
  out.set(path.join(MONITORING_DIR, "prometheus-rule.yaml"), prometheusRule(await readFile(path.join(MONITORING_DIR, "alerts.yaml"), "utf8")));
  return out;
}

async function main(): Promise<void> {
  for (const [file, content] of await derivedFiles()) {
    await writeFile(file, content);
    process.stderr.write(`wrote ${path.relative(REPO, file)}\n`);
  }
}

if (import.meta.main) await main();
