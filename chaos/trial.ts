/**
 * One trial: fresh namespaces and seed objects, the recorder, the clients
 * and the faults at once, then healing, quiescence (every record of the
 * trial final), the lock TTL and a garbage-collection pass for leftovers to
 * go, the final read, and the checker's verdict.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CheckReport } from "./checker/check.ts";
import { checkTrial } from "./checker/check.ts";
import { attribute } from "./checker/attribution.ts";
import { logSize, readLogFrom, workloadRequests } from "./checker/audit.ts";
import type { Http } from "./checker/http.ts";
import { readLeftovers, readRecords } from "./checker/read.ts";
import { FINAL_PHASES, trialRecords } from "./checker/records.ts";
import type { ChaosCluster } from "./cluster.ts";
import { runClients } from "./clients.ts";
import { runFaults } from "./faults.ts";
import type { AuditRequest, FaultRecord, LeftoverView, OpOutcome, RecordView, TrialHistory, TrialPlan } from "./history.ts";
import { USERS } from "./history.ts";
import { createWorkloadNamespace } from "./install.ts";
import { seedManifest } from "./manifests.ts";
import { Recorder } from "./recorder.ts";
import { buildPluginBundle } from "../src/devcluster/plugin-bundle.ts";

/**
 * Clients have ended: every record should be final within max open (10 s)
 * plus a lock TTL (3 s) and a rollback; 30 s leaves room for a loaded machine.
 */
const QUIESCE_TIMEOUT_MS = 30_000;
/**
 * Leftovers of a replica that died mid-cleanup go after the lock TTL (3 s)
 * and a garbage-collection pass (every 40 resolver periods: 4 s); 3 s more
 * for a loaded machine.
 */
const LEFTOVER_TIMEOUT_MS = 10_000;
const POLL_MS = 250;
/** Kubernetes timestamps have one-second precision: a Lease made just before the clients started still counts. */
const CREATED_SLACK_MS = 2_000;

export interface TrialEnv {
  readonly repo: string;
  readonly resultsDir: string;
  /** Write every trial's history, not only those with a violation. */
  readonly saveAll: boolean;
}

export interface TrialResult {
  readonly history: TrialHistory;
  readonly report: CheckReport;
  readonly seconds: number;
  /** Seconds spent in each phase: setup, clients (and faults), heal, quiesce, leftovers, check. */
  readonly phases: Readonly<Record<string, number>>;
  /** The replay file, when the trial found a violation (or every trial was to be saved). */
  readonly file?: string;
}

export async function runTrial(cluster: ChaosCluster, plan: TrialPlan, env: TrialEnv): Promise<TrialResult> {
  const clock = phaseClock();
  await prepare(cluster, plan);
  const recorder = await Recorder.start(cluster.http, plan);
  try {
    clock.lap("setup");
    const auditFrom = await logSize(cluster.controlPlane.auditLog);
    const startedAt = Date.now();
    const clientEnv = { kubectl: cluster.kubectl, node: process.execPath, pluginEntry: await buildPluginBundle(env.repo), kubeconfigs: cluster.kubeconfigs, workDir: cluster.dir };
    const [outcomes, faults] = await Promise.all([runClients(plan, clientEnv), runFaults(plan.faults, cluster, startedAt)]);
    const endedAt = clock.lap("clients");
    await heal(cluster);
    clock.lap("heal");
    const unsettled = await quiesce(cluster.http, { plan, outcomes, startedAt });
    clock.lap("quiesce");
    const leftovers = await leftoversGone(cluster.http, { plan, outcomes, startedAt });
    clock.lap("leftovers");
    const history = await observe(cluster, recorder, { plan, outcomes, faults, startedAt, endedAt, auditFrom, unsettled, leftovers });
    const report = checkTrial(history);
    clock.lap("check");
    const failed = report.notes.some((n) => n.kind === "failed-transaction");
    const file = report.violations.length > 0 || failed || env.saveAll ? await writeReplay(env.resultsDir, history, report) : undefined;
    await retire(cluster.http, unsettled);
    return { history, report, seconds: clock.total(), phases: clock.phases, ...(file ? { file } : {}) };
  } finally {
    await recorder.close();
    await cleanUp(cluster.http, plan);
  }
}

function phaseClock(): { phases: Record<string, number>; lap(name: string): number; total(): number } {
  const began = Date.now();
  let last = began;
  const phases: Record<string, number> = {};
  return {
    phases,
    lap: (name) => {
      const now = Date.now();
      phases[name] = (now - last) / 1000;
      last = now;
      return now;
    },
    total: () => (Date.now() - began) / 1000,
  };
}

interface Ran {
  readonly plan: TrialPlan;
  readonly outcomes: OpOutcome[];
  readonly faults: FaultRecord[];
  readonly startedAt: number;
  readonly endedAt: number;
  readonly auditFrom: number;
  readonly unsettled: string[];
  readonly leftovers: LeftoverView[];
}

/** Everything the checker reads: the recorded versions, the records, the audit log's requests. */
async function observe(cluster: ChaosCluster, recorder: Recorder, ran: Ran): Promise<TrialHistory> {
  await recorder.settle();
  const all = await readRecords(cluster.http);
  // The trial's records and those its leftovers name: the rest belong to earlier trials, and would only grow every replay file.
  const kept = new Set([...ofTrial(ran, all).map((r) => r.id), ...ran.leftovers.map((l) => l.transaction)]);
  const records = all.filter((r) => kept.has(r.id));
  const requests = await auditedRequests(cluster.controlPlane.auditLog, ran.auditFrom, ran.plan);
  const observation = {
    startedAt: ran.startedAt, endedAt: ran.endedAt, histories: recorder.histories(), records, leftovers: ran.leftovers,
    ...(requests ? { requests } : {}), ...(ran.unsettled.length ? { unsettled: ran.unsettled } : {}),
  };
  return { plan: ran.plan, outcomes: ran.outcomes, faults: ran.faults, observation };
}

