/**
 * The plan of one trial, drawn from (seed, trial) alone: which objects
 * exist, which clients apply what in which mode, which apply carries an
 * invalid member, and which faults strike when. Pure.
 */
import type { ClientPlan, FaultPlan, Invalid, Mode, ObjectPlan, OpPlan, TrialPlan, User, WritePlan } from "./history.ts";
import { USERS, objectKey } from "./history.ts";
import type { Random } from "./random.ts";
import { trialRandom } from "./random.ts";
import { AUDIT_SINK_DELAY_MS, LOCK_TTL_SECONDS, MAX_OPEN_SECONDS, QUIET_WINDOW_SECONDS } from "./timing.ts";

/** ConfigMaps per namespace: few enough that clients' sets overlap often. */
const CONFIGMAPS_PER_NAMESPACE = [5, 3] as const;
/** A Deployment in the first namespace, so controllers write there too. */
export const DEPLOYMENT_NAME = "web";
/** Share of ConfigMaps that exist before the trial (the rest are created by it). */
const SEEDED_SHARE = 0.6;
/** Concurrent clients, each its own user, so transparent grouping by requester never merges two clients. */
const CLIENTS = { min: 3, max: 4 } as const;
const OPS_PER_CLIENT = { min: 2, max: 3 } as const;
const OBJECTS_PER_OP = { min: 1, max: 3 } as const;
const MODE_WEIGHTS: Readonly<Record<Mode, number>> = { transparent: 5, explicit: 3, plugin: 2 };
/** Share of transparent applies followed by a delete of an object the client may delete. */
const DELETE_SHARE = 0.35;
/** Share of applies with a member the apiserver refuses. */
const INVALID_SHARE = 0.2;
/** Clients start within this of each other, so they race. */
const START_SPREAD_MS = 1_500;
/** Think time between one client's applies: sometimes within a quiet window (merging), mostly not. */
const PAUSE_MS = { min: 200, max: 3_000 } as const;
/** Faults strike within this window after the clients start; applies run for about as long. */
const FAULT_WINDOW_MS = { min: 300, max: 8_000 } as const;
const FAULTS_PER_TRIAL = { min: 1, max: 3 } as const;
const FAULT_WEIGHTS: Readonly<Record<FaultPlan["kind"], number>> = {
  sigkill: 5, sigstop: 5, "apiserver-restart": 2, "slow-webhook": 4, "deny-webhook": 3, "throttle-webhook": 2,
};
/** A killed replica restarts after this (a container restart). */
const DOWN_MS = { min: 500, max: 3_000 } as const;
/** Pauses up to twice the campaign's lock TTL (3 s): about half outlive it (the fencing case). */
const PAUSE_STOP_MS = { min: 1_000, max: 6_000 } as const;
/** Slow third-party answers stay below that webhook's 10 s timeout, and reach past kubetx's quiet window (2 s). */
const SLOW_DELAY_MS = { min: 2_000, max: 4_000 } as const;
const WEBHOOK_FAULT_MS = { min: 2_000, max: 6_000 } as const;
const DENY_PROBABILITY = 0.5;
/** Share of transparent applies made as another tool (its own field manager), so the user's next apply may continue the last. */
const OTHER_TOOL_SHARE = 0.35;
export const OTHER_TOOL = "chaos-script";
/** Share of trials whose apiserver reports to kubetx's audit sink. */
const SINK_SHARE = 0.7;

export interface PlanOptions {
  readonly seed: number;
  readonly trial: number;
  readonly replicas: number;
}

export function planTrial(options: PlanOptions): TrialPlan {
  const random = trialRandom(options.seed, options.trial);
  const namespaces = CONFIGMAPS_PER_NAMESPACE.map((_, i) => `chaos-${options.seed}-${options.trial}-${String.fromCharCode(97 + i)}`);
  const clientNames = Array.from({ length: random.int(CLIENTS.min, CLIENTS.max) }, (_, i) => `c${i + 1}`);
  const objects = planObjects(random, namespaces, clientNames);
  const planned = clientNames.map((name, i) => planClient(random, { name, user: USERS[i] as User, objects, prefix: `s${options.seed}-t${options.trial}` }));
  const clients = withOtherTools(planned, toolRandom(options.seed, options.trial));
  return {
    seed: options.seed,
    trial: options.trial,
    timing: { quietWindowMs: QUIET_WINDOW_SECONDS * 1000, lockTtlMs: LOCK_TTL_SECONDS * 1000, maxOpenMs: MAX_OPEN_SECONDS * 1000, auditSinkDelayMs: AUDIT_SINK_DELAY_MS },
    namespaces,
    sink: random.chance(SINK_SHARE),
    replicas: options.replicas,
    objects,
    clients,
    faults: planFaults(random, options.replicas),
  };
}

function planObjects(random: Random, namespaces: readonly string[], clients: readonly string[]): ObjectPlan[] {
  const objects: ObjectPlan[] = [];
  namespaces.forEach((namespace, n) => {
    for (let i = 0; i < (CONFIGMAPS_PER_NAMESPACE[n] ?? 0); i += 1) {
      const name = `cm-${i}`;
      objects.push({ key: objectKey("ConfigMap", namespace, name), kind: "ConfigMap", namespace, name, seeded: random.chance(SEEDED_SHARE), deletableBy: random.pick(clients) });
    }
  });
  const first = namespaces[0] as string;
  objects.push({ key: objectKey("Deployment", first, DEPLOYMENT_NAME), kind: "Deployment", namespace: first, name: DEPLOYMENT_NAME, seeded: true });
  return objects;
}

