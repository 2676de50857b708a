/**
 * kubetx benchmark: starts its own control plane in a temp dir and
 * the engine in this process, measures (1) write latency the webhook adds,
 * (2) and (3) applying 100 ConfigMaps with and without the webhook
 * (`kubectl apply` explicit and transparent, and `kubectl tx apply`), and
 * (4) rolling back 100 members, each path also as the apiserver's webhook
 * histogram sees it, and (5) pass-through admissions per second under
 * in-process load; prints the numbers, writes bench/results/latest.json
 * and a dated copy, and stops everything it started, also on failure or
 * Ctrl-C.
 *
 *   npm run bench                     (a few minutes)
 *   npm run bench -- --fsync          (etcd with fsync on, on disk; writes latest-fsync.json and a dated copy)
 *   npm run bench -- --quick [--fsync] (smoke run; writes bench/results/quick.json or quick-fsync.json only)
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { ConfigInput } from "../src/config/config.ts";
import type { KubeObject, ObjectList } from "../src/kube/index.ts";
import { transactionPath } from "../src/transactions/model.ts";
import type { ApplyResult } from "./scenarios/apply.ts";
import { measureApply } from "./scenarios/apply.ts";
import type { LatencyResult } from "./scenarios/latency.ts";
import { measureLatency } from "./scenarios/latency.ts";
import type { RollbackResult } from "./scenarios/rollback.ts";
import { measureRollback } from "./scenarios/rollback.ts";
import type { ThroughputResult } from "./scenarios/throughput.ts";
import { measureThroughput } from "./scenarios/throughput.ts";
import { Cleanup } from "./support/cleanup.ts";
import type { BenchCluster } from "./support/cluster.ts";
import { REPO, startBenchCluster } from "./support/cluster.ts";
import type { BenchContext } from "./support/context.ts";
import type { BenchEngine } from "./support/engine.ts";
import { startBenchEngine } from "./support/engine.ts";
import { PhaseRecorder } from "./support/phases.ts";
import type { Results } from "./support/report.ts";
import type { ScenarioName } from "./support/report.ts";
import { SCENARIOS, engineProblems, parseOnly, summaryText, targetsOf, writeResults } from "./support/report.ts";
import { median, round } from "./support/stats.ts";

/**
 * Production defaults (resolver period 250 ms, persist grace 2 s, intent
 * grace 0.5 s, quiet window 2 s, lock TTL 15 s, max open 60 s) with one
 * change: admin is exempt, as in the tests, so the editor binder's
 * RoleBindings in opted-in namespaces do not become transactions.
 */
const ENGINE_INPUT: ConfigInput = { policySource: "flags", identity: "bench-engine", exemptUsers: ["admin"] };
const ARGS = process.argv.slice(2);
const KNOWN_ARGS = ["--quick", "--fsync"];
/**
 * `--only=rollback` (or a comma-separated list): only those scenarios, for
 * comparing one change side by side without the whole bench. The results
 * go to a dated `…-only-<names>.json`, never to latest.json, which stays a
 * whole run.
 */
const ONLY = parseOnly(ARGS.find((a) => a.startsWith("--only="))?.slice("--only=".length));
/** `--quick`: a smoke run of the whole bench in about a minute; its numbers mean little and go to results/quick.json only. */
const QUICK = ARGS.includes("--quick");
/**
 * `--fsync`: etcd syncs every write to disk, as in a real cluster (the
 * default run skips fsync, as the dev control plane does). A run of its own
 * rather than a second control plane in every run: each ratio is taken
 * within one run either way, and the default run stays as long, and as
 * comparable with earlier results, as it was.
 */
const FSYNC = ARGS.includes("--fsync");
const LATENCY = QUICK ? { warmup: 5, samples: 30, rounds: 3 } : { warmup: 30, samples: 330, rounds: 3 };
const APPLY = { runs: QUICK ? 1 : 5, objects: 100 };
const ROLLBACK = { runs: QUICK ? 1 : 3, objects: 100 };
/** Eight in flight: more than the apiserver's own calls to one replica usually are, few enough that 2 cores are not just queueing. */
const THROUGHPUT = QUICK ? { warmupSeconds: 1, seconds: 3, concurrency: 8 } : { warmupSeconds: 3, seconds: 10, concurrency: 8 };
/** A run that takes this long is stuck; stop everything rather than hang. */
const WATCHDOG_MS = 20 * 60_000;
const RESULTS_DIR = path.join(REPO, "bench", "results");

