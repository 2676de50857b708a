/**
 * What the checker reports. A violation breaks a property DESIGN.md
 * section 3 or 4 says must hold; a note is something worth showing that
 * kubetx documents as a limit (or an outcome such as Failed that is not by
 * itself a broken property).
 */

export type ViolationKind =
  /** A rolled-back transaction's write survived, or a committed one's member never appeared. */
  | "atomicity"
  /** A committed write was reverted, or the final value is not the last committed write. */
  | "lost-update"
  /** The committed writes cannot be put in one serial order (a cycle). */
  | "serial-order"
  /** A transaction wrote an object another unresolved transaction had written. */
  | "isolation"
  /** A write of the workload persisted outside every transaction record. */
  | "untracked-write"
  /** An object took a value no write of the workload and no restore explains. */
  | "unexplained-value"
  /** After quiescence, a record not in a final phase. */
  | "record-not-final"
  /** A record whose phase and member outcomes disagree with each other. */
  | "record-untrue"
  /** A client was told of a transaction that has no record. */
  | "record-missing"
  /** A lock, heartbeat or journal of a resolved (or unknown) transaction after quiescence plus lock TTL. */
  | "leftover"
  /** An apply committed part of its writes where kubetx promises all or nothing. */
  | "partial-apply"
  /** An apply with a member the apiserver refused committed anyway. */
  | "invalid-committed"
  /** kubectl tx apply told its user something the record contradicts. */
  | "plugin-outcome"
  /** A record holds a member the workload never wrote (a controller's write, say). */
  | "foreign-member";

export type NoteKind =
  | "failed-transaction"
  | "transparent-limit"
  | "history-gap"
  | "plugin-no-outcome"
  | "ambiguous-attribution";

export interface Finding {
  readonly severity: "violation" | "note";
  readonly kind: ViolationKind | NoteKind;
  readonly message: string;
  readonly transaction?: string;
  readonly object?: string;
  readonly op?: string;
}

export function violation(kind: ViolationKind, message: string, where: Omit<Finding, "severity" | "kind" | "message"> = {}): Finding {
  return { severity: "violation", kind, message, ...where };
}

export function note(kind: NoteKind, message: string, where: Omit<Finding, "severity" | "kind" | "message"> = {}): Finding {
  return { severity: "note", kind, message, ...where };
}
