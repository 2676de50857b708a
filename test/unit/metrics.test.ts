/**
 * The Prometheus metrics a kubetx process serves: each report shows up in
 * the exposition text under its documented name, and each createMetrics()
 * keeps its own registry.
 */
import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/telemetry/metrics.ts";

/** The sample lines of one metric family, without HELP and TYPE comments. */
function samples(text: string, name: string): string[] {
  return text.split("\n").filter((line) => line.startsWith(name) && !line.startsWith("#"));
}

describe("createMetrics", () => {
  it("serves the Prometheus text exposition content type", () => {
    expect(createMetrics().contentType).toContain("text/plain");
  });

  it("records the admission duration by webhook path and decision", async () => {
    const metrics = createMetrics();
    metrics.reviewed("/validate", "member", { seconds: 0.004, calls: 1 });
    const text = await metrics.render();
    expect(samples(text, "kubetx_admission_duration_seconds_count")).toEqual(['kubetx_admission_duration_seconds_count{path="/validate",decision="member"} 1']);
    expect(text).toContain('kubetx_admission_duration_seconds_bucket{le="0.005",path="/validate",decision="member"} 1');
    expect(text).toContain('kubetx_admission_duration_seconds_bucket{le="0.002",path="/validate",decision="member"} 0');
  });

  it("counts the apiserver calls made on the request path, by webhook path and decision", async () => {
    const metrics = createMetrics();
    metrics.reviewed("/validate", "member", { seconds: 0.004, calls: 1 });
    metrics.reviewed("/validate", "member", { seconds: 0.003, calls: 2 });
    metrics.reviewed("/observe", "allowed", { seconds: 0.001, calls: 0 });
    expect(samples(await metrics.render(), "kubetx_admission_apiserver_calls_total")).toEqual([
      'kubetx_admission_apiserver_calls_total{path="/validate",decision="member"} 3',
      'kubetx_admission_apiserver_calls_total{path="/observe",decision="allowed"} 0',
    ]);
  });

  it("counts resolved transactions by outcome", async () => {
    const metrics = createMetrics();
    metrics.resolved("Committed");
    metrics.resolved("Committed");
    metrics.resolved("RolledBack");
    expect(samples(await metrics.render(), "kubetx_transactions_total")).toEqual([
      'kubetx_transactions_total{outcome="Committed"} 2',
      'kubetx_transactions_total{outcome="RolledBack"} 1',
    ]);
  });

  it("counts lock conflicts", async () => {
    const metrics = createMetrics();
    metrics.lockConflict();
    metrics.lockConflict();
    expect(samples(await metrics.render(), "kubetx_lock_conflicts_total")).toEqual(["kubetx_lock_conflicts_total 2"]);
  });

  it("records rollback durations", async () => {
    const metrics = createMetrics();
    metrics.rolledBack(0.3, 4);
    const text = await metrics.render();
    expect(samples(text, "kubetx_rollback_duration_seconds_count")).toEqual(["kubetx_rollback_duration_seconds_count 1"]);
    expect(samples(text, "kubetx_rollback_duration_seconds_sum")).toEqual(["kubetx_rollback_duration_seconds_sum 0.3"]);
  });

  it("shows the last count of open transactions", async () => {
    const metrics = createMetrics();
    metrics.openTransactions(5);
    metrics.openTransactions(3);
    expect(samples(await metrics.render(), "kubetx_open_transactions")).toEqual(["kubetx_open_transactions 3"]);
  });

  it("shows the last count of locks held", async () => {
    const metrics = createMetrics();
    metrics.locksHeld(12);
    expect(samples(await metrics.render(), "kubetx_locks_held")).toEqual(["kubetx_locks_held 12"]);
  });

  it("shows the last counts of overdue locks and of Failed transactions", async () => {
    const metrics = createMetrics();
    metrics.locksOverdue(2);
    metrics.failedTransactions(1);
    const text = await metrics.render();
    expect(samples(text, "kubetx_locks_overdue")).toEqual(["kubetx_locks_overdue 2"]);
    expect(samples(text, "kubetx_failed_transactions")).toEqual(["kubetx_failed_transactions 1"]);
  });

  it("includes process metrics under the kubetx_process_ prefix", async () => {
    expect(await createMetrics().render()).toMatch(/^kubetx_process_\w+ /m);
  });

  it("keeps the counts of two instances apart", async () => {
    const first = createMetrics();
    const second = createMetrics();
    first.lockConflict();
    first.resolved("Committed");
    second.lockConflict();
    second.lockConflict();
    second.lockConflict();
    expect(samples(await first.render(), "kubetx_lock_conflicts_total")).toEqual(["kubetx_lock_conflicts_total 1"]);
    expect(samples(await second.render(), "kubetx_lock_conflicts_total")).toEqual(["kubetx_lock_conflicts_total 3"]);
    expect(samples(await second.render(), "kubetx_transactions_total")).toEqual([]);
  });
});
