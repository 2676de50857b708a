/**
 * `kubectl tx apply`: read, annotate, open a Transaction, run kubectl, report
 * how kubectl ended, wait for kubetx's verdict. I/O comes in through
 * ApplyDeps so the whole story runs in unit tests against fakes.
 */
import { randomBytes } from "node:crypto";
import type { KubeClient } from "../../kube/client.ts";
import type { RetryOptions } from "../../kube/retry.ts";
import type { KubeObject } from "../../kube/types.ts";
import type { PrepareSpec, Transaction } from "../../transactions/model.ts";
import { CLIENT_HEARTBEAT_PERIOD_MS, kubectlNameFor, transactionPath } from "../../transactions/model.ts";
import type { ApplyOptions } from "./args.ts";
import { DEFAULT_TIMEOUT_SECONDS } from "./duration.ts";
import { EXIT, TxError } from "./errors.ts";
import { readSources } from "./files.ts";
import type { RunningHeartbeat } from "./heartbeat.ts";
import { startHeartbeat } from "./heartbeat.ts";
import type { KubectlResult, KubectlRun } from "./kubectl.ts";
import { applyCopyArgs, applyOriginalArgs } from "./kubectl.ts";
import { annotate, parseManifests, renderManifest } from "./manifests.ts";
import { clientStatePatch, clusterScopedLines, formatOutcome, isUncovered, outsideLines, targetNamespaces, uncoveredLines } from "./outcome.ts";
import { createRecord, renewFailure, renewRecord, reportClientState, whoAmIWithGroups } from "./record.ts";
import { awaitPrepared, prepareSpec } from "./prepare.ts";
import type { Clock } from "./wait.ts";
import { waitForOutcome } from "./wait.ts";

export interface ApplyDeps {
  /** A client for the user's kubeconfig and context, as kubectl would pick them. */
  readonly connect: (kubeconfig: string | undefined, context: string | undefined) => Promise<KubeClient>;
  readonly findKubectl: () => Promise<string>;
  /**
   * kubectl.ts runKubectl: with `input`, kubectl reads its objects from stdin once that resolves, and is killed unread if it resolves undefined;
   * `argv0` is the name it runs under (kubectlNameFor).
   */
  readonly runKubectl: (command: string, args: readonly string[], how?: KubectlRun) => Promise<KubectlResult>;
  /** `kubectl kustomize DIR`'s output, for -k (kubectl.ts renderKustomization). */
  readonly renderKustomization: (command: string, dir: string) => Promise<string>;
  readonly readStdin: () => Promise<string>;
  readonly newId: () => string;
  readonly clock: Clock;
  /** The outcome (stdout). */
  readonly say: (line: string) => void;
  /** Progress and warnings (stderr). */
  readonly warn: (line: string) => void;
  /** How often the heartbeat renews the transaction while kubectl runs; CLIENT_HEARTBEAT_PERIOD_MS unless a test says otherwise. */
  readonly heartbeatPeriodMs?: number;
  /** How long an answer of a control plane in motion is asked again (record.ts SETTLING unless a test says otherwise). */
  readonly settling?: RetryOptions;
}

/** `t-` and 8 random lowercase hex digits (see isValidTransactionId). */
export function newTransactionId(random: (bytes: number) => Buffer = randomBytes): string {
  return `t-${random(4).toString("hex")}`;
}

export async function runApply(options: ApplyOptions, deps: ApplyDeps): Promise<number> {
  const command = await deps.findKubectl();
  if (options.dryRun === "client") return (await deps.runKubectl(command, applyOriginalArgs(options))).code;
  // kubectl starts first and reads the annotated copy on its stdin once it
  // is given it: its start (about 0.1 s of a core) overlaps reading the
  // files and opening the transaction. Until it is fed it can write
  // nothing, and whatever ends kubectl tx first kills it unread. It runs
  // under a name that carries the transaction, so the apiserver's audit
  // events of its requests name it (kubectlNameFor).
  const id = deps.newId();
  const kubectl = startKubectl(command, { options, deps, id });
  try {
    const objects = await loadObjects(options, deps, command);
    const annotated = annotate(objects, id);
    annotated.warnings.forEach((line) => deps.warn(line));
    // The annotated copy goes to kubectl's stdin, never to a file: it may hold Secrets.
    const manifest = renderManifest(annotated.objects);
    if (options.dryRun === "server") {
      kubectl.feed(manifest);
      return (await kubectl.done).code;
    }
    const client = await connect(options, deps);
    try {
      return await transact(client, { id, objects, manifest, options, deps, kubectl });
    } finally {
      client.close();
    }
  } finally {
    kubectl.feed(undefined);
    await kubectl.done;
  }
}

