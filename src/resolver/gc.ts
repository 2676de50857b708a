/**
 * Cleans up after resolved transactions and keeps everything kubetx stores
 * bounded: locks, heartbeats and session Leases a replica left behind when
 * it died between resolving and releasing, journals once their retention
 * has passed, and Transaction records once theirs has (or when there are
 * more than the policy allows). A Failed transaction keeps its locks and
 * journal: an admin resolves it (deleting its record releases them).
 *
 * Leftovers are listed before the records, so a transaction created in
 * between is seen with its record; and nothing goes the first time it looks
 * like garbage: it must look so for a while on this process's monotonic
 * clock (the lock TTL for an orphan, the retention for a kept journal or
 * record), so neither a lagging read nor a step of the wall clock removes
 * anything early.
 */
import { openLimitMs } from "../transactions/machine.ts";
import type { Phase, Transaction } from "../transactions/model.ts";
import { TERMINAL_PHASES } from "../transactions/model.ts";

export interface Leftover {
  readonly kind: "lock" | "heartbeat" | "journal" | "session" | "closing";
  readonly name: string;
  readonly transaction: string;
}

/**
 * Why a leftover may go, and after how long a wait: `orphan` (its
 * transaction has no record), `released` (its transaction is resolved and
 * it should have been released), `retained` (a committed transaction's
 * journal, kept for `kubectl tx undo`), `settled` (a resolved
 * transaction's closing mark). Undefined: it stays.
 */
export type Eligibility = "orphan" | "released" | "retained" | "settled";

/**
 * How long a resolved transaction's closing mark stays. Admission, having
 * found no mark older than its new lock, still rules out a resolved
 * transaction by its record (Coordinator.closedMeanwhile); the mark only
 * has to outlast a cache of records that lags behind, which ten minutes
 * does by far, while the Lease cache stays small.
 */
export const CLOSING_MARK_KEEP_MS = 10 * 60_000;

/**
 * Pure: whether a leftover may go once it has looked so long enough, given
 * its transaction's record. `namespaceGone` says whether a namespace was
 * deleted (or is being deleted): a committed transaction's journal is kept
 * for `kubectl tx undo`, which cannot restore anything into a namespace that
 * is gone, so it goes at once when every member's namespace has.
 */
export function eligibility(leftover: Leftover, tx: Transaction | undefined, namespaceGone: (namespace: string) => boolean = () => false): Eligibility | undefined {
  if (!tx) return "orphan";
  const phase: Phase = tx.status?.phase ?? "Open";
  if (!TERMINAL_PHASES.has(phase)) return undefined;
  // Admission reads a closing mark as "no new members": it stays a while after the transaction resolved.
  if (leftover.kind === "closing") return "settled";
  // A session only points at its transaction; a Failed one keeps its locks and journal for an admin.
  if (leftover.kind === "session") return "released";
  if (phase === "Failed") return undefined;
  if (leftover.kind !== "journal" || phase !== "Committed") return "released";
  return inDeletedNamespaces(tx, namespaceGone) ? "released" : "retained";
}

/** Whether every member of `tx` lived in a namespace that is gone (false when it has a cluster-scoped member or none). */
export function inDeletedNamespaces(tx: Transaction, namespaceGone: (namespace: string) => boolean): boolean {
  const namespaces = (tx.status?.members ?? []).map((m) => m.namespace ?? "");
  return namespaces.length > 0 && namespaces.every((ns) => ns !== "" && namespaceGone(ns));
}

export interface Waits {
  /** How long an apparently orphaned leftover must stay so before it goes (a record may be in flight). */
  readonly orphanMs: number;
  /** How long a committed transaction's journal is kept. */
  readonly retentionMs: number;
  /** How long a resolved transaction's closing mark is kept (CLOSING_MARK_KEEP_MS). */
  readonly settledMs: number;
}

export function waitFor(eligible: Eligibility, waits: Waits): number {
  switch (eligible) {
    case "orphan":
      return waits.orphanMs;
    case "released":
      return 0;
    case "retained":
      return waits.retentionMs;
    case "settled":
      return waits.settledMs;
  }
}

/**
 * When this process first saw each thing eligible to go, on its monotonic
 * clock; forgets what it no longer sees, so it holds no more than the
 * current leftovers.
 */
export class EligibleSince {
  private readonly since = new Map<string, number>();

  /** True once `name` has been eligible for at least `waitMs`. */
  due(name: string, now: number, waitMs: number): boolean {
    const first = this.since.get(name) ?? now;
    this.since.set(name, first);
    return now - first >= waitMs;
  }

  retain(names: ReadonlySet<string>): void {
    for (const name of this.since.keys()) if (!names.has(name)) this.since.delete(name);
  }

  get size(): number {
    return this.since.size;
  }
}

/**
 * Resolved records to delete: those resolved for longer than the retention
 * (as this process observed), and the oldest beyond the maximum count.
 * Open records never go.
 */
export function expiredRecords(records: readonly Transaction[], isDue: (tx: Transaction) => boolean, maxRecords: number): Transaction[] {
  const resolved = records.filter((tx) => TERMINAL_PHASES.has(tx.status?.phase ?? "Open"));
  const byAge = [...resolved].sort((a, b) => (a.status?.resolvedAt ?? "").localeCompare(b.status?.resolvedAt ?? ""));
  const excess = new Set(byAge.slice(0, Math.max(0, resolved.length - maxRecords)));
  return resolved.filter((tx) => excess.has(tx) || isDue(tx));
}

/**
 * How many of `locks` belong to a transaction still unresolved longer than
 * the policy allows: its open limit (maxOpenSeconds, or a live `kubectl tx
 * apply`'s --timeout) plus two lock TTLs, time enough for the resolver or,
 * if its coordinator died, another replica to have ended it. Such a lock
 * means a resolver is stuck; a Failed transaction's locks are counted apart
 * (failedTransactions), and an orphan's go with the next collection.
 */
export function overdueLocks(
  locks: readonly Pick<Leftover, "transaction">[], byId: ReadonlyMap<string, Transaction>, nowWall: number,
  limits: { readonly maxOpenSeconds: number; readonly lockTtlSeconds: number },
): number {
  return locks.filter((lock) => {
    const tx = byId.get(lock.transaction);
    if (!tx || TERMINAL_PHASES.has(tx.status?.phase ?? "Open")) return false;
    const opened = Date.parse(tx.metadata?.creationTimestamp ?? "");
    return Number.isFinite(opened) && nowWall - opened > openLimitMs(tx.spec, limits.maxOpenSeconds) + 2 * limits.lockTtlSeconds * 1000;
  }).length;
}

/** Transactions that ended Failed: each waits for an admin. */
export function failedCount(records: readonly Transaction[]): number {
  return records.filter((tx) => tx.status?.phase === "Failed").length;
}
