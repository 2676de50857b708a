/**
 * The vocabulary of one chaos trial, shared by the harness that runs it and
 * the checker that judges it: the plan (what each client meant to do), the
 * history (what each client observed) and the observation (what the cluster
 * showed while and after it ran). Plain data only, so a trial round-trips
 * through JSON into a replay file. Nothing here comes from src/.
 */

export const USERS = ["alice", "bob", "carol", "dave"] as const;
export type User = (typeof USERS)[number];

export type Mode = "transparent" | "explicit" | "plugin";
export type Kind = "ConfigMap" | "Deployment";

/**
 * bad-key: a ConfigMap data key with a space, refused by the object's own
 * validation (after mutating admission, so kubetx's /observe sees it).
 * unknown-field: a misspelt field, refused by strict field validation
 * before any admission webhook (only the audit sink sees it).
 */
export type Invalid = "bad-key" | "unknown-field";

export interface ObjectPlan {
  /** `Kind/namespace/name`, see objectKey. */
  readonly key: string;
  readonly kind: Kind;
  readonly namespace: string;
  readonly name: string;
  /** Created by the admin (exempt) before the trial, with the token SEED_TOKEN. */
  readonly seeded: boolean;
  /** The one client whose transparent applies may delete it (so a delete is attributable by time). */
  readonly deletableBy?: string;
}

export interface WritePlan {
  readonly object: string;
  readonly action: "apply" | "delete";
}

export interface OpPlan {
  /** `c2o1`: client 2, its op 1. */
  readonly id: string;
  readonly client: string;
  readonly user: User;
  readonly mode: Mode;
  /** Written into every object this op applies: data.writer, or the Deployment's pod template annotation. */
  readonly token: string;
  readonly writes: readonly WritePlan[];
  /** An extra member that the apiserver refuses, so the whole apply must not commit. */
  readonly invalid?: Invalid;
  /** Where the invalid member sits among the applied objects (0: first). */
  readonly invalidAt?: number;
  /** Explicit mode: the transaction the objects name. */
  readonly txId?: string;
  /**
   * Transparent mode: kubectl apply's --field-manager, another tool than
   * kubectl's own. Such an apply continues the user's open transaction
   * that holds an object it changes (src/transactions/sessions.ts
   * takesOver) rather than starting one that the lock refuses.
   */
  readonly fieldManager?: string;
  /** Wait before this op starts (after the client's previous op, or the trial's start). */
  readonly pauseBeforeMs: number;
}

export interface ClientPlan {
  readonly name: string;
  readonly user: User;
  readonly ops: readonly OpPlan[];
}

export type FaultPlan =
  | { readonly kind: "sigkill"; readonly atMs: number; readonly replica: number; readonly downMs: number }
  | { readonly kind: "sigstop"; readonly atMs: number; readonly replica: number; readonly pauseMs: number }
  | { readonly kind: "apiserver-restart"; readonly atMs: number }
  | { readonly kind: "slow-webhook"; readonly atMs: number; readonly durationMs: number; readonly delayMs: number }
  | { readonly kind: "deny-webhook"; readonly atMs: number; readonly durationMs: number; readonly probability: number }
  | { readonly kind: "throttle-webhook"; readonly atMs: number; readonly durationMs: number; readonly probability: number };

/** The kubetx timings the trial ran with (chaos/timing.ts). */
export interface TrialTiming {
  readonly quietWindowMs: number;
  readonly lockTtlMs: number;
  readonly maxOpenMs: number;
  readonly auditSinkDelayMs: number;
}

export interface TrialPlan {
  readonly seed: number;
  readonly trial: number;
  readonly timing: TrialTiming;
  readonly namespaces: readonly string[];
  /** The apiserver's audit events reach kubetx in this trial. */
  readonly sink: boolean;
  readonly replicas: number;
  readonly objects: readonly ObjectPlan[];
  readonly clients: readonly ClientPlan[];
  readonly faults: readonly FaultPlan[];
}

/** The value of an object the admin seeded before the trial. */
export const SEED_TOKEN = "seed";
/** Where a ConfigMap carries its writer's token. */
export const CONFIGMAP_TOKEN_KEY = "writer";
/** Where the Deployment carries its writer's token: an annotation of its pod template. */
export const TEMPLATE_TOKEN_ANNOTATION = "chaos.kubetx.io/writer";

export function objectKey(kind: Kind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** One command a client ran, as it saw it. */
export interface CommandRecord {
  readonly argv: readonly string[];
  readonly startedAt: number;
  readonly endedAt: number;
  /** The exit code, or -1 when it was killed for running too long. */
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface OpOutcome {
  readonly op: string;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly commands: readonly CommandRecord[];
}

/** What the faults really did and when (wall clock, ms). */
export interface FaultRecord {
  readonly kind: FaultPlan["kind"];
  readonly replica?: number;
  readonly startedAt: number;
  readonly endedAt: number;
  /** Why it did nothing, when it did nothing (its replica was already down). */
  readonly skipped?: string;
}

/** One state of an object as the watch delivered it. */
export interface Version {
  readonly rv: string;
  /** When the recorder received it (wall clock, ms). */
  readonly at: number;
  readonly exists: boolean;
  readonly uid?: string;
  readonly token?: string;
}

export interface ObjectHistory {
  readonly key: string;
  /** In the order the watch delivered them (the apiserver's order of writes). */
  readonly versions: readonly Version[];
  /** Times the recorder had to list again because the watch could not resume: versions may be missing there. */
  readonly gaps: number;
}

export interface MemberView {
  readonly group: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name: string;
  readonly operation: string;
  readonly outcome: string;
  readonly message?: string;
}

/** A Transaction record as the checker read it at the end. */
export interface RecordView {
  readonly id: string;
  readonly user: string;
  readonly mode: string;
  readonly phase?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly createdAt?: string;
  readonly resolvedAt?: string;
  readonly members: readonly MemberView[];
}

export interface LeftoverView {
  readonly kind: "lock" | "heartbeat" | "journal";
  readonly name: string;
  readonly transaction: string;
  readonly createdAt?: string;
}

/** A write of a workload user to a trial namespace, as the apiserver's audit log recorded it. */
export interface AuditRequest {
  /** requestReceivedTimestamp, ms. */
  readonly at: number;
  readonly user: string;
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name?: string;
  readonly code: number;
  /** kubetx's transaction annotation, when kubetx admitted it into one. */
  readonly transaction?: string;
}

export interface TrialObservation {
  /** Wall clock when the clients were let go, and when the last one ended. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly histories: readonly ObjectHistory[];
  readonly records: readonly RecordView[];
  readonly leftovers: readonly LeftoverView[];
  /** The workload's writes as the apiserver logged them (absent when the log could not be read). */
  readonly requests?: readonly AuditRequest[];
  /** Set when quiescence was not reached within its bound: what was still open. */
  readonly unsettled?: readonly string[];
}

export interface TrialHistory {
  readonly plan: TrialPlan;
  readonly outcomes: readonly OpOutcome[];
  readonly faults: readonly FaultRecord[];
  readonly observation: TrialObservation;
}
