/**
 * Scenario 1: what the webhook adds to one write, seen by the client.
 * Sequential ConfigMap CREATEs as alice through the apiserver, in rounds:
 * with the webhook unregistered (baselines), then registered (pass-through
 * and member writes). Added latency = with - without, at p50 and p99.
 *
 * Member writes come in two shapes: each its own transaction
 * (expected-members 1), and all of a round's writes as one transaction
 * (expected-members = the round's count). One transaction per round, not
 * one for the whole run: written one by one at this speed, a few hundred
 * members outlast the policy's 60 s maximum open time.
 */
import { performance } from "node:perf_hooks";
import type { KubeObject } from "../../src/kube/index.ts";
import type { PerMember, Window } from "../support/audit.ts";
import { kubetxCalls, perMember } from "../support/audit.ts";
import type { BenchContext } from "../support/context.ts";
import { ENABLED, webhook } from "../support/context.ts";
import type { Labels, WebhookView } from "../support/metrics.ts";
import { WebhookWindows } from "../support/metrics.ts";
import type { Summary } from "../support/stats.ts";
import { round, summarize } from "../support/stats.ts";

export interface LatencyOptions {
  readonly warmup: number;
  readonly samples: number;
  readonly rounds: number;
}

/** How long the resolver may take to work off the transactions one block opened. */
const SETTLE_TIMEOUT_MS = 120_000;
/** Failed writes tolerated per series before the scenario gives up. */
const MAX_FAILURES = 10;
/** The series' own writes (all creates, none refused), as this view counted before it had quantiles. */
const ADMITTED_CREATES = (labels: Labels): boolean => labels.operation === "CREATE" && labels.rejected === "false";

type Series = "baselineOptedIn" | "baselinePlain" | "passThrough" | "memberSingle" | "memberShared";

export interface SharedTransaction {
  readonly id: string;
  readonly members: number;
  readonly phase: string;
  readonly reason: string;
  readonly lastWriteToResolvedMs: number;
}

export interface LatencyResult {
  readonly options: LatencyOptions;
  readonly series: Record<Series, Summary>;
  readonly added: Record<"memberSingle" | "memberShared" | "passThrough", { p50: number; p99: number }>;
  /** Shared-transaction writes by position in their transaction: p50 of the first and last tenth of each round. */
  readonly memberSharedBySize: { firstTenthP50: number; lastTenthP50: number };
  /** Single-member transactions: from the write's response to Committed seen on the watch. */
  readonly singleCommitLag: Summary;
  readonly singleNotCommitted: number;
  readonly sharedTransactions: SharedTransaction[];
  readonly failures: Partial<Record<Series, { count: number; first: string }>>;
  /** Requests kubetx made to the apiserver per write, from the audit log, during each series' blocks and the resolver work that followed them. */
  readonly kubetxCallsPerWrite: Record<string, PerMember>;
  /** The apiserver's webhook histogram over each series' blocks, per webhook name (admitted CREATEs only). */
  readonly apiserverView: Record<string, Record<string, WebhookView>>;
  readonly raw: Record<Series, number[]>;
}

interface Writer {
  readonly samples: number[];
  /** Sample index where each round of this series began. */
  readonly roundStarts: number[];
  write(keep: boolean): Promise<void>;
}