const startedAt = new Date();
const t0 = performance.now();
const progress = (line: string): void => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}`);

function argumentProblem(): string | undefined {
  const unknown = ARGS.filter((a) => !KNOWN_ARGS.includes(a) && !a.startsWith("--only="));
  if (unknown.length > 0) return `unknown argument ${unknown.join(" ")}; known: ${KNOWN_ARGS.join(" ")} --only=${SCENARIOS.join(",")}`;
  return typeof ONLY === "string" ? ONLY : undefined;
}

async function main(): Promise<number> {
  const problem = argumentProblem();
  if (problem) {
    console.error(`bench: ${problem}`);
    return 2;
  }
  const cleanup = new Cleanup();
  const stopOn = (signal: NodeJS.Signals): void => {
    progress(`${signal}: stopping everything this bench started`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOn);
  process.once("SIGTERM", stopOn);
  const watchdog = setTimeout(() => {
    progress(`no result after ${WATCHDOG_MS / 60_000} min: giving up`);
    void cleanup.run().finally(() => process.exit(2));
  }, WATCHDOG_MS);
  watchdog.unref();

  const errors: string[] = [];
  const extra: Record<string, unknown> = {};
  const loadByScenario: Record<string, { start: number[]; end: number[] }> = {};
  const scenario = async <T>(name: string, work: () => Promise<T>): Promise<T | undefined> => {
    const loadStart = loadavg().map((x) => round(x));
    progress(`${name}: start (load average ${loadStart.join(" ")})`);
    try {
      const result = await work();
      loadByScenario[name] = { start: loadStart, end: loadavg().map((x) => round(x)) };
      progress(`${name}: done`);
      return result;
    } catch (error) {
      const message = `${name}: ${error instanceof Error ? error.stack ?? error.message : String(error)}`;
      errors.push(message);
      progress(`FAILED ${message}`);
      return undefined;
    }
  };
  const load = { start: loadavg().map((x) => round(x)) };
  extra.source = await sourceState();
  let cluster: BenchCluster | undefined;
  let engine: BenchEngine | undefined;
  let apply: ApplyResult | undefined, rollback: RollbackResult | undefined, latency: LatencyResult | undefined, throughput: ThroughputResult | undefined;
  extra.loadAverageByScenario = loadByScenario;
  try {
    progress(`load average at start ${load.start.join(" ")} on ${cpus().length} cores`);
    cluster = await startBenchCluster(cleanup, progress, { fsync: FSYNC });
    const phases = await PhaseRecorder.start(cluster.admin, cleanup);
    engine = await startBenchEngine(cluster, cleanup, ENGINE_INPUT, path.join(cluster.dir, "engine.log"));
    progress(`engine listening on 127.0.0.1:${engine.server.port} (in this process)`);
    const ctx: BenchContext = { cluster, engine, phases, run: randomBytes(3).toString("hex"), progress };
    // Apply and rollback first, on a cluster with few Transaction records; the latency
    // scenario leaves several hundred behind (kubetx does not delete resolved records).
    // A scenario `--only=` leaves out is not run.
    const measure = async <T>(name: ScenarioName, title: string, work: () => Promise<T>): Promise<T | undefined> =>
      (!Array.isArray(ONLY) || ONLY.includes(name) ? scenario(title, work) : undefined);
    apply = await measure("apply", "2+3. kubectl apply (explicit, transparent) and kubectl tx apply, vs no webhook", () => measureApply(ctx, APPLY));
    rollback = await measure("rollback", "4. rollback of 100 members", () => measureRollback(ctx, ROLLBACK));
    latency = await measure("latency", "1. write latency with and without the webhook", () => measureLatency(ctx, LATENCY));
    throughput = await measure("throughput", "5. pass-through admissions per second, in-process load", () => measureThroughput(ctx, THROUGHPUT));
    Object.assign(extra, await scenario("after: records and engine log", () => afterwards(cluster as BenchCluster, engine as BenchEngine)) ?? {});
  } catch (error) {
    errors.push(`setup: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    progress(`FAILED setup: ${errors.at(-1) ?? ""}`);
  } finally {
    const results = resultsOf({ cluster, engine, load, apply, rollback, latency, throughput, extra, errors });
    const files = await writeResults(RESULTS_DIR, results, { quick: QUICK, fsync: FSYNC, ...(Array.isArray(ONLY) ? { only: ONLY } : {}) });
    progress("stopping the engine, the control plane and the temp dir");
    const failures = await cleanup.run();
    for (const f of failures) progress(`cleanup: ${f}`);
    console.log(`\n${summaryText(results)}\n`);
    console.log(`written: ${files.map((f) => path.relative(REPO, f)).join(", ")}`);
    clearTimeout(watchdog);
  }
  return errors.length === 0 ? 0 : 1;
}

