/**
 * The alert rules and the Grafana dashboard in manifests/monitoring/ name
 * only metrics kubetx really serves, with labels it really sets: read from
 * a registry built by createMetrics(), so a metric added, renamed or
 * dropped there is checked without editing this test. The apiserver's
 * metrics are checked against a real apiserver in
 * test/integration/monitoring.test.ts.
 */
import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/telemetry/metrics.ts";
import { TERMINAL_PHASES } from "../../src/transactions/model.ts";
import type { Phase } from "../../src/transactions/model.ts";
import { alertRules, dashboard, exposedMetrics, expressions, metricUses, problems } from "../support/monitoring.ts";

/** kubetx's registry, with one report of each kind so labelled families show their label names. */
async function kubetxExposition(): Promise<string> {
  const metrics = createMetrics();
  metrics.reviewed("/validate", "member", { seconds: 0.01, calls: 1 });
  metrics.resolved("Committed");
  metrics.rolledBack(0.5, 2);
  metrics.lockConflict();
  metrics.openTransactions(1);
  metrics.locksHeld(1);
  return metrics.render();
}

async function usesWithPrefix(prefix: string): Promise<{ where: string; use: ReturnType<typeof metricUses>[number] }[]> {
  return (await expressions()).flatMap(({ where, expr }) => metricUses(expr).map((use) => ({ where, use }))).filter((u) => u.use.metric.startsWith(prefix));
}

describe("the alert rules and the dashboard", () => {
  it("name only metrics and labels that kubetx's registry has", async () => {
    const uses = await usesWithPrefix("kubetx_");
    expect(uses.length).toBeGreaterThan(0);
    expect(problems(uses, exposedMetrics(await kubetxExposition()))).toEqual([]);
  });

  it("match transaction outcomes by phases a transaction can end in", async () => {
    const outcomes = (await usesWithPrefix("kubetx_transactions_total")).flatMap((u) => u.use.matchers.filter((m) => m.label === "outcome").map((m) => m.value));
    expect(outcomes.length).toBeGreaterThan(0);
    for (const outcome of outcomes) expect(TERMINAL_PHASES.has(outcome as Phase), outcome).toBe(true);
  });

  it("name no metric other than kubetx's and the apiserver's admission webhook metrics", async () => {
    const others = (await usesWithPrefix("apiserver_")).filter((u) => !u.use.metric.startsWith("apiserver_admission_webhook_"));
    expect(others).toEqual([]);
  });
});

describe("the alert rules", () => {
  it("each have a severity, a summary and a description that says where to look", async () => {
    const rules = await alertRules();
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining([
      "KubetxTransactionFailed", "KubetxLocksHeldTooLong", "KubetxRollbackRateRising", "KubetxLockConflictsRising", "KubetxAdmissionSlow",
    ]));
    for (const rule of rules) {
      expect(["warning", "critical"], rule.alert).toContain(rule.labels.severity);
      expect(rule.annotations.summary, rule.alert).toBeTruthy();
      expect(rule.annotations.description, rule.alert).toMatch(/kubectl/);
    }
  });

  it("fire while a Failed transaction or an overdue lock exists, from the gauges kubetx computes, not from a counter's recent increase", async () => {
    const rules = await alertRules();
    expect(rules.find((r) => r.alert === "KubetxTransactionFailed")?.expr).toBe("max(kubetx_failed_transactions) > 0");
    expect(rules.find((r) => r.alert === "KubetxLocksHeldTooLong")?.expr).toBe("max(kubetx_locks_overdue) > 0");
    // Rising: compared with the same window a day earlier.
    expect(rules.find((r) => r.alert === "KubetxRollbackRateRising")?.expr).toMatch(/offset 1d/);
  });

  it("warn about admission latency before the 5 s webhook timeout, on both sides of the call", async () => {
    const slow = (await alertRules()).filter((r) => r.alert.startsWith("KubetxAdmissionSlow"));
    expect(slow.map((r) => metricUses(r.expr)[0]?.metric).sort()).toEqual(["apiserver_admission_webhook_admission_duration_seconds_bucket", "kubetx_admission_duration_seconds_bucket"]);
    for (const rule of slow) expect(rule.expr).toMatch(/histogram_quantile\(0\.99, .*\) > 4$/s);
  });
});

describe("the dashboard", () => {
  it("gives every panel a title, a description and the dashboard's Prometheus data source", async () => {
    const { panels, templating } = await dashboard();
    expect(templating.list.map((v) => [v.name, v.type])).toContainEqual(["datasource", "datasource"]);
    for (const panel of panels.filter((p) => p.type !== "row")) {
      expect(panel.description, panel.title).toBeTruthy();
      expect(panel.datasource?.uid, panel.title).toBe("${datasource}");
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
  });
});

describe("the metric check itself", () => {
  const exposition = "# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\",path=\"/v\"} 1\n# TYPE b_total counter\nb_total 2\n";

  it("finds the family of a histogram's series and its labels", () => {
    expect(exposedMetrics(exposition)).toEqual(new Map([["a_seconds", new Set(["le", "path"])], ["b_total", new Set()]]));
  });

  it("reports a metric that does not exist and a label a metric does not have", () => {
    const uses = [
      { where: "x", use: { metric: "a_seconds_bucket", labels: ["path", "decision"], matchers: [] } },
      { where: "y", use: { metric: "c_total", labels: [], matchers: [] } },
    ];
    expect(problems(uses, exposedMetrics(exposition))).toEqual(["x: a_seconds_bucket has no label decision", "y: c_total is not a metric"]);
  });

  it("reads metric names and matchers out of PromQL", () => {
    expect(metricUses('sum(rate(kubetx_x_total{outcome="Failed", name=~".*\\\\.io"}[5m])) / on() apiserver_y')).toEqual([
      { metric: "kubetx_x_total", labels: ["outcome", "name"], matchers: [{ label: "outcome", value: "Failed" }, { label: "name", value: ".*\\\\.io" }] },
      { metric: "apiserver_y", labels: [], matchers: [] },
    ]);
  });
});