/** kubectl, started before it has its objects. */
interface StartedKubectl {
  /** Gives kubectl the annotated copy; undefined kills it unread. Only the first call counts. */
  feed(manifest: string | undefined): void;
  /** How kubectl ended, once it has. */
  ended(): KubectlResult | undefined;
  readonly done: Promise<KubectlResult>;
}

function startKubectl(command: string, run: { options: ApplyOptions; deps: ApplyDeps; id: string }): StartedKubectl {
  let feed: (manifest: string | undefined) => void = () => undefined;
  const input = new Promise<string | undefined>((resolve) => (feed = resolve));
  let result: KubectlResult | undefined;
  const done = run.deps.runKubectl(command, applyCopyArgs(run.options), { input, argv0: kubectlNameFor(run.id) }).then((r) => (result = r));
  return { feed, ended: () => result, done };
}

async function loadObjects(options: ApplyOptions, deps: ApplyDeps, kubectl: string): Promise<KubeObject[]> {
  const { kustomize } = options;
  const sources = kustomize !== undefined
    ? [{ name: `${kustomize} (kustomize)`, text: await deps.renderKustomization(kubectl, kustomize) }]
    : await readSources(options.files, options.recursive, deps.readStdin);
  const objects = sources.flatMap(parseManifests);
  if (objects.length === 0) throw new TxError(`kubectl tx: no objects in ${kustomize !== undefined ? `the kustomization ${kustomize}` : options.files.join(", ")}; nothing to apply`);
  return objects;
}

async function connect(options: ApplyOptions, deps: ApplyDeps): Promise<KubeClient> {
  try {
    return await deps.connect(options.kubeconfig, options.context);
  } catch (error) {
    const message = (error as Error).message.replace(/^kubetx: /, "");
    throw new TxError(`kubectl tx: cannot use the kubeconfig: ${message}`, undefined, { cause: error });
  }
}

interface Transact {
  readonly id: string;
  readonly objects: readonly KubeObject[];
  /** The annotated copy kubectl applies. */
  readonly manifest: string;
  readonly options: ApplyOptions;
  readonly deps: ApplyDeps;
  readonly kubectl: StartedKubectl;
}

async function transact(client: KubeClient, t: Transact): Promise<number> {
  const { id, options, deps } = t;
  // 1. The record first, so kubetx knows before the first member arrives that this
  //    transaction closes when kubectl tx says kubectl has finished.
  const user = await whoAmIWithGroups(client, deps.settling);
  const prepare = preparing(client, t, user.groups);
  const early = t.kubectl.ended();
  if (early) return endedUnfed(early, deps);
  await createRecord(client, {
    id, user: user.username, ...(options.timeoutSeconds !== undefined ? { timeoutSeconds: options.timeoutSeconds } : {}), ...(prepare ? { prepare } : {}),
  }, deps.settling);
  const count = t.objects.length;
  deps.warn(`kubectl tx: applying ${count} object${count === 1 ? "" : "s"} as transaction ${id}`);
  // 2. kubetx locks what kubectl will create (the prepare); then kubectl
  //    writes the members, and kubetx locks and journals the rest. kubectl
  //    gets its objects only once kubetx has prepared: a refused prepare
  //    kills it before it has read anything. The heartbeat keeps the
  //    transaction open while kubectl runs, however long; should kubectl tx
  //    die, kubetx rolls back within seconds.
  const heartbeat = keepAlive(client, id, deps);
  try {
    await applyPrepared(client, t, prepare !== undefined);
  } finally {
    heartbeat.stop();
  }
  // 3. The verdict.
  const resolved = await waitForOutcome(client, { id, timeoutSeconds: options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS, clock: deps.clock, warn: deps.warn });
  return report(client, resolved, t);
}

