/**
 * The metric names and label matchers that the alert rules and the Grafana
 * dashboard of manifests/monitoring/ use, read from the files themselves,
 * and the names and labels a Prometheus text exposition offers.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "yaml";

const MONITORING = path.resolve(import.meta.dirname, "../../manifests/monitoring");

export interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { uid: string };
  targets?: { expr: string }[];
}

export interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
}

export async function alertRules(): Promise<Rule[]> {
  const file = parse(await readFile(path.join(MONITORING, "alerts.yaml"), "utf8")) as { groups: { rules: Rule[] }[] };
  return file.groups.flatMap((g) => g.rules);
}

export async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(path.join(MONITORING, "grafana-dashboard.json"), "utf8")) as Dashboard;
}

/** Every PromQL expression in the alert rules and the dashboard, named by where it is. */
export async function expressions(): Promise<{ where: string; expr: string }[]> {
  const rules = (await alertRules()).map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }));
  const panels = (await dashboard()).panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })));
  return [...rules, ...panels];
}

/** A metric an expression names, with the label names its matchers use (`name{a="x", b=~"y"}`). */
export interface MetricUse {
  readonly metric: string;
  readonly labels: readonly string[];
  readonly matchers: readonly { label: string; value: string }[];
}

/** Prometheus' own names in an expression are functions and keywords: kubetx's and the apiserver's metrics have these prefixes. */
const METRIC = /\b((?:kubetx|apiserver)_[a-zA-Z0-9_]+)(\{[^}]*\})?/g;
const MATCHER = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;

export function metricUses(expr: string): MetricUse[] {
  return [...expr.matchAll(METRIC)].map((m) => {
    const matchers = [...(m[2] ?? "").matchAll(MATCHER)].map((l) => ({ label: l[1] ?? "", value: l[2] ?? "" }));
    return { metric: m[1] ?? "", labels: matchers.map((l) => l.label), matchers };
  });
}

/** The series names a histogram or summary exposes besides its own name. */
const SERIES_SUFFIXES = ["_bucket", "_sum", "_count"];

/** Metric family name -> the label names its samples carry, from a text exposition. */
export function exposedMetrics(exposition: string): Map<string, Set<string>> {
  const families = new Map<string, Set<string>>();
  for (const line of exposition.split("\n")) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type?.[1]) {
      families.set(type[1], families.get(type[1]) ?? new Set());
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!sample?.[1]) continue;
    const family = familyOf(sample[1], families);
    for (const label of (sample[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) families.get(family)?.add(label[1] ?? "");
  }
  return families;
}

/** The family a series belongs to: itself, or the histogram it is the _bucket, _sum or _count of. */
export function familyOf(series: string, families: ReadonlyMap<string, unknown>): string {
  if (families.has(series)) return series;
  const suffix = SERIES_SUFFIXES.find((s) => series.endsWith(s) && families.has(series.slice(0, -s.length)));
  return suffix ? series.slice(0, -suffix.length) : series;
}

/** What is wrong with the uses of metrics of one prefix against an exposition: unknown metrics, unknown labels. */
export function problems(uses: readonly { where: string; use: MetricUse }[], families: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const found: string[] = [];
  for (const { where, use } of uses) {
    const family = familyOf(use.metric, families);
    const labels = families.get(family);
    if (!labels) {
      found.push(`${where}: ${use.metric} is not a metric`);
      continue;
    }
    for (const label of use.labels) if (label !== "le" && !labels.has(label)) found.push(`${where}: ${use.metric} has no label ${label}`);
  }
  return found;
}