export async function measureLatency(ctx: BenchContext, options: LatencyOptions): Promise<LatencyResult> {
  const optedIn = `lat-on-${ctx.run}`;
  const plain = `lat-off-${ctx.run}`;
  await ctx.cluster.createNamespace(optedIn, { ...ENABLED });
  await ctx.cluster.createNamespace(plain);
  const singleAnsweredAt = new Map<string, number>();
  const shared = { id: "", expected: 0, lastAt: 0 };
  const failures: LatencyResult["failures"] = {};
  let counter = 0;
  const writer = (series: Series, namespace: string, annotate: () => Record<string, string> | undefined, after?: (at: number) => void): Writer => {
    const samples: number[] = [];
    return {
      samples,
      roundStarts: [],
      write: async (keep) => {
        counter += 1;
        const annotations = annotate();
        const body: KubeObject = {
          apiVersion: "v1", kind: "ConfigMap",
          metadata: { name: `cm-${counter}`, ...(annotations ? { annotations } : {}) },
          data: { key: `value-${counter}` },
        };
        const started = performance.now();
        try {
          await ctx.cluster.alice.create(`/api/v1/namespaces/${namespace}/configmaps`, body);
        } catch (error) {
          const f = (failures[series] ??= { count: 0, first: error instanceof Error ? error.message : String(error) });
          f.count += 1;
          if (f.count > MAX_FAILURES) throw error;
          return;
        }
        const answered = performance.now();
        if (keep) samples.push(answered - started);
        after?.(answered);
      },
    };
  };
  let singleId = "";
  const writers: Record<Series, Writer> = {
    // Same annotations as a member write, so the bodies are the same size; inert without the webhook.
    baselineOptedIn: writer("baselineOptedIn", optedIn, () => ({ "kubetx.io/transaction": `t-inert-${ctx.run}-${counter}`, "kubetx.io/expected-members": "1" })),
    baselinePlain: writer("baselinePlain", plain, () => undefined),
    passThrough: writer("passThrough", plain, () => undefined),
    memberSingle: writer("memberSingle", optedIn, () => {
      singleId = `t-lat-${ctx.run}-${counter}`;
      return { "kubetx.io/transaction": singleId, "kubetx.io/expected-members": "1" };
    }, (at) => singleAnsweredAt.set(singleId, at)),
    memberShared: writer("memberShared", optedIn, () => ({ "kubetx.io/transaction": shared.id, "kubetx.io/expected-members": String(shared.expected) }), (at) => (shared.lastAt = at)),
  };
  const apiserver: Partial<Record<Series, WebhookWindows>> = {};
  const windows: Partial<Record<Series, Window[]>> = {};
  const block = async (series: readonly Series[], count: number, keep: boolean): Promise<void> => {
    for (const s of series) writers[s].roundStarts.push(writers[s].samples.length);
    const writeAll = async (): Promise<void> => {
      for (let i = 0; i < count; i += 1) {
        for (const s of series) await writers[s].write(keep);
      }
    };
    const only = series.length === 1 ? series[0] : undefined;
    if (keep && only) await (apiserver[only] ??= new WebhookWindows(ctx.cluster.controlPlane)).around(writeAll);
    else await writeAll();
  };
  const settle = (): Promise<true> => ctx.phases.allResolved(SETTLE_TIMEOUT_MS);
  const timed = async (s: Series, count: number, keep: boolean): Promise<void> => {
    const start = Date.now();
    await block([s], count, keep);
    await settle();
    if (keep) (windows[s] ??= []).push({ start, end: Date.now() });
  };
  const sharedTransactions: SharedTransaction[] = [];
  const perRound = Math.ceil(options.samples / options.rounds);
  for (let r = 0; r <= options.rounds; r += 1) {
    const warm = r === 0;
    const count = warm ? options.warmup : Math.min(perRound, options.samples - (r - 1) * perRound);
    ctx.progress(`  latency ${warm ? "warm-up" : `round ${r}/${options.rounds}`}: ${count} writes per series without the webhook, then with it`);
    await webhook(ctx, "off");
    // Baselines interleaved write by write; with the webhook, one series per block so the apiserver's metrics separate them.
    await block(["baselineOptedIn", "baselinePlain"], count, !warm);
    await webhook(ctx, "on");
    await timed("passThrough", count, !warm);
    await timed("memberSingle", count, !warm);
    Object.assign(shared, { id: `t-latshared-${ctx.run}-${r}`, expected: count });
    await timed("memberShared", count, !warm);
    if (!warm) sharedTransactions.push(await sharedOutcome(ctx, shared.id, shared.lastAt));
  }
  return {
    options,
    ...summaries(writers),
    singleCommitLag: summarize(commitLags(ctx, singleAnsweredAt)),
    singleNotCommitted: singleAnsweredAt.size - commitLags(ctx, singleAnsweredAt).length,
    sharedTransactions,
    failures,
    kubetxCallsPerWrite: await callsPerWrite(ctx, windows, writers),
    apiserverView: Object.fromEntries(Object.entries(apiserver).map(([k, w]) => [k, w.view(ADMITTED_CREATES)])),
    raw: Object.fromEntries(Object.entries(writers).map(([k, w]) => [k, w.samples.map((x) => round(x))])) as Record<Series, number[]>,
  };
}

function summaries(writers: Record<Series, Writer>): Pick<LatencyResult, "series" | "added" | "memberSharedBySize"> {
  const series = Object.fromEntries(Object.entries(writers).map(([k, w]) => [k, summarize(w.samples)])) as Record<Series, Summary>;
  const added = (s: Series, base: Series): { p50: number; p99: number } => ({ p50: round(series[s].p50 - series[base].p50), p99: round(series[s].p99 - series[base].p99) });
  // The warm-up block kept no samples, so its start index repeats the first round's; skip it.
  const shared = writers.memberShared;
  const starts = [...new Set(shared.roundStarts)];
  const first: number[] = [], last: number[] = [];
  starts.forEach((start, i) => {
    const round = shared.samples.slice(start, starts[i + 1] ?? shared.samples.length);
    const tenth = Math.max(1, Math.floor(round.length / 10));
    first.push(...round.slice(0, tenth));
    last.push(...round.slice(-tenth));
  });
  return {
    series,
    added: { memberSingle: added("memberSingle", "baselineOptedIn"), memberShared: added("memberShared", "baselineOptedIn"), passThrough: added("passThrough", "baselinePlain") },
    memberSharedBySize: { firstTenthP50: summarize(first).p50, lastTenthP50: summarize(last).p50 },
  };
}

function commitLags(ctx: BenchContext, answeredAt: ReadonlyMap<string, number>): number[] {
  const lags: number[] = [];
  for (const [id, answered] of answeredAt) {
    const committed = ctx.phases.seen.get(id)?.phases.get("Committed");
    if (committed !== undefined) lags.push(committed - answered);
  }
  return lags;
}

async function sharedOutcome(ctx: BenchContext, id: string, lastAt: number): Promise<SharedTransaction> {
  const [phase, at] = await ctx.phases.reached(id, ["Committed", "RolledBack", "Failed"], SETTLE_TIMEOUT_MS);
  const status = ctx.phases.seen.get(id)?.last?.status ?? {};
  return { id, members: status.memberCount ?? 0, phase, reason: status.reason ?? "", lastWriteToResolvedMs: round(at - lastAt) };
}

async function callsPerWrite(ctx: BenchContext, windows: Partial<Record<Series, Window[]>>, writers: Record<Series, Writer>): Promise<Record<string, PerMember>> {
  const out: Record<string, PerMember> = {};
  for (const [name, w] of Object.entries(windows)) {
    out[name] = perMember(await kubetxCalls(ctx.cluster.controlPlane.auditLog, w), writers[name as Series].samples.length);
  }
  return out;
}
