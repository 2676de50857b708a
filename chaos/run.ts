/**
 * `npm run chaos -- --trials N --seed S`: starts a cluster with 2 or 3
 * kubetx replicas, runs N randomized trials drawn from the seed, prints one
 * line per trial and a summary, writes a replay file for every trial with
 * a violation, and exits non-zero if any trial found one.
 *
 * `--replay FILE` runs the trial a replay file describes again (same plan,
 * fresh cluster); `--recheck FILE` only runs the checker on its recorded
 * history, `--recheck DIR` on every trial file of a directory.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { CheckReport } from "./checker/check.ts";
import { checkTrial } from "./checker/check.ts";
import type { Finding } from "./checker/findings.ts";
import type { ChaosCluster } from "./cluster.ts";
import { startChaosCluster } from "./cluster.ts";
import type { TrialHistory, TrialPlan } from "./history.ts";
import { PROBE_NAMESPACE } from "./install.ts";
import { mulberry32 } from "./random.ts";
import type { TrialResult } from "./trial.ts";
import { runTrial } from "./trial.ts";
import { describeFault, planTrial } from "./workload.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const USAGE = `Usage: npm run chaos -- [--trials N [--from F] | --trial T] [--seed S] [--replicas 2|3] [--results DIR] [--keep] [--save-all]
       npm run chaos -- --replay FILE       run a recorded trial's plan again on a fresh cluster
       npm run chaos -- --recheck FILE|DIR  run the checker again on a recorded trial's history (DIR: every trial file in it)`;
const DEFAULTS = { trials: 3, seed: 1, replicas: 3 } as const;
/** Dry-run writes that show the apiserver spreads webhook calls over the replicas. */
const SPREAD_PROBES = 30;

interface Options {
  readonly trials: number;
  /** The first trial of `--trials` to run (resuming a campaign that stopped). */
  readonly from: number;
  readonly seed: number;
  readonly replicas: number;
  /** Only this trial of the seed's campaign. */
  readonly trial?: number;
  readonly resultsDir: string;
  readonly replay?: string;
  readonly recheck?: string;
  readonly keep: boolean;
  readonly saveAll: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: { trials: { type: "string" }, from: { type: "string" }, trial: { type: "string" }, seed: { type: "string" }, replicas: { type: "string" }, results: { type: "string" }, replay: { type: "string" }, recheck: { type: "string" }, keep: { type: "boolean" }, "save-all": { type: "boolean" }, help: { type: "boolean" } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  return {
    trials: integer("trials", values.trials, { fallback: DEFAULTS.trials, min: 1, max: 100_000 }),
    from: integer("from", values.from, { fallback: 1, min: 1, max: 100_000 }),
    seed: integer("seed", values.seed, { fallback: DEFAULTS.seed, min: 0, max: 2 ** 31 - 1 }),
    replicas: integer("replicas", values.replicas, { fallback: DEFAULTS.replicas, min: 2, max: 3 }),
    resultsDir: path.resolve(values.results ?? path.join(REPO, "chaos", "results")),
    ...(values.trial !== undefined ? { trial: integer("trial", values.trial, { fallback: 1, min: 1, max: 100_000 }) } : {}),
    keep: values.keep ?? false,
    saveAll: values["save-all"] ?? false,
    ...(values.replay ? { replay: values.replay } : {}),
    ...(values.recheck ? { recheck: values.recheck } : {}),
  };
}

function integer(name: string, raw: string | undefined, range: { fallback: number; min: number; max: number }): number {
  const n = raw === undefined ? range.fallback : Number(raw);
  if (!Number.isInteger(n) || n < range.min || n > range.max) throw new Error(`chaos: --${name} must be an integer from ${range.min} to ${range.max}, got '${raw ?? ""}'\n${USAGE}`);
  return n;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options.recheck) return recheck(options.recheck);
  const plans = options.replay ? [await planFromFile(options.replay)] : campaignPlans(options);
  const seed = plans[0]?.seed ?? options.seed;
  const cluster = await startChaosCluster({ repo: REPO, replicas: plans[0]?.replicas ?? options.replicas, say, random: denials(seed), keep: options.keep });
  // A connection that drops outside any request (an idle keep-alive socket of a killed replica or apiserver) must not end a campaign of hours.
  process.on("uncaughtException", (error: NodeJS.ErrnoException) => {
    if (error.code !== "ECONNRESET" && error.code !== "EPIPE") throw error;
    say(`chaos: a connection dropped outside any request, ignored: ${error.stack ?? error.message}`);
  });
  const stopOnSignal = (): void => void cluster.stop().then(() => process.exit(130));
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  try {
    await measureSpread(cluster);
    return await campaign(cluster, plans, options);
  } finally {
    await cluster.stop();
  }
}

