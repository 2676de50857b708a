/**
 * TransactionPolicy (kubetx.io/v1alpha1, cluster-scoped): what kubetx
 * covers and how it behaves. This file holds the types, the defaults and
 * label-selector matching; validation and combination live beside it.
 */

/**
 * off: kubetx leaves the writes it selects alone. explicit: only writes
 * that name a transaction (annotation or kubectl tx apply) are
 * transactional. transparent: every selected write is, grouped by requester.
 */
export type PolicyMode = "off" | "explicit" | "transparent";

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

/** The spec of one TransactionPolicy object, after validation and defaults. */
export interface PolicySpec {
  readonly mode: PolicyMode;
  readonly namespaceSelector: LabelSelector;
  /** `resource` (core group), `group/resource`, `group/*` or `*`. */
  readonly resources: { readonly include: readonly string[]; readonly exclude: readonly string[] };
  /** Requesters whose writes are never transactional (controllers, break-glass admins). */
  readonly exemptUsers: readonly string[];
  readonly exemptGroups: readonly string[];
  /** `namespace/name` of service accounts. */
  readonly exemptServiceAccounts: readonly string[];
  /** Transparent (and count-less explicit) transactions close after this long without a new member. */
  readonly quietWindowSeconds: number;
  /** How long a lock outlives a dead coordinator. */
  readonly lockTTLSeconds: number;
  /** A transaction still open after this long rolls back. */
  readonly maxOpenSeconds: number;
  /** A transaction that grows past this many members rolls back. */
  readonly maxMembers: number;
  /** Admit deletes of objects with finalizers into transactions although they cannot be undone. */
  readonly allowIrreversibleDeletes: boolean;
  /** How long journals are kept after commit, for `kubectl tx undo`. 0: deleted at once. */
  readonly journalRetentionSeconds: number;
  /** How long a resolved Transaction record is kept. */
  readonly recordRetentionSeconds: number;
  /** Resolved Transaction records kept at most; the oldest go first. */
  readonly maxRecords: number;
  /** Transactions one user may hold open (with locks) at once; a write that would open one more is denied. */
  readonly maxOpenTransactionsPerUser: number;
  /** Lock Leases one user's transactions may hold at once; a write that would take one more is denied. */
  readonly maxLocksPerUser: number;
}

export const ENABLED_LABEL = "kubetx.io/enabled";

export const POLICY_DEFAULTS: PolicySpec = deepFreeze({
  mode: "transparent",
  namespaceSelector: { matchLabels: { [ENABLED_LABEL]: "true" } },
  resources: { include: ["*"], exclude: [] },
  // The control plane's own identities: its controllers (each with its own
  // service account in kube-system, as kubeadm runs them), the nodes, and
  // the controller manager and scheduler users. kubetx covers people and
  // their tools; a ReplicaSet's Pods or a Service's EndpointSlices are
  // never members of anyone's transaction.
  exemptUsers: ["system:kube-controller-manager", "system:kube-scheduler"],
  exemptGroups: ["system:serviceaccounts:kube-system", "system:nodes"],
  exemptServiceAccounts: [],
  // kubectl sends one apply's requests back to back; 2 s of silence means it is done.
  quietWindowSeconds: 2,
  // Long enough to ride out an apiserver hiccup, short enough that a dead
  // replica's locks free up before anyone gives up retrying.
  lockTTLSeconds: 15,
  // A kubectl apply of a few hundred objects finishes well within a minute.
  maxOpenSeconds: 60,
  // Large applies are fine; thousands of members would hold thousands of locks.
  maxMembers: 1000,
  allowIrreversibleDeletes: false,
  // An hour to notice a bad change and undo it.
  journalRetentionSeconds: 3600,
  // A week of history for auditors; the apiserver audit log keeps the rest.
  recordRetentionSeconds: 7 * 86_400,
  // Records are small (a few KiB); ten thousand stay well within etcd's comfort.
  maxRecords: 10_000,
  // A person runs a few applies at once, a CI job a handful more; twenty
  // keeps one user (or one stolen token) from filling kubetx-system with
  // heartbeats and records while leaving room for parallel pipelines.
  maxOpenTransactionsPerUser: 20,
  // Twice the largest transaction (maxMembers): one user cannot lock a
  // whole cluster's objects and so block everyone else's applies.
  maxLocksPerUser: 2000,
});

/** Limits that apply to every transaction, whichever policy selected its writes. */
export interface Limits {
  readonly quietWindowMs: number;
  readonly lockTtlSeconds: number;
  readonly maxOpenSeconds: number;
  readonly maxMembers: number;
  readonly allowIrreversibleDeletes: boolean;
  readonly journalRetentionSeconds: number;
  readonly recordRetentionSeconds: number;
  readonly maxRecords: number;
  readonly maxOpenTransactionsPerUser: number;
  readonly maxLocksPerUser: number;
}

export function limitsOf(spec: PolicySpec): Limits {
  return {
    quietWindowMs: spec.quietWindowSeconds * 1000,
    lockTtlSeconds: spec.lockTTLSeconds,
    maxOpenSeconds: spec.maxOpenSeconds,
    maxMembers: spec.maxMembers,
    allowIrreversibleDeletes: spec.allowIrreversibleDeletes,
    journalRetentionSeconds: spec.journalRetentionSeconds,
    recordRetentionSeconds: spec.recordRetentionSeconds,
    maxRecords: spec.maxRecords,
    maxOpenTransactionsPerUser: spec.maxOpenTransactionsPerUser,
    maxLocksPerUser: spec.maxLocksPerUser,
  };
}

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  const have = labels ?? {};
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => have[key] === value);
  return byLabels && (selector.matchExpressions ?? []).every((r) => requirementMatches(r, have));
}

function requirementMatches(r: LabelSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const value = labels[r.key];
  switch (r.operator) {
    case "In":
      return value !== undefined && (r.values ?? []).includes(value);
    case "NotIn":
      return value === undefined || !(r.values ?? []).includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
  }
}

/** The user name the apiserver gives a service account named `namespace/name` in a policy. */
export function serviceAccountUser(namespaceSlashName: string): string {
  return `system:serviceaccount:${namespaceSlashName.replace("/", ":")}`;
}

/** Whether a `resources` pattern selects a group/resource. */
export function resourceMatches(pattern: string, group: string, resource: string): boolean {
  if (pattern === "*") return true;
  const [g, r] = pattern.includes("/") ? pattern.split("/", 2) : ["", pattern];
  return g === group && (r === "*" || r === resource);
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
