/** Targets from the issue, the printed summary, and the results files. */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ApplyResult, Comparison } from "../scenarios/apply.ts";
import type { PerMember } from "./audit.ts";
import type { LatencyResult } from "../scenarios/latency.ts";
import type { RollbackResult } from "../scenarios/rollback.ts";
import type { ThroughputResult } from "../scenarios/throughput.ts";
import type { WebhookView } from "./metrics.ts";
import { formatSummary, ms, round } from "./stats.ts";

export interface Results {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationSeconds: number;
  readonly environment: Record<string, unknown>;
  readonly engineConfig: Record<string, unknown>;
  readonly apply?: ApplyResult;
  readonly rollback?: RollbackResult;
  readonly latency?: LatencyResult;
  readonly throughput?: ThroughputResult;
  readonly extra: Record<string, unknown>;
  readonly targets: Target[];
  readonly errors: string[];
}

export interface Target {
  readonly name: string;
  readonly limit: string;
  readonly value: number;
  readonly met: boolean;
}

type Measured = Pick<Results, "apply" | "rollback" | "latency" | "throughput">;

/** Issue 12's targets: a name, where its value is, and the most (or, with `min`, the least) it may be. */
const TARGETS: readonly { name: (r: Measured) => string; value: (r: Measured) => number | undefined; max?: number; min?: number; unit: string }[] = [
  { name: () => "member write: added p50 (single-member transactions)", value: (r) => r.latency?.added.memberSingle.p50, max: 3, unit: " ms" },
  { name: () => "member write: added p99 (single-member transactions)", value: (r) => r.latency?.added.memberSingle.p99, max: 10, unit: " ms" },
  { name: (r) => `member write: added p50 (${sharedMembers(r)})`, value: (r) => r.latency?.added.memberShared.p50, max: 3, unit: " ms" },
  { name: (r) => `member write: added p99 (${sharedMembers(r)})`, value: (r) => r.latency?.added.memberShared.p99, max: 10, unit: " ms" },
  { name: () => "pass-through write: added p99", value: (r) => r.latency?.added.passThrough.p99, max: 1, unit: " ms" },
  { name: () => "kubectl tx apply 100 / plain kubectl apply: wall-time ratio", value: (r) => r.apply?.plugin?.ratio, max: 1.3, unit: "x" },
  { name: () => "kubectl apply 100, explicit: wall-time ratio", value: (r) => r.apply?.explicit.ratio, max: 1.3, unit: "x" },
  { name: () => "kubectl apply 100, transparent: wall-time ratio", value: (r) => r.apply?.transparent.ratio, max: 1.6, unit: "x" },
  { name: () => "kubetx apiserver calls per member on the request path, explicit", value: (r) => r.apply?.explicit.requestPathCallsPerMember, max: 1, unit: "" },
  { name: () => "kubetx apiserver calls per member on the request path, transparent", value: (r) => r.apply?.transparent.requestPathCallsPerMember, max: 1, unit: "" },
  { name: () => "kubetx apiserver calls per member on the request path, kubectl tx apply", value: (r) => r.apply?.plugin?.requestPathCallsPerMember, max: 1, unit: "" },
  { name: () => "rollback of 100 members: median patch -> RolledBack", value: (r) => r.rollback?.medianPatchToRolledBackMs, max: 1000, unit: " ms" },
  { name: () => "pass-through admissions per second, one replica (object opted out in a covered namespace)", value: (r) => r.throughput?.shapes.optedOut.perSecond, min: 3000, unit: "/s" },
  { name: () => "pass-through admissions per second, one replica (namespace not covered)", value: (r) => r.throughput?.shapes.uncovered.perSecond, min: 3000, unit: "/s" },
];

function sharedMembers(r: Measured): string {
  return `members of ${r.latency?.sharedTransactions[0]?.members ?? "?"}-member transactions`;
}

export function targetsOf(r: Measured): Target[] {
  return TARGETS.flatMap((target) => {
    const value = target.value(r);
    if (value === undefined) return [];
    if (target.min !== undefined) return [{ name: target.name(r), limit: `>= ${target.min}${target.unit}`, value, met: value >= target.min }];
    const max = target.max ?? Number.POSITIVE_INFINITY;
    return [{ name: target.name(r), limit: `<= ${max}${target.unit}`, value, met: value <= max }];
  });
}

export function summaryText(r: Results): string {
  const etcd = r.environment.etcd as { fsync?: boolean; filesystem?: string } | undefined;
  const storage = etcd ? `, etcd fsync ${etcd.fsync ? "on" : "off"}, data on ${etcd.filesystem ?? "?"}` : "";
  const lines: string[] = [`kubetx bench ${r.startedAt} (${r.durationSeconds} s)${storage}`];
  if (r.latency) lines.push(...latencyLines(r.latency));
  if (r.apply) lines.push(...applyLines(r.apply));
  if (r.rollback) lines.push(...rollbackLines(r.rollback));
  if (r.throughput) lines.push(...throughputLines(r.throughput));
  lines.push("", "targets");
  for (const t of r.targets) lines.push(`   ${t.met ? "MET   " : "MISSED"} ${t.name}: ${round(t.value)} (target ${t.limit})`);
  if (r.errors.length > 0) lines.push("", "errors", ...r.errors.map((e) => `   ${e}`));
  return lines.join("\n");
}

