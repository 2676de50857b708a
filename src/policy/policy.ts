/**
 * What kubetx covers and how it behaves. Until the TransactionPolicy object
 * exists (a later issue), the built-in default of DESIGN.md section 2
 * applies: namespaces labelled kubetx.io/enabled=true are covered.
 */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
}

export interface Policy {
  readonly namespaceSelector: LabelSelector;
  /** How long a lock outlives a dead coordinator. */
  readonly lockTtlSeconds: number;
  /** A transaction still open after this long rolls back. */
  readonly maxOpenSeconds: number;
  /** Transparent (and count-less explicit) transactions close after this long without a new member. */
  readonly quietWindowMs: number;
}

export const ENABLED_LABEL = "kubetx.io/enabled";

export const DEFAULT_POLICY: Policy = Object.freeze({
  namespaceSelector: { matchLabels: { [ENABLED_LABEL]: "true" } },
  // Long enough to ride out an apiserver hiccup, short enough that a dead
  // replica's locks free up before anyone gives up retrying.
  lockTtlSeconds: 15,
  // A kubectl apply of a few hundred objects finishes well within a minute.
  maxOpenSeconds: 60,
  // kubectl sends one apply's requests back to back; 2 s of silence means it is done.
  quietWindowMs: 2_000,
});

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  return Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels?.[key] === value);
}
