/**
 * Real bodies to fuzz from: the AdmissionReviews the apiserver sent kubetx
 * for a few ordinary applies (creates, updates, deletes, an explicit
 * transaction, a rejected write, a dry run), and the audit events the same
 * requests produced, from the apiserver's audit log (the events its audit
 * webhook backend sends the sink).
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { AdmissionRequest } from "../../src/admission/review.ts";
import type { KubeClient, KubeObject, ObjectList } from "../../src/kube/index.ts";
import { TERMINAL_PHASES, transactionPath } from "../../src/transactions/model.ts";
import type { Transaction } from "../../src/transactions/model.ts";
import type { Seeds } from "./campaign.ts";
import type { Json } from "./mutate.ts";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The engine's onReview hook for seeding: it keeps what the apiserver sent
 * until `stop()`, and nothing after, since the campaign's own cases (some
 * of them megabytes) would otherwise pile up here and look like a leak.
 */
export class ReviewRecorder {
  private kept: { readonly path: string; readonly request: AdmissionRequest }[] = [];
  private recording = true;

  readonly onReview = (path: string, request: AdmissionRequest): void => {
    if (this.recording) this.kept.push({ path, request });
  };

  get reviews(): readonly { readonly path: string; readonly request: AdmissionRequest }[] {
    return this.kept;
  }

  /** Stops recording and forgets what was kept (the seeds hold their own copies). */
  stop(): void {
    this.recording = false;
    this.kept = [];
  }
}

export interface SeedTraffic {
  /** The real kubectl, as alice, with `input` on stdin. */
  readonly kubectlAsAlice: (args: readonly string[], input?: string) => Promise<CommandResult>;
  readonly admin: KubeClient;
  /** An opted-in namespace the applies go to. */
  readonly namespace: string;
  /** A namespace no policy covers: the audit events are moved there, so a fuzzed rejection fails nobody's transaction. */
  readonly plainNamespace: string;
  /** Filled by the engine's onReview hook while the applies run; stopped once the seeds are taken. */
  readonly recorder: ReviewRecorder;
  readonly auditLog: string;
}

/** Long enough for a transparent transaction's quiet window and its resolution on a busy machine. */
const SETTLE_TIMEOUT_MS = 60_000;
/** Events per seed EventList: single ones and the apiserver's small batches. */
const EVENTS_PER_LIST = [1, 3, 10];

function manifests(ns: string): string[] {
  const cm = (name: string, data: Record<string, string>, annotations: Record<string, string> = {}): string =>
    JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns, annotations }, data });
  const deployment = JSON.stringify({
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: ns, labels: { app: "web" } },
    spec: { replicas: 2, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "nginx:1.27" }] } } },
  });
  const secret = JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "db", namespace: ns }, stringData: { password: "fuzz-seed" } });
  const explicit = { "kubetx.io/transaction": "t-fuzzseed1", "kubetx.io/expected-members": "2" };
  return [
    [cm("settings", { color: "blue" }), deployment, secret].join("\n"),
    cm("settings", { color: "green", size: "l" }),
    [cm("explicit-a", { v: "1" }, explicit), cm("explicit-b", { v: "1" }, explicit)].join("\n"),
    cm("invalid", { "bad key": "x" }),
  ];
}

/** Runs the applies, waits until their transactions are resolved, and builds the seeds. */
export async function captureSeeds(traffic: SeedTraffic): Promise<Seeds> {
  for (const input of manifests(traffic.namespace)) await traffic.kubectlAsAlice(["apply", "-f", "-"], input);
  await traffic.kubectlAsAlice(["apply", "--dry-run=server", "-f", "-"], manifests(traffic.namespace)[1]);
  await traffic.kubectlAsAlice(["-n", traffic.namespace, "delete", "configmap", "explicit-a"]);
  await settle(traffic.admin);
  const admission = traffic.recorder.reviews.map(({ request }) => ({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request }) as unknown as Json);
  traffic.recorder.stop();
  const audit = eventLists(await auditEvents(traffic.auditLog, traffic.namespace, traffic.plainNamespace));
  if (admission.length === 0 || audit.length === 0) throw new Error(`fuzz: no seeds captured (${admission.length} reviews, ${audit.length} event lists)`);
  return { admission, audit };
}

async function settle(admin: KubeClient): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const list = await admin.get<ObjectList<Transaction>>(transactionPath());
    if (list.items.every((tx) => TERMINAL_PHASES.has(tx.status?.phase ?? "Open"))) return;
    if (Date.now() > deadline) throw new Error("fuzz: the seed transactions did not resolve in time");
    await sleep(250);
  }
}

/** The write events of `namespace` from the audit log, moved to `plain`. */
async function auditEvents(file: string, namespace: string, plain: string): Promise<Json[]> {
  const events: Json[] = [];
  for (const line of (await readFile(file, "utf8")).split("\n")) {
    if (!line.includes(`"namespace":"${namespace}"`)) continue;
    const event = JSON.parse(line) as KubeObject & { stage?: string; verb?: string; objectRef?: { namespace?: string } };
    if (event.stage !== "ResponseComplete" || !["create", "update", "patch", "delete"].includes(event.verb ?? "")) continue;
    events.push({ ...event, objectRef: { ...event.objectRef, namespace: plain } } as unknown as Json);
  }
  return events;
}

function eventLists(events: readonly Json[]): Json[] {
  const lists: Json[] = [];
  for (const size of EVENTS_PER_LIST) {
    for (let at = 0; at < events.length; at += size) lists.push({ apiVersion: "audit.k8s.io/v1", kind: "EventList", items: events.slice(at, at + size) });
  }
  return lists;
}