function latencyLines(l: LatencyResult): string[] {
  const lines: string[] = [];
  lines.push("", `1. write latency through the apiserver, client side, ${l.options.samples} samples per series after ${l.options.warmup} warm-up`);
  for (const [name, s] of Object.entries(l.series)) lines.push(`   ${name.padEnd(16)} ${formatSummary(s)}`);
  lines.push(`   added, member (single-member tx):  p50 ${ms(l.added.memberSingle.p50)}  p99 ${ms(l.added.memberSingle.p99)}`);
  lines.push(`   added, member (${l.sharedTransactions[0]?.members ?? "?"}-member tx):   p50 ${ms(l.added.memberShared.p50)}  p99 ${ms(l.added.memberShared.p99)}  (member p50: first tenth of a tx ${ms(l.memberSharedBySize.firstTenthP50)}, last tenth ${ms(l.memberSharedBySize.lastTenthP50)})`);
  lines.push(`   added, pass-through:               p50 ${ms(l.added.passThrough.p50)}  p99 ${ms(l.added.passThrough.p99)}`);
  lines.push(`   single-member tx, write answered -> Committed: ${formatSummary(l.singleCommitLag)}; not committed: ${l.singleNotCommitted}`);
  lines.push(`   shared txs: ${l.sharedTransactions.map((t) => `${t.members} members ${t.phase}${t.reason ? ` (${t.reason})` : ""} ${ms(t.lastWriteToResolvedMs)} after the last write`).join("; ")}`);
  for (const [series, f] of Object.entries(l.failures)) lines.push(`   FAILED writes, ${series}: ${f.count}, first: ${f.first.slice(0, 300)}`);
  for (const [series, calls] of Object.entries(l.kubetxCallsPerWrite)) lines.push(`   kubetx -> apiserver requests per write, ${series}: ${calls.total} (${topKinds(calls)})`);
  for (const [series, hooks] of Object.entries(l.apiserverView)) lines.push(`   apiserver's webhook histogram, ${series}: ${webhookText(hooks)}`);
  return lines;
}

function applyLines(a: ApplyResult): string[] {
  const lines: string[] = [];
  const n = a.options.objects;
  for (const [label, c] of [[`2. kubectl apply -f (${n} ConfigMaps), explicit transaction`, a.explicit], [`3. kubectl apply -f (${n} ConfigMaps), transparent mode, quiet window 2 s (production default)`, a.transparent]] as const) {
    lines.push("", `${label}, ${a.options.runs} runs each, interleaved`);
    lines.push(`   median wall time: with webhook ${ms(c.withWebhookMedianMs)}, without ${ms(c.withoutWebhookMedianMs)}, ratio ${c.ratio}`);
    lines.push(`   median kubectl exit -> closed (Verifying) ${ms(c.exitToClosedMedianMs)}, -> Committed ${ms(c.exitToCommittedMedianMs)}; all committed with ${n} members: ${c.allCommitted}`);
    lines.push(...commonLines(c));
  }
  const p = a.plugin;
  lines.push("", `2p. kubectl tx apply -f (${n} ConfigMaps, the plugin; it exits after the verdict) vs plain kubectl apply -f, ${a.options.runs} runs each, interleaved`);
  lines.push(`   median wall time: kubectl tx apply ${ms(p.withWebhookMedianMs)}, kubectl apply without webhook ${ms(p.withoutWebhookMedianMs)}, ratio ${p.ratio}`);
  lines.push(`   medians: start -> record seen ${ms(p.startToRecordMedianMs)} -> prepared ${ms(p.recordToPreparedMedianMs)} -> Verifying ${ms(p.preparedToClosedMedianMs)} -> resolved ${ms(p.closedToResolvedMedianMs)} -> kubectl tx exit ${ms(p.resolvedToExitMedianMs)}; all committed with ${n} members: ${p.allCommitted}`);
  lines.push(...commonLines(p));
  return lines;
}

function commonLines(c: Comparison): string[] {
  return [
    `   kubetx -> apiserver requests per member (start to commit): ${c.kubetxCallsPerMember.total} (${topKinds(c.kubetxCallsPerMember)})`,
    `   of which on the request path (while answering the apply's reviews): ${c.requestPathCallsPerMember ?? "?"}`,
    `   apiserver's webhook histogram: ${webhookText(c.apiserverView)}`,
  ];
}

