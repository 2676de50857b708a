/**
 * Scenarios 2 and 3: wall time of one `kubectl apply -f` of 100 ConfigMaps
 * as alice, with the webhook (explicit transaction; transparent mode) and
 * without any webhook, runs interleaved; and the time from kubectl exiting
 * to the Transaction record reaching Committed.
 */
import { performance } from "node:perf_hooks";
import type { PerMember, Window } from "../support/audit.ts";
import { kubetxCalls, perMember } from "../support/audit.ts";
import type { BenchContext } from "../support/context.ts";
import { ENABLED, webhook } from "../support/context.ts";
import { configMapFile } from "../support/manifests.ts";
import { median, round } from "../support/stats.ts";

export interface ApplyOptions {
  readonly runs: number;
  readonly objects: number;
}

/** Far above any commit we expect; a transaction still open then is a finding, not a hang. */
const RESOLVE_TIMEOUT_MS = 60_000;

type Kind = "explicit" | "explicitBaseline" | "transparent" | "transparentBaseline";

export interface ApplyRun {
  readonly kind: Kind;
  readonly run: number;
  readonly wallMs: number;
  readonly transaction?: string;
  readonly phase?: string;
  readonly members?: number;
  readonly exitToClosedMs?: number;
  readonly exitToCommittedMs?: number;
}

export interface ApplyComparison {
  readonly withWebhookMedianMs: number;
  readonly withoutWebhookMedianMs: number;
  readonly ratio: number;
  readonly exitToCommittedMedianMs: number;
  readonly exitToClosedMedianMs: number;
  readonly allCommitted: boolean;
  /** Requests kubetx made to the apiserver per member, from kubectl's start to the commit (audit log). */
  readonly kubetxCallsPerMember: PerMember;
}

export interface ApplyResult {
  readonly options: ApplyOptions;
  readonly explicit: ApplyComparison;
  readonly transparent: ApplyComparison;
  readonly runs: ApplyRun[];
}

export async function measureApply(ctx: BenchContext, options: ApplyOptions): Promise<ApplyResult> {
  const runs: ApplyRun[] = [];
  let sequence = 0;
  const windows: Record<string, Window[]> = {};
  const one = async (kind: Kind, run: number): Promise<ApplyRun> => {
    sequence += 1;
    const namespace = `apply-${kind.toLowerCase()}-${ctx.run}-${sequence}`;
    const withWebhook = kind === "explicit" || kind === "transparent";
    await ctx.cluster.createNamespace(namespace, withWebhook ? { ...ENABLED } : {});
    const id = `t-apply-${ctx.run}-${sequence}`;
    const annotated = kind === "explicit" || kind === "explicitBaseline";
    const file = await configMapFile(ctx.cluster.dir, namespace, options.objects,
      annotated ? { "kubetx.io/transaction": id, "kubetx.io/expected-members": String(options.objects) } : undefined);
    await webhook(ctx, withWebhook ? "on" : "off");
    const wallStart = Date.now();
    const started = performance.now();
    const result = await ctx.cluster.kubectl(["apply", "-f", file]);
    const exited = performance.now();
    if (result.code !== 0) throw new Error(`bench: kubectl apply (${kind}) failed: ${result.stderr.slice(0, 2000)}`);
    const wallMs = round(exited - started);
    if (!withWebhook) return { kind, run, wallMs };
    const txId = kind === "explicit" ? id : await transparentTransaction(ctx, started);
    const resolved = await outcome(ctx, txId, exited);
    if (run > 0) (windows[kind] ??= []).push({ start: wallStart, end: Date.now() });
    return { kind, run, wallMs, ...resolved };
  };
  ctx.progress("  warm-up: one apply of each kind (fills kubectl's discovery cache, warms the engine)");
  for (const kind of ["explicitBaseline", "explicit", "transparent"] as const) await one(kind, 0);
  for (let run = 1; run <= options.runs; run += 1) {
    // Alternate which state goes first, so a drift in machine load falls on both sides.
    const order: Kind[] = run % 2 === 1
      ? ["explicitBaseline", "transparentBaseline", "explicit", "transparent"]
      : ["explicit", "transparent", "explicitBaseline", "transparentBaseline"];
    for (const kind of order) {
      const r = await one(kind, run);
      runs.push(r);
      ctx.progress(`  run ${run}/${options.runs} ${kind.padEnd(19)} ${String(r.wallMs).padStart(8)} ms${r.exitToCommittedMs !== undefined ? `, kubectl exit -> ${r.phase ?? "?"} ${r.exitToCommittedMs} ms` : ""}`);
    }
  }
  const calls = async (kind: Kind): Promise<ApplyComparison["kubetxCallsPerMember"]> =>
    perMember(await kubetxCalls(ctx.cluster.controlPlane.auditLog, windows[kind] ?? []), options.objects * (windows[kind]?.length ?? 0));
  return {
    options,
    explicit: { ...compare(runs, "explicit", "explicitBaseline", options.objects), kubetxCallsPerMember: await calls("explicit") },
    transparent: { ...compare(runs, "transparent", "transparentBaseline", options.objects), kubetxCallsPerMember: await calls("transparent") },
    runs,
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

function compare(runs: readonly ApplyRun[], withKind: Kind, withoutKind: Kind, objects: number): Omit<ApplyComparison, "kubetxCallsPerMember"> {
  const withRuns = runs.filter((r) => r.kind === withKind);
  const withMs = median(withRuns.map((r) => r.wallMs));
  const withoutMs = median(runs.filter((r) => r.kind === withoutKind).map((r) => r.wallMs));
  return {
    withWebhookMedianMs: round(withMs),
    withoutWebhookMedianMs: round(withoutMs),
    ratio: round(withMs / withoutMs, 3),
    exitToCommittedMedianMs: round(median(withRuns.map((r) => r.exitToCommittedMs ?? Number.NaN))),
    exitToClosedMedianMs: round(median(withRuns.map((r) => r.exitToClosedMs ?? Number.NaN))),
    allCommitted: withRuns.every((r) => r.phase === "Committed" && r.members === objects),
  };
}