/** The workload's writes since `from`; undefined when the log was rotated meanwhile (then some are gone). */
async function auditedRequests(file: string, from: number, plan: TrialPlan): Promise<AuditRequest[] | undefined> {
  if ((await logSize(file)) < from) return undefined;
  return workloadRequests(await readLogFrom(file, from), new Set(plan.clients.map((c) => c.user)), new Set(plan.namespaces));
}

async function prepare(cluster: ChaosCluster, plan: TrialPlan): Promise<void> {
  await cluster.useSink(plan.sink);
  for (const namespace of plan.namespaces) await createWorkloadNamespace(cluster.http, namespace, USERS);
  for (const object of plan.objects.filter((o) => o.seeded)) {
    const collection = object.kind === "ConfigMap" ? `/api/v1/namespaces/${object.namespace}/configmaps` : `/apis/apps/v1/namespaces/${object.namespace}/deployments`;
    await cluster.http.send("POST", collection, seedManifest(object));
  }
}

/** Undoes what a fault may still hold: a paused replica, a not-ready endpoint, a hostile third party, a restarting apiserver. */
async function heal(cluster: ChaosCluster): Promise<void> {
  cluster.thirdParty.mode = { kind: "pass" };
  await cluster.waitApiserverReady();
  for (const replica of cluster.replicas) {
    if (replica.state === "paused") replica.resume();
    if (replica.state === "down") await replica.start(replica.sink);
    await cluster.setEndpointReady(replica, true);
  }
}

interface Progress {
  readonly plan: TrialPlan;
  readonly outcomes: readonly OpOutcome[];
  readonly startedAt: number;
}

function ofTrial(progress: Progress, records: readonly RecordView[], leftovers: readonly LeftoverView[] = []): RecordView[] {
  const history: TrialHistory = {
    plan: progress.plan, outcomes: progress.outcomes, faults: [],
    observation: { startedAt: progress.startedAt, endedAt: progress.startedAt, histories: [], records, leftovers },
  };
  return trialRecords(history, attribute(history));
}

/** Waits until every record of the trial is final; returns those still open at the deadline. */
async function quiesce(http: Http, progress: Progress): Promise<string[]> {
  const deadline = Date.now() + QUIESCE_TIMEOUT_MS;
  for (;;) {
    const open = ofTrial(progress, await readRecords(http)).filter((r) => !FINAL_PHASES.has(r.phase ?? "Open"));
    if (open.length === 0 || Date.now() > deadline) return open.map((r) => `${r.id} ${r.phase ?? "Open"}`);
    await sleep(POLL_MS);
  }
}

/** Waits until no lock, heartbeat or journal of a resolved transaction of the trial is left; returns what is left at the end. */
async function leftoversGone(http: Http, progress: Progress): Promise<LeftoverView[]> {
  const deadline = Date.now() + LEFTOVER_TIMEOUT_MS;
  for (;;) {
    const [records, leftovers] = await Promise.all([readRecords(http), readLeftovers(http)]);
    const resolved = new Set(ofTrial(progress, records).filter((r) => r.phase === "Committed" || r.phase === "RolledBack").map((r) => r.id));
    const known = new Set(records.map((r) => r.id));
    const stale = leftovers.filter((l) => resolved.has(l.transaction) || (!known.has(l.transaction) && Date.parse(l.createdAt ?? "") >= progress.startedAt - CREATED_SLACK_MS));
    if (stale.length === 0 || Date.now() > deadline) return leftovers;
    await sleep(POLL_MS);
  }
}

async function writeReplay(dir: string, history: TrialHistory, report: CheckReport): Promise<string> {
  await mkdir(dir, { recursive: true });
  // A Failed transaction is no violation, but the history of one is worth keeping for a look.
  const kind = report.violations.length > 0 ? "violation" : report.notes.some((n) => n.kind === "failed-transaction") ? "failed" : "trial";
  const file = path.join(dir, `${kind}-${history.plan.seed}-${history.plan.trial}.json`);
  const replay = { seed: history.plan.seed, trial: history.plan.trial, replay: `npm run chaos -- --replay ${file}`, recheck: `npm run chaos -- --recheck ${file}`, violations: report.violations, notes: report.notes, history };
  await writeFile(file, `${JSON.stringify(replay, null, 2)}\n`);
  return file;
}

/**
 * Marks the records that never settled Failed, as an admin would once the
 * verdict is in: their requesters' sessions would otherwise keep joining
 * them in later trials, and one trial's fault would spill into the next.
 */
async function retire(http: Http, unsettled: readonly string[]): Promise<void> {
  for (const entry of unsettled) {
    const id = entry.split(" ")[0] ?? "";
    const status = { phase: "Failed", reason: "ChaosUnsettled", message: "not final after the chaos campaign's quiescence; marked Failed by the campaign so later trials do not join it" };
    await http.send("PATCH", `/apis/kubetx.io/v1alpha1/transactions/${id}/status`, { status }, "application/merge-patch+json").catch(() => undefined);
    await http.send("PATCH", `/apis/kubetx.io/v1alpha1/transactions/${id}`, { metadata: { labels: { "kubetx.io/resolved": "true" } } }, "application/merge-patch+json").catch(() => undefined);
  }
}

/** Deletes the trial's namespaces (their objects go with them; kubetx-system keeps what Failed transactions hold). */
async function cleanUp(http: Http, plan: TrialPlan): Promise<void> {
  for (const namespace of plan.namespaces) await http.send("DELETE", `/api/v1/namespaces/${namespace}`).catch(() => undefined);
}