function campaignPlans(options: Options): TrialPlan[] {
  const trials = options.trial !== undefined ? [options.trial] : Array.from({ length: Math.max(0, options.trials - options.from + 1) }, (_, i) => options.from + i);
  return trials.map((trial) => planTrial({ seed: options.seed, trial, replicas: options.replicas }));
}

/** The third-party webhook's coin, from the campaign's seed. */
function denials(seed: number): () => number {
  const random = mulberry32(seed);
  return () => random.next();
}

async function campaign(cluster: ChaosCluster, plans: readonly TrialPlan[], options: Options): Promise<number> {
  let violations = 0;
  let errors = 0;
  for (const plan of plans) {
    const watchdog = setTimeout(() => stuck(cluster, plan), TRIAL_WATCHDOG_MS);
    try {
      const result = await runTrial(cluster, plan, { repo: REPO, resultsDir: options.resultsDir, saveAll: options.saveAll });
      violations += result.report.violations.length;
      say(trialLine(plan, plans.length, result));
      for (const finding of [...result.report.violations, ...result.report.notes]) say(`  ${findingLine(finding)}`);
    } catch (error) {
      errors += 1;
      say(`trial ${plan.trial} seed ${plan.seed}: ERROR (the harness, not a verdict): ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    } finally {
      clearTimeout(watchdog);
    }
  }
  say(`chaos: the audit relay forwarded ${cluster.relay.forwarded} batches (${cluster.relay.refused} found no replica); the third-party webhook answered ${cluster.thirdParty.calls} calls, denied ${cluster.thirdParty.denied}`);
  say(`chaos: ${plans.length} trials, ${violations} violations (seed ${plans[0]?.seed ?? options.seed})${errors ? `, ${errors} trials could not run` : ""}`);
  return violations > 0 || errors > 0 ? 1 : 0;
}

/** A trial takes well under a minute; one still running after this is stuck in the harness, and waiting longer would hide that. */
const TRIAL_WATCHDOG_MS = 5 * 60_000;

function stuck(cluster: ChaosCluster, plan: TrialPlan): void {
  say(`trial ${plan.trial} seed ${plan.seed}: ERROR (the harness, not a verdict): still running after ${TRIAL_WATCHDOG_MS / 60_000} minutes; stopping. Resume with --seed ${plan.seed} --from ${plan.trial + 1}`);
  void cluster.stop().finally(() => process.exit(2));
}

function trialLine(plan: TrialPlan, of: number, result: TrialResult): string {
  const ops = plan.clients.reduce((n, c) => n + c.ops.length, 0);
  const otherTool = plan.clients.reduce((n, c) => n + c.ops.filter((o) => o.fieldManager !== undefined).length, 0);
  const t = result.report.transactions;
  const counts = [`${t.committed} committed`, `${t.rolledBack} rolled back`, ...(t.failed ? [`${t.failed} failed`] : []), ...(t.unresolved ? [`${t.unresolved} unresolved`] : [])];
  const faults = plan.faults.map(describeFault).join(", ") || "none";
  const verdict = result.report.violations.length === 0 ? "ok" : `${result.report.violations.length} VIOLATIONS (${[...new Set(result.report.violations.map((v) => v.kind))].join(", ")})`;
  const notes = result.report.notes.length ? `, ${result.report.notes.length} notes` : "";
  const phases = Object.entries(result.phases).map(([name, s]) => `${name} ${s.toFixed(1)}`).join(", ");
  const file = result.file ? ` -> ${path.relative(process.cwd(), result.file)}` : "";
  const which = of === 1 ? `${plan.trial}` : `${plan.trial}/${of}`;
  return `trial ${which} seed ${plan.seed}: ${ops} applies (${otherTool} as another tool), ${t.committed + t.rolledBack + t.failed + t.unresolved} transactions (${counts.join(", ")}), ${plan.sink ? "sink" : "no sink"}, faults: ${faults}; ${verdict}${notes} in ${result.seconds.toFixed(1)}s (${phases})${file}`;
}

function findingLine(f: Finding): string {
  return `${f.severity === "violation" ? "VIOLATION" : "note"} ${f.kind}: ${f.message}`;
}

async function readReplay(file: string): Promise<{ history: TrialHistory }> {
  return JSON.parse(await readFile(file, "utf8")) as { history: TrialHistory };
}

async function planFromFile(file: string): Promise<TrialPlan> {
  return (await readReplay(file)).history.plan;
}

/** The checker again on a recorded trial, or on every trial file of a directory (a campaign run with --save-all). */
async function recheck(target: string): Promise<number> {
  const files = (await stat(target)).isDirectory()
    ? (await readdir(target)).filter((f) => /^(trial|violation|failed)-\d+-\d+\.json$/.test(f)).sort(byTrial).map((f) => path.join(target, f))
    : [target];
  let violations = 0;
  for (const file of files) {
    const { history } = await readReplay(file);
    const report: CheckReport = checkTrial(history);
    violations += report.violations.length;
    for (const finding of [...report.violations, ...(files.length === 1 ? report.notes : [])]) say(`${files.length > 1 ? `trial ${history.plan.trial}: ` : ""}${findingLine(finding)}`);
    if (files.length === 1) say(`chaos: recheck of trial ${history.plan.trial} (seed ${history.plan.seed}): ${report.violations.length} violations`);
  }
  if (files.length !== 1) say(`chaos: recheck of ${files.length} trials in ${target}: ${violations} violations`);
  return violations > 0 ? 1 : 0;
}

/** trial-4251-9.json before trial-4251-10.json. */
function byTrial(a: string, b: string): number {
  const n = (f: string): number => Number(/-(\d+)\.json$/.exec(f)?.[1] ?? 0);
  return n(a) - n(b);
}

/** Counts each replica's /validate calls over dry-run writes: every replica must get some. */
async function measureSpread(cluster: ChaosCluster): Promise<void> {
  const before = await Promise.all(cluster.replicas.map((r) => r.validateCount()));
  for (let i = 0; i < SPREAD_PROBES; i += 1) {
    const probe = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `spread-${i}` }, data: { probe: "1" } };
    await cluster.userHttp.send("POST", `/api/v1/namespaces/${PROBE_NAMESPACE}/configmaps?dryRun=All`, probe);
  }
  const after = await Promise.all(cluster.replicas.map((r) => r.validateCount()));
  const counts = cluster.replicas.map((r, i) => `${r.name} ${(after[i] ?? 0) - (before[i] ?? 0)}`);
  say(`chaos: ${SPREAD_PROBES} dry-run writes reached the replicas as ${counts.join(", ")} /validate calls`);
  if (after.some((n, i) => n - (before[i] ?? 0) === 0)) throw new Error("chaos: the apiserver did not spread webhook calls over every replica; see the EndpointSlices in kubetx-system");
}

main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
