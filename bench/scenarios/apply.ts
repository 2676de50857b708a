/**
 * Scenarios 2 and 3: wall time of applying 100 ConfigMaps as alice, with
 * the webhook and without any webhook, runs interleaved. Three paths, each
 * beside its own baseline (plain `kubectl apply -f` with no webhook):
 * `kubectl apply -f` of an explicit transaction, plain `kubectl apply -f`
 * in transparent mode, and `kubectl tx apply -f` (the plugin, which also
 * waits for the verdict). For the first two, the time from kubectl exiting
 * to the Transaction record reaching Committed; for the plugin, where its
 * own time goes before kubectl starts and after the commit.
 */
import { performance } from "node:perf_hooks";
import type { PerMember, Window } from "../support/audit.ts";
import { kubetxCalls, perMember } from "../support/audit.ts";
import type { BenchContext } from "../support/context.ts";
import { ENABLED, webhook } from "../support/context.ts";
import { configMapFile } from "../support/manifests.ts";
import type { WebhookView } from "../support/metrics.ts";
import { WebhookWindows } from "../support/metrics.ts";
import type { Seen } from "../support/phases.ts";
import type { BenchPlugin } from "../support/plugin.ts";
import { announcedTransaction, installPlugin } from "../support/plugin.ts";
import { median, round } from "../support/stats.ts";

export interface ApplyOptions {
  readonly runs: number;
  readonly objects: number;
}

/** Far above any commit we expect; a transaction still open then is a finding, not a hang. */
const RESOLVE_TIMEOUT_MS = 60_000;

type Path = "explicit" | "transparent" | "plugin";
type Kind = Path | "explicitBaseline" | "transparentBaseline" | "pluginBaseline";
const BASELINE: Record<Path, Kind> = { explicit: "explicitBaseline", transparent: "transparentBaseline", plugin: "pluginBaseline" };
const PATHS: readonly Path[] = ["explicit", "transparent", "plugin"];

export interface ApplyRun {
  readonly kind: Kind;
  readonly run: number;
  readonly wallMs: number;
  readonly transaction?: string;
  readonly phase?: string;
  readonly members?: number;
  readonly exitToClosedMs?: number;
  readonly exitToCommittedMs?: number;
  /** Plugin: from `kubectl tx apply` starting to its Transaction record appearing on the watch (node start, whoami, record). */
  readonly startToRecordMs?: number;
  /** Plugin: from the record appearing to kubetx marking it prepared (its locks taken). */
  readonly recordToPreparedMs?: number;
  /** Plugin: from prepared to Verifying (kubectl's run, kubectl tx reporting its end, kubetx closing). */
  readonly preparedToClosedMs?: number;
  /** Plugin: from Verifying to the verdict (the verifier's reads, the commit). */
  readonly closedToResolvedMs?: number;
  /** Plugin: from the watch seeing the transaction resolved to `kubectl tx` exiting (its poll, printing the outcome). */
  readonly resolvedToExitMs?: number;
}

export interface Comparison {
  readonly withWebhookMedianMs: number;
  readonly withoutWebhookMedianMs: number;
  /** Median with the webhook over median without, from the same interleaved runs. */
  readonly ratio: number;
  /** Every measured run Committed with all its members. */
  readonly allCommitted: boolean;
  /** Requests kubetx made to the apiserver per member, from the apply's start to the commit (audit log). */
  readonly kubetxCallsPerMember: PerMember;
  /**
   * Of those, the ones made while answering the apply's own admission
   * reviews (/validate and /observe), per member: what the user waits for.
   */
  readonly requestPathCallsPerMember: number;
  /** The apiserver's webhook histogram over the measured runs (start to resolution), per webhook name. */
  readonly apiserverView: Record<string, WebhookView>;
}

export interface ApplyComparison extends Comparison {
  readonly exitToCommittedMedianMs: number;
  readonly exitToClosedMedianMs: number;
}

export interface PluginComparison extends Comparison {
  readonly startToRecordMedianMs: number;
  readonly recordToPreparedMedianMs: number;
  readonly preparedToClosedMedianMs: number;
  readonly closedToResolvedMedianMs: number;
  readonly resolvedToExitMedianMs: number;
}

export interface ApplyResult {
  readonly options: ApplyOptions;
  readonly explicit: ApplyComparison;
  readonly transparent: ApplyComparison;
  /** `kubectl tx apply` against plain `kubectl apply`; its wall time includes waiting for the commit. */
  readonly plugin: PluginComparison;
  readonly runs: ApplyRun[];
}

type Measured = Omit<ApplyRun, "kind" | "run">;

