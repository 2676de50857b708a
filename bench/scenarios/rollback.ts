/**
 * Scenario 4: time to roll back 100 members. A 100-member explicit
 * transaction that expects 101 stays open; alice then reports failure on
 * her own record (spec.clientState=Failed, a merge patch) and we time the
 * patch to RolledBack, and check that every ConfigMap is gone.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeObject, ObjectList } from "../../src/kube/index.ts";
import { LABEL_ROLE, LABEL_TRANSACTION } from "../../src/kube/vocabulary.ts";
import { CLOSING_ROLE } from "../../src/locks/record.ts";
import { transactionPath } from "../../src/transactions/model.ts";
import type { PerMember, Window } from "../support/audit.ts";
import { kubetxCalls, perMember } from "../support/audit.ts";
import type { BenchContext } from "../support/context.ts";
import { ENABLED, webhook } from "../support/context.ts";
import { configMapFile } from "../support/manifests.ts";
import type { WebhookView } from "../support/metrics.ts";
import { WebhookWindows } from "../support/metrics.ts";
import { median, round } from "../support/stats.ts";

export interface RollbackOptions {
  readonly runs: number;
  readonly objects: number;
}

const RESOLVE_TIMEOUT_MS = 60_000;
/** Polls (50 ms apart) for the transaction's Leases and Secrets to be released after RolledBack. */
const RELEASE_POLLS = 200;

export interface RollbackRun {
  readonly run: number;
  readonly transaction: string;
  readonly phase: string;
  readonly reason: string;
  readonly patchToRollingBackMs: number;
  readonly patchToRolledBackMs: number;
  readonly patchToLocksReleasedMs: number;
  readonly configMapsLeft: number;
  readonly restored: number;
  readonly window: Window;
}

export interface RollbackResult {
  readonly options: RollbackOptions;
  readonly medianPatchToRolledBackMs: number;
  readonly medianPatchToLocksReleasedMs: number;
  readonly allRolledBackAndGone: boolean;
  /** Requests kubetx made to the apiserver per member, from the patch to locks released (audit log). */
  readonly kubetxCallsPerMember: PerMember;
  /** The apiserver's webhook histogram from each patch to locks released, per webhook name. */
  readonly apiserverView: Record<string, WebhookView>;
  readonly runs: RollbackRun[];
}

export async function measureRollback(ctx: BenchContext, options: RollbackOptions): Promise<RollbackResult> {
  await webhook(ctx, "on");
  const runs: RollbackRun[] = [];
  const view = new WebhookWindows(ctx.cluster.controlPlane);
  for (let run = 1; run <= options.runs; run += 1) {
    const r = await rollbackOnce(ctx, options, run, view);
    runs.push(r);
    ctx.progress(`  run ${run}/${options.runs}: patch -> ${r.phase} ${r.patchToRolledBackMs} ms (RollingBack after ${r.patchToRollingBackMs} ms, locks released after ${r.patchToLocksReleasedMs} ms), ${r.restored} restored, ${r.configMapsLeft} ConfigMaps left`);
  }
  return {
    options,
    medianPatchToRolledBackMs: round(median(runs.map((r) => r.patchToRolledBackMs))),
    medianPatchToLocksReleasedMs: round(median(runs.map((r) => r.patchToLocksReleasedMs))),
    allRolledBackAndGone: runs.every((r) => r.phase === "RolledBack" && r.configMapsLeft === 0 && r.restored === options.objects),
    kubetxCallsPerMember: perMember(await kubetxCalls(ctx.cluster.controlPlane.auditLog, runs.map((r) => r.window)), options.objects * runs.length),
    apiserverView: view.view(),
    runs,
  };
}

async function rollbackOnce(ctx: BenchContext, options: RollbackOptions, run: number, view: WebhookWindows): Promise<RollbackRun> {
  const namespace = `rollback-${ctx.run}-${run}`;
  const id = `t-rollback-${ctx.run}-${run}`;
  await ctx.cluster.createNamespace(namespace, { ...ENABLED });
  const file = await configMapFile(ctx.cluster.dir, namespace, options.objects, {
    "kubetx.io/transaction": id, "kubetx.io/expected-members": String(options.objects + 1),
  });
  const applied = await ctx.cluster.kubectl(["apply", "-f", file]);
  if (applied.code !== 0) throw new Error(`bench: kubectl apply for the rollback run failed: ${applied.stderr.slice(0, 2000)}`);
  // The resolver has looked at it and counted every member: it is really open and waiting for the 101st.
  await openWith(ctx, id, options.objects);
  const { patched, phase, at, releasedAt, window } = await view.around(async () => {
    const wallStart = Date.now();
    const patched = performance.now();
    await ctx.cluster.alice.mergePatch(transactionPath(id), { spec: { clientState: "Failed", clientMessage: "bench: simulated failure of the rest of the apply" } });
    const [phase, at] = await ctx.phases.reached(id, ["RolledBack", "Failed"], RESOLVE_TIMEOUT_MS);
    const releasedAt = await locksReleased(ctx, id);
    return { patched, phase, at, releasedAt, window: { start: wallStart, end: Date.now() } };
  });
  const left = await configMapsLeft(ctx, namespace);
  const status = ctx.phases.seen.get(id)?.last?.status ?? {};
  const rollingBackAt = ctx.phases.seen.get(id)?.phases.get("RollingBack") ?? Number.NaN;
  return {
    run, transaction: id, phase, reason: status.reason ?? "",
    patchToRollingBackMs: round(rollingBackAt - patched),
    patchToRolledBackMs: round(at - patched),
    patchToLocksReleasedMs: round(releasedAt - patched),
    configMapsLeft: left,
    restored: (status.members ?? []).filter((m) => m.outcome === "Restored").length,
    window,
  };
}

function openWith(ctx: BenchContext, id: string, members: number): Promise<true> {
  return ctx.phases.until(`${id} open with ${members} members`, () => {
    const status = ctx.phases.seen.get(id)?.last?.status;
    return status?.phase === "Open" && status.memberCount === members ? true : undefined;
  }, RESOLVE_TIMEOUT_MS);
}

async function configMapsLeft(ctx: BenchContext, namespace: string): Promise<number> {
  const list = await ctx.cluster.admin.get<ObjectList<KubeObject>>(`/api/v1/namespaces/${namespace}/configmaps`);
  return list.items.filter((cm) => cm.metadata?.name?.startsWith("app-config-")).length;
}

/**
 * performance.now() when no Lease or Secret of the transaction was left (polled), NaN if never. The closing mark
 * (role `closing`) is not a lock: it stays some minutes after the resolution by design (gc.ts CLOSING_MARK_KEEP_MS).
 */
async function locksReleased(ctx: BenchContext, id: string): Promise<number> {
  const query = { labelSelector: `${LABEL_TRANSACTION}=${id},${LABEL_ROLE}!=${CLOSING_ROLE}` };
  for (let i = 0; i < RELEASE_POLLS; i += 1) {
    const leases = await ctx.cluster.admin.get<ObjectList<KubeObject>>("/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases", { query });
    const secrets = await ctx.cluster.admin.get<ObjectList<KubeObject>>("/api/v1/namespaces/kubetx-system/secrets", { query });
    if (leases.items.length === 0 && secrets.items.length === 0) return performance.now();
    await sleep(50);
  }
  return Number.NaN;
}
