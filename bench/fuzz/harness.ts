/**
 * One fuzz run against a kubetx engine on a real cluster, shared by
 * `npm run fuzz` (its own control plane) and the integration test (the
 * tests' one): seeds from real applies, a clean slate, the campaign, and
 * the checks around it: nothing of kubetx's (Leases, Secrets in its
 * namespace, Transaction records) written or changed while it ran, memory
 * flat, and the engine still admitting real writes afterwards.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient, KubeObject, ObjectList } from "../../src/kube/index.ts";
import { transactionPath } from "../../src/transactions/model.ts";
import { LABEL_ROLE } from "../../src/kube/vocabulary.ts";
import { PULSE_ROLE } from "../../src/locks/pulse.ts";
import type { CampaignResult } from "./campaign.ts";
import { memoryFlat, runCampaign } from "./campaign.ts";
import type { CommandResult, ReviewRecorder } from "./seeds.ts";
import { captureSeeds } from "./seeds.ts";

export interface FuzzTarget {
  readonly port: number;
  readonly admin: KubeClient;
  readonly kubectlAsAlice: (args: readonly string[], input?: string) => Promise<CommandResult>;
  /** Opted in (seeds are applied there) and not (audit seeds are moved there). */
  readonly namespace: string;
  readonly plainNamespace: string;
  readonly auditLog: string;
  /** The CA of kubetx's serving certificate, and the apiserver's client certificate. */
  readonly caFile: string;
  readonly apiserverClient: { readonly certFile: string; readonly keyFile: string };
  /** The engine's onReview hook: what the apiserver sent while the seeds were made. */
  readonly recorder: ReviewRecorder;
  register(): Promise<void>;
  unregister(): Promise<void>;
}

export interface FuzzOptions {
  readonly count: number;
  readonly seed: number;
  readonly unauthenticatedShare: number;
  readonly concurrency: number;
  readonly sampleEvery: number;
  /** How far the heap after GC may end above its warmed-up level. */
  readonly memorySlackMiB: number;
  readonly onProgress?: (line: string) => void;
}

export interface FuzzReport extends CampaignResult {
  readonly seedCounts: { readonly admissionReviews: number; readonly eventLists: number };
  /** kubetx objects that appeared or changed while the campaign ran: none is the pass. */
  readonly writes: readonly string[];
  readonly memoryCheck: ReturnType<typeof memoryFlat> & { readonly slackMiB: number };
  /** A real apply went through the engine and committed after the campaign. */
  readonly stillServes: boolean;
  readonly passed: boolean;
}

const KUBETX_NS = "/api/v1/namespaces/kubetx-system";
/** The resolver collects a deleted record's leftovers within a few GC passes. */
const CLEAN_TIMEOUT_MS = 60_000;

/** kind/name -> resourceVersion of everything kubetx writes: Leases and Secrets in its namespace, and Transaction records. */
async function kubetxState(admin: KubeClient): Promise<Map<string, string>> {
  const [leases, secrets, records] = await Promise.all([
    admin.get<ObjectList>(`/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases`),
    admin.get<ObjectList>(`${KUBETX_NS}/secrets`),
    admin.get<ObjectList>(transactionPath()),
  ]);
  const entries = (kind: string, items: readonly KubeObject[]): [string, string][] => items
    // A replica's pulse (locks/pulse.ts) is rewritten every second whatever it is sent: not a write for one.
    .filter((o) => o.metadata?.labels?.[LABEL_ROLE] !== PULSE_ROLE)
    .map((o) => [`${kind}/${o.metadata?.name ?? ""}`, o.metadata?.resourceVersion ?? ""]);
  return new Map([...entries("lease", leases.items), ...entries("secret", secrets.items), ...entries("transaction", records.items)]);
}

/** Deletes every record and waits until the resolver has collected what they held. */
async function cleanSlate(admin: KubeClient): Promise<void> {
  const records = await admin.get<ObjectList>(transactionPath());
  for (const record of records.items) await admin.delete(transactionPath(record.metadata?.name ?? "")).catch(() => undefined);
  const deadline = Date.now() + CLEAN_TIMEOUT_MS;
  for (;;) {
    const state = await kubetxState(admin);
    const held = [...state.keys()].filter((k) => /^lease\/(lk|hb)-|^secret\/(jr|jp|jc)-|^transaction\//.test(k));
    if (held.length === 0) return;
    if (Date.now() > deadline) throw new Error(`fuzz: kubetx kept ${held.join(", ")} after its records were deleted`);
    await sleep(250);
  }
}

/** A real apply through the engine after the campaign: it must join a transaction that commits. */
async function stillServes(target: FuzzTarget): Promise<boolean> {
  await target.register();
  try {
    const body = JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "after-fuzz", namespace: target.namespace, annotations: { "kubetx.io/transaction": "t-afterfuzz", "kubetx.io/expected-members": "1" } }, data: { v: "1" } });
    const applied = await target.kubectlAsAlice(["apply", "-f", "-"], body);
    if (!applied.stderr.includes("kubetx: joined transaction t-afterfuzz")) return false;
    for (let i = 0; i < 120; i += 1) {
      const tx = await target.admin.get<KubeObject & { status?: { phase?: string } }>(transactionPath("t-afterfuzz")).catch(() => undefined);
      if (tx?.status?.phase === "Committed") return true;
      await sleep(250);
    }
    return false;
  } finally {
    await target.unregister();
  }
}

export async function fuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzReport> {
  await target.register();
  const seeds = await captureSeeds(target).catch(async (error: unknown) => {
    await target.unregister();
    throw error;
  });
  await target.unregister();
  await cleanSlate(target.admin);
  const before = await kubetxState(target.admin);
  const [ca, cert, key] = await Promise.all([readFile(target.caFile), readFile(target.apiserverClient.certFile), readFile(target.apiserverClient.keyFile)]);
  const result = await runCampaign({ port: target.port, seeds, identity: { cert, key }, ca, ...options });
  const after = await kubetxState(target.admin);
  const writes = [...after].filter(([k, rv]) => before.get(k) !== rv).map(([k]) => k);
  const memoryCheck = { ...memoryFlat(result.memory, options.memorySlackMiB), slackMiB: options.memorySlackMiB };
  const serves = await stillServes(target);
  return {
    ...result, seedCounts: { admissionReviews: seeds.admission.length, eventLists: seeds.audit.length },
    writes, memoryCheck, stillServes: serves, passed: result.problemCount === 0 && writes.length === 0 && memoryCheck.flat && serves,
  };
}
