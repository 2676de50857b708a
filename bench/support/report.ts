/** Targets from the issue, the printed summary, and the results files. */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ApplyResult } from "../scenarios/apply.ts";
import type { PerMember } from "./audit.ts";
import type { LatencyResult } from "../scenarios/latency.ts";
import type { RollbackResult } from "../scenarios/rollback.ts";
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

export function targetsOf(r: Pick<Results, "apply" | "rollback" | "latency">): Target[] {
  const t: Target[] = [];
  const add = (name: string, value: number | undefined, max: number, unit: string): void => {
    if (value !== undefined) t.push({ name, limit: `<= ${max}${unit}`, value, met: value <= max });
  };
  add("member write: added p99 (single-member transactions)", r.latency?.added.memberSingle.p99, 15, " ms");
  add(`member write: added p99 (members of ${r.latency?.sharedTransactions[0]?.members ?? "?"}-member transactions)`, r.latency?.added.memberShared.p99, 15, " ms");
  add("pass-through write: added p99", r.latency?.added.passThrough.p99, 2, " ms");
  add("kubectl apply 100, explicit: wall-time ratio", r.apply?.explicit.ratio, 1.3, "x");
  add("kubectl apply 100, transparent: wall-time ratio", r.apply?.transparent.ratio, 1.3, "x");
  add("rollback of 100 members: median patch -> RolledBack", r.rollback?.medianPatchToRolledBackMs, 2000, " ms");
  return t;
}

export function summaryText(r: Results): string {
  const lines: string[] = [`kubetx bench ${r.startedAt} (${r.durationSeconds} s)`];
  if (r.latency) lines.push(...latencyLines(r.latency));
  if (r.apply) lines.push(...applyLines(r.apply));
  if (r.rollback) lines.push(...rollbackLines(r.rollback));
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
  for (const [series, hooks] of Object.entries(l.apiserverView)) {
    lines.push(`   apiserver view, ${series}: ${Object.entries(hooks).map(([h, v]) => `${h} mean ${ms(v.meanMs)} (${Math.round(v.shareUnder5ms * 100)}% <= 5 ms)`).join("; ")}`);
  }
  return lines;
}

function applyLines(a: ApplyResult): string[] {
  const lines: string[] = [];
  for (const [label, c] of [["2. kubectl apply -f (100 ConfigMaps), explicit transaction", a.explicit], ["3. kubectl apply -f (100 ConfigMaps), transparent mode, quiet window 2 s (production default)", a.transparent]] as const) {
    lines.push("", `${label}, ${a.options.runs} runs each, interleaved`);
    lines.push(`   median wall time: with webhook ${ms(c.withWebhookMedianMs)}, without ${ms(c.withoutWebhookMedianMs)}, ratio ${c.ratio}`);
    lines.push(`   median kubectl exit -> closed (Verifying) ${ms(c.exitToClosedMedianMs)}, -> Committed ${ms(c.exitToCommittedMedianMs)}; all committed with ${a.options.objects} members: ${c.allCommitted}`);
    lines.push(`   kubetx -> apiserver requests per member (kubectl start to commit): ${c.kubetxCallsPerMember.total} (${topKinds(c.kubetxCallsPerMember)})`);
  }
  return lines;
}

function rollbackLines(b: RollbackResult): string[] {
  const lines: string[] = [];
  lines.push("", `4. rollback of a ${b.options.objects}-member open transaction (clientState=Failed patch), ${b.options.runs} runs`);
  lines.push(`   median patch -> RolledBack ${ms(b.medianPatchToRolledBackMs)}; -> locks and journal released ${ms(b.medianPatchToLocksReleasedMs)}; runs ${b.runs.map((x) => ms(x.patchToRolledBackMs)).join(", ")}`);
  lines.push(`   kubetx -> apiserver requests per member (patch to locks released): ${b.kubetxCallsPerMember.total} (${topKinds(b.kubetxCallsPerMember)})`);
  lines.push(`   every run RolledBack, all ${b.options.objects} restored, no ConfigMap left: ${b.allRolledBackAndGone}`);
  return lines;
}

/** The most frequent kinds of request: how many per member, and the apiserver's median time for one. */
function topKinds(calls: PerMember): string {
  return Object.entries(calls.byKind).slice(0, 7).map(([k, v]) => `${k} ${v} x ${ms(calls.medianMsByKind[k] ?? Number.NaN)}`).join(", ");
}

/** latest.json and a copy named by the start time; only `<only>.json` when given. */
export async function writeResults(dir: string, results: Results, only?: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(results, null, 2)}\n`;
  if (only) {
    await writeFile(path.join(dir, `${only}.json`), text);
    return [path.join(dir, `${only}.json`)];
  }
  const dated = path.join(dir, `${results.startedAt.replace(/:/g, "-").replace(/\.\d{3}Z$/, "Z")}.json`);
  const latest = path.join(dir, "latest.json");
  await writeFile(latest, text);
  await writeFile(dated, text);
  return [latest, dated];
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
