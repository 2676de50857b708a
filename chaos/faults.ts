/**
 * Carries out a trial's fault schedule at its instants, and records what
 * really happened when. Every fault ends by itself: a killed replica
 * restarts, a paused one resumes, the apiserver is restarted by the control
 * plane, the third-party webhook goes back to allowing.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { FaultPlan, FaultRecord } from "./history.ts";
import type { Replica } from "./replicas.ts";
import type { ThirdPartyMode, ThirdPartyWebhook } from "./thirdparty.ts";

/** A killed pod's endpoint turns not-ready after this (a readiness probe's period, made short). */
const PROBE_DELAY_MS = 1_000;

export interface FaultTargets {
  readonly replicas: readonly Replica[];
  readonly thirdParty: ThirdPartyWebhook;
  setEndpointReady(replica: Replica, ready: boolean): Promise<void>;
  apiserverPid(): number | undefined;
  waitApiserverReady(): Promise<void>;
}

/** Runs every fault at `start + atMs`; resolves when all have ended. */
export function runFaults(faults: readonly FaultPlan[], targets: FaultTargets, start: number): Promise<FaultRecord[]> {
  return Promise.all(faults.map(async (fault) => {
    await sleep(Math.max(0, start + fault.atMs - Date.now()));
    return strike(fault, targets);
  }));
}

async function strike(fault: FaultPlan, targets: FaultTargets): Promise<FaultRecord> {
  const startedAt = Date.now();
  switch (fault.kind) {
    case "sigkill":
      return killReplica(fault, targets, startedAt);
    case "sigstop":
      return pauseReplica(fault, targets, startedAt);
    case "apiserver-restart":
      return restartApiserver(targets, startedAt);
    case "slow-webhook":
      return thirdParty(targets.thirdParty, { kind: "slow", delayMs: fault.delayMs }, fault, startedAt);
    case "deny-webhook":
      return thirdParty(targets.thirdParty, { kind: "deny", probability: fault.probability }, fault, startedAt);
    case "throttle-webhook":
      return thirdParty(targets.thirdParty, { kind: "throttle", probability: fault.probability }, fault, startedAt);
  }
}

function replicaOf(targets: FaultTargets, index: number): Replica {
  const replica = targets.replicas[index - 1];
  if (!replica) throw new Error(`chaos: the plan names replica r${index}, but only ${targets.replicas.length} run`);
  return replica;
}

async function killReplica(fault: Extract<FaultPlan, { kind: "sigkill" }>, targets: FaultTargets, startedAt: number): Promise<FaultRecord> {
  const replica = replicaOf(targets, fault.replica);
  if (replica.state !== "running") return { kind: fault.kind, replica: fault.replica, startedAt, endedAt: Date.now(), skipped: `r${fault.replica} was ${replica.state}` };
  replica.kill();
  // Handled at once: an apiserver restarting meanwhile refuses the write, and a rejection left for later ended a campaign (seed 4250, trial 252).
  const notReady = sleep(PROBE_DELAY_MS).then(() => (replica.state === "down" ? setEndpoint(targets, replica, false) : undefined)).catch(() => undefined);
  await sleep(fault.downMs);
  await replica.start(replica.sink);
  await notReady;
  await setEndpoint(targets, replica, true);
  return { kind: fault.kind, replica: fault.replica, startedAt, endedAt: Date.now() };
}

/** Marks a replica's endpoint, waiting out an apiserver restart in between (as the EndpointSlice controller would). */
async function setEndpoint(targets: FaultTargets, replica: Replica, ready: boolean): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await targets.setEndpointReady(replica, ready);
    } catch (error) {
      if (attempt >= ENDPOINT_ATTEMPTS) throw error;
      await targets.waitApiserverReady();
    }
  }
}

/** One write, and one more after each of two apiserver restarts. */
const ENDPOINT_ATTEMPTS = 3;

async function pauseReplica(fault: Extract<FaultPlan, { kind: "sigstop" }>, targets: FaultTargets, startedAt: number): Promise<FaultRecord> {
  const replica = replicaOf(targets, fault.replica);
  if (replica.state !== "running") return { kind: fault.kind, replica: fault.replica, startedAt, endedAt: Date.now(), skipped: `r${fault.replica} was ${replica.state}` };
  replica.pause();
  await sleep(fault.pauseMs);
  replica.resume();
  return { kind: fault.kind, replica: fault.replica, startedAt, endedAt: Date.now() };
}

async function restartApiserver(targets: FaultTargets, startedAt: number): Promise<FaultRecord> {
  const pid = targets.apiserverPid();
  if (pid === undefined) return { kind: "apiserver-restart", startedAt, endedAt: Date.now(), skipped: "no apiserver process" };
  // The control plane starts it again when it exits (restartApiserver), as a kubelet restarts a static pod.
  process.kill(pid, "SIGKILL");
  await sleep(APISERVER_EXIT_MS);
  await targets.waitApiserverReady();
  return { kind: "apiserver-restart", startedAt, endedAt: Date.now() };
}

/** Long enough for the killed apiserver's port to close, so readiness is the new process's. */
const APISERVER_EXIT_MS = 500;

async function thirdParty(webhook: ThirdPartyWebhook, mode: ThirdPartyMode, fault: { kind: FaultPlan["kind"]; durationMs: number }, startedAt: number): Promise<FaultRecord> {
  webhook.mode = mode;
  await sleep(fault.durationMs);
  // Overlapping webhook faults: the later one decides, and only the one still in force ends it.
  if (webhook.mode === mode) webhook.mode = { kind: "pass" };
  return { kind: fault.kind, startedAt, endedAt: Date.now() };
}