/** Per webhook: calls, and p50 and p99 estimated inside the apiserver's coarse buckets (hence ~), and the exact mean. */
function webhookText(view: Record<string, WebhookView>): string {
  const hooks = Object.entries(view).map(([name, v]) =>
    `${name} n=${v.calls}${v.rejected > 0 ? ` (${v.rejected} rejected)` : ""} p50 ~${ms(v.p50Ms)} p99 ~${ms(v.p99Ms)} mean ${ms(v.meanMs)}`);
  return hooks.length > 0 ? hooks.join("; ") : "no calls";
}

function rollbackLines(b: RollbackResult): string[] {
  const lines: string[] = [];
  lines.push("", `4. rollback of a ${b.options.objects}-member open transaction (clientState=Failed patch), ${b.options.runs} runs`);
  lines.push(`   median patch -> RolledBack ${ms(b.medianPatchToRolledBackMs)}; -> locks and journal released ${ms(b.medianPatchToLocksReleasedMs)}; runs ${b.runs.map((x) => ms(x.patchToRolledBackMs)).join(", ")}`);
  lines.push(`   kubetx -> apiserver requests per member (patch to locks released): ${b.kubetxCallsPerMember.total} (${topKinds(b.kubetxCallsPerMember)})`);
  lines.push(`   apiserver's webhook histogram: ${webhookText(b.apiserverView)}`);
  lines.push(`   every run RolledBack, all ${b.options.objects} restored, no ConfigMap left: ${b.allRolledBackAndGone}`);
  return lines;
}

function throughputLines(t: ThroughputResult): string[] {
  const lines = ["", `5. pass-through admissions, in-process load on /validate, ${t.options.concurrency} in flight, ${t.options.seconds} s per shape after ${t.options.warmupSeconds} s warm-up`];
  for (const [shape, s] of Object.entries(t.shapes)) {
    lines.push(`   ${shape.padEnd(10)} ${s.perSecond}/s (${s.answered} answers, ${s.notAllowed} not allowed), latency ${formatSummary(s.latency)}; kubetx -> apiserver requests meanwhile: ${s.kubetxCalls.total}`);
  }
  return lines;
}

/** The most frequent kinds of request: how many per member, and the apiserver's median time for one. */
function topKinds(calls: PerMember): string {
  return Object.entries(calls.byKind).slice(0, 7).map(([k, v]) => `${k} ${v} x ${ms(calls.medianMsByKind[k] ?? Number.NaN)}`).join(", ");
}

/** The scenarios, by the names `--only=` takes, in the order a run takes them. */
export const SCENARIOS = ["apply", "rollback", "latency", "throughput"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** The scenarios `--only=` names (in run order), or what is wrong with it. Pure. */
export function parseOnly(value: string | undefined): ScenarioName[] | string | undefined {
  if (value === undefined) return undefined;
  const names = value.split(",").filter(Boolean);
  const bad = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
  if (names.length === 0 || bad.length > 0) return `--only= takes scenario names from ${SCENARIOS.join(", ")}, comma-separated; got "${value}"`;
  return SCENARIOS.filter((n) => names.includes(n));
}

export interface RunMode {
  /** A smoke run: its numbers mean little. */
  readonly quick: boolean;
  /** etcd with fsync on. */
  readonly fsync: boolean;
  /** Only these scenarios ran (`--only=`). */
  readonly only?: readonly string[];
}

/**
 * The files a run writes: quick.json alone for a smoke run, a dated
 * `…-only-<scenarios>.json` alone for a partial one, else latest.json and a
 * copy named by the start time; `-fsync` before `.json` with fsync on,
 * so the two modes never overwrite each other.
 */
export function resultFileNames(startedAt: string, mode: RunMode): string[] {
  const suffix = mode.fsync ? "-fsync" : "";
  if (mode.quick) return [`quick${suffix}.json`];
  const stamp = startedAt.replace(/:/g, "-").replace(/\.\d{3}Z$/, "Z");
  if (mode.only) return [`${stamp}-only-${mode.only.join("-")}${suffix}.json`];
  return [`latest${suffix}.json`, `${stamp}${suffix}.json`];
}

export async function writeResults(dir: string, results: Results, mode: RunMode): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(results, null, 2)}\n`;
  const files = resultFileNames(results.startedAt, mode).map((name) => path.join(dir, name));
  for (const file of files) await writeFile(file, text);
  return files;
}

/** warn and error lines of the engine's pino log, grouped by message. */
export async function engineProblems(logFile: string): Promise<{ lines: number; warnings: Record<string, number>; firstErrors: string[] }> {
  let text: string;
  try {
    text = await readFile(logFile, "utf8");
  } catch {
    return { lines: 0, warnings: {}, firstErrors: [] };
  }
  const warnings: Record<string, number> = {};
  const firstErrors: string[] = [];
  let lines = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    lines += 1;
    const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
    if ((entry.level ?? 0) < 40) continue;
    const msg = entry.msg ?? "?";
    warnings[msg] = (warnings[msg] ?? 0) + 1;
    if (firstErrors.length < 5) firstErrors.push(`${msg}: ${entry.err?.message ?? ""}`.slice(0, 300));
  }
  return { lines, warnings, firstErrors };
}
