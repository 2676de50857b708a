/**
 * How long a rollback keeps a transaction's locks after restoring its
 * members: while a write kubetx admitted may still land (its outcome
 * unknown), so the restore that follows can undo it too. Pure: the
 * resolver passes what it has observed on its monotonic clock.
 */
import { PREPARED_HOLD_EXTRA_MS } from "../locks/pulse.ts";
import type { Member } from "../locks/record.ts";

/** A member whose write was neither visible nor reported when the rollback began. */
export interface UnseenWrite {
  readonly name: string;
  /** Locked by a prepare for a create: only kubectl tx's kubectl writes it (its copy alone names the transaction). */
  readonly preparedCreate: boolean;
}

export interface HoldState {
  /** The record says the transaction was prepared (status.prepared). */
  readonly prepared: boolean;
  /** kubectl tx said kubectl exited on its own, every request it sent answered (spec.clientSettled). */
  readonly clientSettled: boolean;
  /** Since this process began the rollback. */
  readonly elapsedMs: number;
  readonly lateWriteMs: number;
  /** Whether the audit sink reports each member's request (status.requests). */
  readonly sink: boolean;
  readonly unseen: readonly UnseenWrite[];
  /** status.requests: members whose own request the sink has reported. */
  readonly reported: Readonly<Record<string, unknown>>;
}

export function unseenWrite(name: string, member: Pick<Member, "prepared" | "operation">): UnseenWrite {
  return { name, preparedCreate: member.prepared === true && member.operation === "CREATE" };
}

/**
 * Whether to keep holding. A prepared transaction holds every lock for the
 * late-write window and PREPARED_HOLD_EXTRA_MS more, since a create
 * admitted from memory left no trace to wait for (one admitted by a cache
 * that missed the closing mark lands within that); otherwise the locks of
 * unseen writes are held for the late-write window, or until the sink
 * reports their requests.
 *
 * Once kubectl tx has said that kubectl exited on its own, no prepared
 * create can still land: kubectl was their only writer and had every
 * request answered before it exited, so the pass that read the record
 * saying so has restored every create that landed. Neither hold applies
 * to them then. Other unseen writes (an update locked on its request
 * path, which the same user's other tools can also make) are held as
 * before.
 */
export function holdsLocks(s: HoldState): boolean {
  if (s.prepared && !s.clientSettled && s.elapsedMs < s.lateWriteMs + PREPARED_HOLD_EXTRA_MS) return true;
  if (s.elapsedMs >= s.lateWriteMs) return false;
  const waiting = s.unseen.filter((w) => !(s.clientSettled && w.preparedCreate));
  if (waiting.length === 0) return false;
  if (!s.sink) return true;
  return waiting.some((w) => s.reported[w.name] === undefined);
}