interface ClientContext {
  readonly name: string;
  readonly user: User;
  readonly objects: readonly ObjectPlan[];
  /** Makes tokens unique across the campaign: `s<seed>-t<trial>`. */
  readonly prefix: string;
}

function planClient(random: Random, client: ClientContext): ClientPlan {
  const count = random.int(OPS_PER_CLIENT.min, OPS_PER_CLIENT.max);
  const ops = Array.from({ length: count }, (_, i) => planOp(random, client, i));
  return { name: client.name, user: client.user, ops };
}

function planOp(random: Random, client: ClientContext, index: number): OpPlan {
  const id = `${client.name}o${index + 1}`;
  const mode = random.weighted(MODE_WEIGHTS);
  const applied = random.sample(client.objects, random.int(OBJECTS_PER_OP.min, OBJECTS_PER_OP.max));
  const writes: WritePlan[] = applied.map((o) => ({ object: o.key, action: "apply" }));
  const deletable = client.objects.filter((o) => o.deletableBy === client.name && !applied.includes(o));
  if (mode === "transparent" && deletable.length > 0 && random.chance(DELETE_SHARE)) writes.push({ object: random.pick(deletable).key, action: "delete" });
  const invalid: Invalid | undefined = random.chance(INVALID_SHARE) ? random.pick<Invalid>(["bad-key", "unknown-field"]) : undefined;
  const pauseBeforeMs = index === 0 ? random.int(0, START_SPREAD_MS) : random.int(PAUSE_MS.min, PAUSE_MS.max);
  return {
    id, client: client.name, user: client.user, mode, token: `${client.prefix}-${id}`, writes, pauseBeforeMs,
    ...(invalid ? { invalid, invalidAt: random.int(0, applied.length) } : {}),
    ...(mode === "explicit" ? { txId: `t-x${random.hex(8)}` } : {}),
  };
}

/**
 * Which transparent applies run as another tool. Drawn from a stream of
 * its own, after the rest of the plan, so every other choice of a seed
 * stays what it was before this was added.
 */
function withOtherTools(clients: readonly ClientPlan[], random: Random): ClientPlan[] {
  return clients.map((c) => ({ ...c, ops: c.ops.map((op) => (op.mode === "transparent" && random.chance(OTHER_TOOL_SHARE) ? { ...op, fieldManager: OTHER_TOOL } : op)) }));
}

function toolRandom(seed: number, trial: number): Random {
  return trialRandom(seed ^ 0x5bd1e995, trial);
}

function planFaults(random: Random, replicas: number): FaultPlan[] {
  const count = random.int(FAULTS_PER_TRIAL.min, FAULTS_PER_TRIAL.max);
  const faults: FaultPlan[] = [];
  for (let i = 0; i < count; i += 1) {
    const fault = planFault(random, replicas);
    // One apiserver restart per trial is plenty: each takes seconds on two cores.
    if (fault.kind === "apiserver-restart" && faults.some((f) => f.kind === fault.kind)) continue;
    faults.push(fault);
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

function planFault(random: Random, replicas: number): FaultPlan {
  const atMs = random.int(FAULT_WINDOW_MS.min, FAULT_WINDOW_MS.max);
  const kind = random.weighted(FAULT_WEIGHTS);
  const replica = random.int(1, replicas);
  switch (kind) {
    case "sigkill":
      return { kind, atMs, replica, downMs: random.int(DOWN_MS.min, DOWN_MS.max) };
    case "sigstop":
      return { kind, atMs, replica, pauseMs: random.int(PAUSE_STOP_MS.min, PAUSE_STOP_MS.max) };
    case "apiserver-restart":
      return { kind, atMs };
    case "slow-webhook":
      return { kind, atMs, durationMs: random.int(WEBHOOK_FAULT_MS.min, WEBHOOK_FAULT_MS.max), delayMs: random.int(SLOW_DELAY_MS.min, SLOW_DELAY_MS.max) };
    case "deny-webhook":
    case "throttle-webhook":
      return { kind, atMs, durationMs: random.int(WEBHOOK_FAULT_MS.min, WEBHOOK_FAULT_MS.max), probability: DENY_PROBABILITY };
  }
}

/** `sigstop r1 4.2s @3.1s`: how a trial line names a fault. */
export function describeFault(fault: FaultPlan): string {
  const at = `@${(fault.atMs / 1000).toFixed(1)}s`;
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;
  switch (fault.kind) {
    case "sigkill":
      return `sigkill r${fault.replica} ${at} (down ${s(fault.downMs)})`;
    case "sigstop":
      return `sigstop r${fault.replica} ${s(fault.pauseMs)} ${at}`;
    case "apiserver-restart":
      return `apiserver restart ${at}`;
    case "slow-webhook":
      return `slow webhook ${s(fault.delayMs)} for ${s(fault.durationMs)} ${at}`;
    case "deny-webhook":
      return `denying webhook for ${s(fault.durationMs)} ${at}`;
    case "throttle-webhook":
      return `throttling webhook for ${s(fault.durationMs)} ${at}`;
  }
}
