/**
 * What kubetx covers and how it behaves. Until the TransactionPolicy object
 * exists (a later issue), the built-in default of DESIGN.md section 2
 * applies: namespaces labelled kubetx.io/enabled=true are covered.
 */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
}

/**
 * off: kubetx allows everything untouched. explicit: only writes that name
 * a transaction (annotation or kubectl tx apply) are transactional.
 * transparent: every write in a covered namespace is, grouped by requester.
 */
export type PolicyMode = "off" | "explicit" | "transparent";

export interface Policy {
  readonly mode: PolicyMode;
  readonly namespaceSelector: LabelSelector;
  /** Users whose writes are never transactional (controllers, break-glass admins). */
  readonly exemptUsers: readonly string[];
  readonly exemptGroups: readonly string[];
  /** How long a lock outlives a dead coordinator. */
  readonly lockTtlSeconds: number;
  /** A transaction still open after this long rolls back. */
  readonly maxOpenSeconds: number;
  /** Transparent (and count-less explicit) transactions close after this long without a new member. */
  readonly quietWindowMs: number;
  /** Admit deletes of objects with finalizers into transactions although they cannot be undone. */
  readonly allowIrreversibleDeletes: boolean;
}

export const ENABLED_LABEL = "kubetx.io/enabled";

export const DEFAULT_POLICY: Policy = Object.freeze({
  mode: "transparent",
  namespaceSelector: { matchLabels: { [ENABLED_LABEL]: "true" } },
  exemptUsers: [],
  exemptGroups: [],
  // Long enough to ride out an apiserver hiccup, short enough that a dead
  // replica's locks free up before anyone gives up retrying.
  lockTtlSeconds: 15,
  // A kubectl apply of a few hundred objects finishes well within a minute.
  maxOpenSeconds: 60,
  // kubectl sends one apply's requests back to back; 2 s of silence means it is done.
  quietWindowMs: 2_000,
  allowIrreversibleDeletes: false,
});

export function isExempt(policy: Policy, user: { username: string; groups?: readonly string[] }): boolean {
  return policy.exemptUsers.includes(user.username) || (user.groups ?? []).some((g) => policy.exemptGroups.includes(g));
}

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  return Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels?.[key] === value);
}