interface Collected {
  readonly cluster: BenchCluster | undefined;
  readonly engine: BenchEngine | undefined;
  readonly load: { start: number[] };
  readonly apply: ApplyResult | undefined;
  readonly rollback: RollbackResult | undefined;
  readonly latency: LatencyResult | undefined;
  readonly throughput: ThroughputResult | undefined;
  readonly extra: Record<string, unknown>;
  readonly errors: string[];
}

function resultsOf(c: Collected): Results {
  const { apply, rollback, latency, throughput, engine } = c;
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: Math.round((performance.now() - t0) / 1000),
    environment: environmentOf(c),
    engineConfig: engine ? {
      resolverPeriodMs: engine.config.resolverPeriodMs, persistGraceMs: engine.config.persistGraceMs, intentGraceMs: engine.config.intentGraceMs,
      quietWindowSeconds: engine.config.flagPolicy.quietWindowSeconds, lockTTLSeconds: engine.config.flagPolicy.lockTTLSeconds,
      maxOpenSeconds: engine.config.flagPolicy.maxOpenSeconds, exemptUsers: engine.config.flagPolicy.exemptUsers, mode: engine.config.flagPolicy.mode,
      logLevel: "info (to a file)",
    } : {},
    ...(apply ? { apply } : {}),
    ...(rollback ? { rollback } : {}),
    ...(latency ? { latency } : {}),
    ...(throughput ? { throughput } : {}),
    extra: c.extra,
    targets: targetsOf({ apply, rollback, latency, throughput }),
    errors: c.errors,
  };
}

function environmentOf(c: Collected): Record<string, unknown> {
  return {
    node: process.version, cores: cpus().length, cpu: cpus()[0]?.model ?? "?",
    kubernetes: c.cluster?.binaries.version ?? "?", kubectl: c.cluster?.binaries.kubectl ?? "?",
    engine: "in the bench process (startWebhookServer), one replica",
    etcd: c.cluster?.etcd ?? { fsync: FSYNC },
    loadAverage: { ...c.load, end: loadavg().map((x) => round(x)) },
  };
}

/** Which code was measured: HEAD and a digest of the uncommitted changes under src/ (others edit it while benches run). */
async function sourceState(): Promise<Record<string, unknown>> {
  const git = (args: string[]): Promise<string> => new Promise((resolve) => {
    execFile("git", ["-C", REPO, ...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => resolve(error ? "" : stdout));
  });
  const diff = await git(["diff", "HEAD", "--", "src"]);
  return {
    head: (await git(["rev-parse", "HEAD"])).trim(),
    changedSrcFiles: (await git(["status", "--porcelain", "--", "src"])).split("\n").filter(Boolean).length,
    srcDiffSha256: createHash("sha256").update(diff).digest("hex").slice(0, 16),
  };
}

/** How many records the run left, what listing them costs the resolver each period, and what the engine logged. */
async function afterwards(cluster: BenchCluster, engine: BenchEngine): Promise<Record<string, unknown>> {
  const times: number[] = [];
  let records = 0, bytes = 0;
  for (let i = 0; i < 5; i += 1) {
    const started = performance.now();
    const list = await cluster.admin.get<ObjectList<KubeObject>>(transactionPath());
    times.push(performance.now() - started);
    records = list.items.length;
    bytes = JSON.stringify(list).length;
  }
  return {
    transactionRecordsLeft: records,
    transactionListBytes: bytes,
    transactionListMedianMs: round(median(times)),
    reviewsAnswered: Object.fromEntries(engine.reviews),
    engineLog: await engineProblems(engine.logFile),
  };
}

process.exitCode = await main();
process.exit();