export async function measureApply(ctx: BenchContext, options: ApplyOptions): Promise<ApplyResult> {
  const plugin = await installPlugin(ctx.cluster);
  const runs: ApplyRun[] = [];
  let sequence = 0;
  const windows: Partial<Record<Path, Window[]>> = {};
  const views: Partial<Record<Path, WebhookWindows>> = {};
  const measuredNamespaces: Partial<Record<Path, string[]>> = {};
  const one = async (kind: Kind, run: number): Promise<ApplyRun> => {
    sequence += 1;
    const namespace = `apply-${kind.toLowerCase()}-${ctx.run}-${sequence}`;
    const path = isPath(kind) ? kind : undefined;
    await ctx.cluster.createNamespace(namespace, path ? { ...ENABLED } : {});
    const id = `t-apply-${ctx.run}-${sequence}`;
    const annotated = kind === "explicit" || kind === "explicitBaseline";
    const file = await configMapFile(ctx.cluster.dir, namespace, options.objects,
      annotated ? { "kubetx.io/transaction": id, "kubetx.io/expected-members": String(options.objects) } : undefined);
    await webhook(ctx, path ? "on" : "off");
    if (!path) return { kind, run, wallMs: (await kubectlApply(ctx, kind, file)).wallMs };
    const measure = (): Promise<Measured> => (path === "plugin" ? pluginApply(ctx, plugin, file) : transactionApply(ctx, path, file, id));
    if (run === 0) return { kind, run, ...(await measure()) };
    const wallStart = Date.now();
    const measured = await (views[path] ??= new WebhookWindows(ctx.cluster.controlPlane)).around(measure);
    (windows[path] ??= []).push({ start: wallStart, end: Date.now() });
    (measuredNamespaces[path] ??= []).push(namespace);
    return { kind, run, ...measured };
  };
  ctx.progress("  warm-up: one apply of each path (fills kubectl's discovery cache, warms the engine and the plugin's node)");
  for (const kind of ["explicitBaseline", "explicit", "transparent", "plugin"] as const) await one(kind, 0);
  for (let run = 1; run <= options.runs; run += 1) {
    // Alternate which state goes first, so a drift in machine load falls on both sides.
    const baselines = PATHS.map((p) => BASELINE[p]);
    const order: Kind[] = run % 2 === 1 ? [...baselines, ...PATHS] : [...PATHS, ...baselines];
    for (const kind of order) {
      const r = await one(kind, run);
      runs.push(r);
      ctx.progress(`  run ${run}/${options.runs} ${kind.padEnd(19)} ${String(r.wallMs).padStart(8)} ms${runNote(r)}`);
    }
  }
  const common = async (path: Path): Promise<Comparison> => ({
    ...compare(runs, path, options.objects),
    kubetxCallsPerMember: perMember(await kubetxCalls(ctx.cluster.controlPlane.auditLog, windows[path] ?? []), options.objects * (windows[path]?.length ?? 0)),
    apiserverView: views[path]?.view() ?? {},
    requestPathCallsPerMember: requestPathCalls(ctx, measuredNamespaces[path] ?? [], options.objects),
  });
  const afterExit = (path: Path): Pick<ApplyComparison, "exitToCommittedMedianMs" | "exitToClosedMedianMs"> => ({
    exitToCommittedMedianMs: medianOf(runs, path, (r) => r.exitToCommittedMs),
    exitToClosedMedianMs: medianOf(runs, path, (r) => r.exitToClosedMs),
  });
  return {
    options,
    explicit: { ...(await common("explicit")), ...afterExit("explicit") },
    transparent: { ...(await common("transparent")), ...afterExit("transparent") },
    plugin: {
      ...(await common("plugin")),
      startToRecordMedianMs: medianOf(runs, "plugin", (r) => r.startToRecordMs),
      recordToPreparedMedianMs: medianOf(runs, "plugin", (r) => r.recordToPreparedMs),
      preparedToClosedMedianMs: medianOf(runs, "plugin", (r) => r.preparedToClosedMs),
      closedToResolvedMedianMs: medianOf(runs, "plugin", (r) => r.closedToResolvedMs),
      resolvedToExitMedianMs: medianOf(runs, "plugin", (r) => r.resolvedToExitMs),
    },
    runs,
  };
}

function isPath(kind: Kind): kind is Path {
  return (PATHS as readonly string[]).includes(kind);
}

function runNote(r: ApplyRun): string {
  if (r.resolvedToExitMs !== undefined) return `, ${r.phase ?? "?"} after ${r.members ?? 0} members; record seen ${r.startToRecordMs ?? "?"} ms after the start, prepared ${r.recordToPreparedMs ?? "?"} ms later, Verifying ${r.preparedToClosedMs ?? "?"} ms later, ${r.phase ?? "?"} ${r.closedToResolvedMs ?? "?"} ms later, exit ${r.resolvedToExitMs} ms after that`;
  if (r.exitToCommittedMs !== undefined) return `, kubectl exit -> ${r.phase ?? "?"} ${r.exitToCommittedMs} ms`;
  return "";
}

/** Plain `kubectl apply -f`, timed; a failure stops the scenario. */
async function kubectlApply(ctx: BenchContext, kind: Kind, file: string): Promise<{ wallMs: number; started: number; exited: number }> {
  const started = performance.now();
  const result = await ctx.cluster.kubectl(["apply", "-f", file]);
  const exited = performance.now();
  if (result.code !== 0) throw new Error(`bench: kubectl apply (${kind}) failed: ${result.stderr.slice(0, 2000)}`);
  return { wallMs: round(exited - started), started, exited };
}

