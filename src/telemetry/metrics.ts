/**
 * Prometheus metrics, built per process by a factory (no global registry),
 * and the narrow interfaces the engine reports through.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** What the admission path reports. */
export interface AdmissionMetrics {
  /** `cost.calls`: apiserver calls made on the review's path. */
  reviewed(path: string, decision: string, cost: { readonly seconds: number; readonly calls: number }): void;
  lockConflict(): void;
  /** A create kubetx prepared, admitted from memory with no apiserver call (Coordinator.admitPrepared). */
  preparedAdmission(): void;
}

/** What the resolver reports. */
export interface ResolverMetrics {
  resolved(outcome: string): void;
  rolledBack(seconds: number, members: number): void;
  openTransactions(count: number): void;
  locksHeld(count: number): void;
  /** Locks of transactions open longer than the policy allows them (see gc.ts overdueLocks). */
  locksOverdue(count: number): void;
  /** Failed transactions: each keeps its locks until an admin resolves it. */
  failedTransactions(count: number): void;
}

export interface Metrics extends AdmissionMetrics, ResolverMetrics {
  readonly contentType: string;
  render(): Promise<string>;
}

/**
 * Admission buckets from 1 ms: a pass-through answers in well under 2 ms,
 * a member write in about 10 ms; anything near the webhook timeout (5 s)
 * is trouble.
 */
const ADMISSION_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Rollbacks of one to hundreds of members: from 10 ms to a minute. */
const ROLLBACK_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "kubetx_process_" });
  const admission = new Histogram({
    name: "kubetx_admission_duration_seconds", help: "Time to answer one AdmissionReview, by webhook path and decision.",
    labelNames: ["path", "decision"], buckets: ADMISSION_BUCKETS, registers: [registry],
  });
  const calls = new Counter({
    name: "kubetx_admission_apiserver_calls_total", registers: [registry], labelNames: ["path", "decision"],
    help: "Apiserver calls kubetx made while answering AdmissionReviews, by webhook path and decision: divided by kubetx_admission_duration_seconds_count, the calls per review.",
  });
  const transactions = new Counter({ name: "kubetx_transactions_total", help: "Transactions resolved, by outcome.", labelNames: ["outcome"], registers: [registry] });
  const conflicts = new Counter({ name: "kubetx_lock_conflicts_total", help: "Writes denied because another open transaction held the object.", registers: [registry] });
  const prepared = new Counter({ name: "kubetx_prepared_admissions_total", help: "Creates of prepared transactions (kubectl tx apply) admitted from memory, with no apiserver call.", registers: [registry] });
  const rollback = new Histogram({ name: "kubetx_rollback_duration_seconds", help: "Time to restore every member of a failed transaction.", buckets: ROLLBACK_BUCKETS, registers: [registry] });
  const open = new Gauge({ name: "kubetx_open_transactions", help: "Transactions not yet committed or rolled back, as the resolver last saw them.", registers: [registry] });
  const locks = new Gauge({ name: "kubetx_locks_held", help: "Lock Leases held, as the last garbage-collection pass counted them.", registers: [registry] });
  const overdue = new Gauge({
    name: "kubetx_locks_overdue", registers: [registry],
    help: "Lock Leases of transactions open longer than the policy allows (their open limit plus two lock TTLs), as the last garbage-collection pass counted them.",
  });
  const failed = new Gauge({ name: "kubetx_failed_transactions", help: "Transactions in phase Failed, which keep their locks until an admin resolves them.", registers: [registry] });
  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    reviewed: (path, decision, cost) => {
      admission.observe({ path, decision }, cost.seconds);
      calls.inc({ path, decision }, cost.calls);
    },
    lockConflict: () => conflicts.inc(),
    preparedAdmission: () => prepared.inc(),
    resolved: (outcome) => transactions.inc({ outcome }),
    rolledBack: (seconds) => rollback.observe(seconds),
    openTransactions: (count) => open.set(count),
    locksHeld: (count) => locks.set(count),
    locksOverdue: (count) => overdue.set(count),
    failedTransactions: (count) => failed.set(count),
  };
}

/** Metrics that go nowhere, for tests and tools that do not serve /metrics. */
export const noMetrics: AdmissionMetrics & ResolverMetrics = {
  reviewed: () => undefined,
  lockConflict: () => undefined,
  preparedAdmission: () => undefined,
  resolved: () => undefined,
  rolledBack: () => undefined,
  openTransactions: () => undefined,
  locksHeld: () => undefined,
  locksOverdue: () => undefined,
  failedTransactions: () => undefined,
};