/** Feeds kubectl once kubetx has prepared the transaction (at once when not asked to), and tells kubetx how kubectl ended. */
async function applyPrepared(client: KubeClient, t: Transact, prepare: boolean): Promise<void> {
  const { id, deps } = t;
  const ready = prepare ? awaitPrepared(client, id, deps.clock) : Promise.resolve(undefined);
  void ready.then((r) => t.kubectl.feed(r?.kind === "refused" ? undefined : t.manifest), () => t.kubectl.feed(undefined));
  const kubectl = t.kubectl.done;
  // A kubectl that ends before it is fed (Ctrl-C, an error of its own) wrote nothing: its end is reported at once.
  const first = await Promise.race([ready.then((p) => ({ prepared: p })), kubectl.then((result) => ({ ended: result }))]);
  const prepared = "prepared" in first ? first.prepared : undefined;
  if (prepared?.kind === "unprepared") deps.warn(`kubectl tx: running kubectl unprepared (${prepared.why}); each write locks as it arrives`);
  if (prepared?.kind === "refused") {
    deps.warn(`kubectl tx: kubetx could not prepare ${id}: ${prepared.failure}; kubectl was stopped before it read the objects`);
    await kubectl;
  } else await reportKubectl(client, t, "ended" in first ? first.ended : await kubectl);
}

/** kubectl ended before kubectl tx opened a transaction (Ctrl-C, an error of kubectl's own): it read nothing, so nothing was applied. */
function endedUnfed(result: KubectlResult, deps: ApplyDeps): number {
  const how = result.failure ?? `kubectl exited with code ${result.code}`;
  deps.warn(`kubectl tx: ${how} before it was given the objects; nothing was applied and no transaction was opened`);
  return result.code === 0 ? EXIT.failed : result.code;
}

/**
 * What kubetx is asked to prepare, unless --no-prepare. Not with -l: kubectl
 * then applies only the objects its selector matches, and a prepared object
 * kubectl never creates would count as a write that did not persist.
 */
function preparing(client: KubeClient, t: Transact, groups: readonly string[]): PrepareSpec | undefined {
  if (t.options.prepare === false || t.options.selector !== undefined) return undefined;
  return prepareSpec(t.objects, t.options.namespace ?? client.namespace ?? "default", groups);
}

/** Tells kubetx how kubectl ended: closing the transaction is kubetx's job, and it needs to know kubectl is done. */
async function reportKubectl(client: KubeClient, t: Transact, result: KubectlResult): Promise<void> {
  if (result.failure) t.deps.warn(`kubectl tx: ${result.failure}; asking kubetx to roll back ${t.id}`);
  await reportClientState(client, t.id, clientStatePatch(result), t.deps.settling);
}

/** Renews the transaction every period while kubectl runs; a renewal that fails is reported once and tried again next period. */
function keepAlive(client: KubeClient, id: string, deps: ApplyDeps): RunningHeartbeat {
  const periodMs = deps.heartbeatPeriodMs ?? CLIENT_HEARTBEAT_PERIOD_MS;
  return startHeartbeat({
    periodMs,
    beat: (value) => renewRecord(client, id, value),
    onFailure: (error) => deps.warn(renewFailure(id, error, periodMs)),
    onRecovery: () => deps.warn(`kubectl tx: renewed transaction ${id} again`),
  });
}

/**
 * Prints the outcome, and warns of namespaces whose objects did not join.
 * A transaction no write joined (no policy covers the objects) is no
 * transaction at all: its record goes, and the user learns why and how a
 * namespace is opted in.
 */
async function report(client: KubeClient, resolved: Transaction, t: Transact): Promise<number> {
  if (!isUncovered(resolved)) {
    const outcome = formatOutcome(resolved);
    outcome.lines.forEach((line) => t.deps.say(line));
    outsideLines(resolved, targetNamespaces(t.objects, t.options.namespace)).forEach((line) => t.deps.warn(line));
    clusterScopedLines(t.objects, resolved).forEach((line) => t.deps.warn(line));
    return outcome.exitCode;
  }
  await client.delete(transactionPath(t.id)).catch((error: unknown) => {
    t.deps.warn(`kubectl tx: could not delete the empty record of transaction ${t.id} (${(error as Error).message})`);
  });
  uncoveredLines(targetNamespaces(t.objects, t.options.namespace)).forEach((line) => t.deps.say(line));
  return EXIT.ok;
}