/** `kubectl apply -f` into a transaction (explicit, or transparent mode's), and its outcome after kubectl exited. */
async function transactionApply(ctx: BenchContext, path: "explicit" | "transparent", file: string, id: string): Promise<Measured> {
  const { wallMs, started, exited } = await kubectlApply(ctx, path, file);
  const txId = path === "explicit" ? id : await transparentTransaction(ctx, started);
  return { wallMs, ...(await outcome(ctx, txId, exited)) };
}

/** `kubectl tx apply -f`: exits once kubetx has resolved the transaction, so its wall time holds the commit. */
async function pluginApply(ctx: BenchContext, plugin: BenchPlugin, file: string): Promise<Measured> {
  const started = performance.now();
  const result = await plugin.apply(file);
  const exited = performance.now();
  const id = announcedTransaction(result.stderr);
  if (result.code !== 0 || !id) throw new Error(`bench: kubectl tx apply failed (exit ${result.code}): ${result.stderr.slice(0, 2000)}\n${result.stdout.slice(-2000)}`);
  const [phase, at] = await ctx.phases.reached(id, ["Committed", "RolledBack", "Failed"], RESOLVE_TIMEOUT_MS);
  const seen = ctx.phases.seen.get(id);
  return { wallMs: round(exited - started), transaction: id, phase, members: seen?.last?.status?.memberCount ?? 0, ...pluginPhases(seen, { started, resolved: at, exited }) };
}

/** A plugin apply's phases, as the watch saw them (NaN for one it did not see). */
function pluginPhases(seen: Seen | undefined, at: { started: number; resolved: number; exited: number }): Pick<ApplyRun, "startToRecordMs" | "recordToPreparedMs" | "preparedToClosedMs" | "closedToResolvedMs" | "resolvedToExitMs"> {
  const recordAt = seen?.createdAt ?? Number.NaN;
  const preparedAt = seen?.preparedAt ?? Number.NaN;
  const closedAt = seen?.phases.get("Verifying") ?? Number.NaN;
  return {
    startToRecordMs: round(recordAt - at.started),
    recordToPreparedMs: round(preparedAt - recordAt),
    preparedToClosedMs: round(closedAt - preparedAt),
    closedToResolvedMs: round(at.resolved - closedAt),
    resolvedToExitMs: round(at.exited - at.resolved),
  };
}

/** The transparent transaction alice's apply opened: the first one seen after kubectl started. */
function transparentTransaction(ctx: BenchContext, started: number): Promise<string> {
  return ctx.phases.until("the transparent transaction appearing", () =>
    [...ctx.phases.seen.values()].find((s) => s.mode === "transparent" && s.user === "alice" && s.createdAt >= started)?.id, RESOLVE_TIMEOUT_MS);
}

/** Waits for the transaction to resolve; its phase and when it closed and resolved, after kubectl exited. */
async function outcome(ctx: BenchContext, txId: string, exited: number): Promise<Partial<ApplyRun>> {
  const [phase, at] = await ctx.phases.reached(txId, ["Committed", "RolledBack", "Failed"], RESOLVE_TIMEOUT_MS);
  const seen = ctx.phases.seen.get(txId);
  const closedAt = seen?.phases.get("Verifying");
  return {
    transaction: txId, phase, members: seen?.last?.status?.memberCount ?? 0,
    ...(closedAt !== undefined ? { exitToClosedMs: round(closedAt - exited) } : {}),
    exitToCommittedMs: round(at - exited),
  };
}

function medianOf(runs: readonly ApplyRun[], kind: Kind, field: (r: ApplyRun) => number | undefined): number {
  return round(median(runs.filter((r) => r.kind === kind).map((r) => field(r) ?? Number.NaN)));
}

function compare(runs: readonly ApplyRun[], path: Path, objects: number): Pick<Comparison, "withWebhookMedianMs" | "withoutWebhookMedianMs" | "ratio" | "allCommitted"> {
  const withMs = medianOf(runs, path, (r) => r.wallMs);
  const withoutMs = medianOf(runs, BASELINE[path], (r) => r.wallMs);
  return {
    withWebhookMedianMs: withMs,
    withoutWebhookMedianMs: withoutMs,
    ratio: round(withMs / withoutMs, 3),
    allCommitted: runs.filter((r) => r.kind === path).every((r) => r.phase === "Committed" && r.members === objects),
  };
}

/** kubetx's apiserver calls while answering the reviews of `namespaces`' applies, per member. */
function requestPathCalls(ctx: BenchContext, namespaces: readonly string[], objects: number): number {
  const calls = namespaces.reduce((sum, ns) => sum + (ctx.engine.requestPath.get(ns)?.calls ?? 0), 0);
  return namespaces.length === 0 ? 0 : round(calls / (objects * namespaces.length), 2);
}
