/**
 * The denial a writer gets when another transaction holds the object: who
 * holds it, since when, and when to retry, which depends on the holder's
 * phase and on how it closes (DESIGN.md section 3). Pure: the numbers are
 * the limits in force.
 */
import type { ObjectRef } from "../kube/types.ts";
import { describeRef } from "../kube/types.ts";
import type { LockRecord } from "../locks/record.ts";
import type { Limits } from "../policy/policy.ts";
import { openLimitMs } from "./machine.ts";
import type { Transaction } from "./model.ts";
import { CLIENT_HEARTBEAT_TIMEOUT_MS, TERMINAL_PHASES } from "./model.ts";

/**
 * The times the denial quotes. `quietMs` is the quiet window as the
 * resolver counts it (resolver.ts effectiveQuietMs: the policy's, plus how
 * late a failure may still be reported), not the policy's alone: that is
 * when a transaction closes.
 */
export type LockedTiming = Pick<Limits, "lockTtlSeconds" | "maxOpenSeconds"> & { readonly quietMs: number };

export interface Locked {
  /** The object the denied write was for. */
  readonly ref: ObjectRef;
  /** The denied write's own transaction: it rolls back, unless the write was a dry run. */
  readonly transaction: string;
  readonly dryRun: boolean;
  readonly lock: LockRecord;
  /** The holder's record, when it could be read. */
  readonly holder: Transaction | undefined;
}

export function lockedMessage(locked: Locked, timing: LockedTiming): string {
  const { lock, holder } = locked;
  const since = new Date(lock.member.admittedAt).toISOString().slice(11, 19);
  const user = holder?.spec.user ?? lock.member.user;
  const consequence = locked.dryRun ? "" : ` Transaction ${locked.transaction} will roll back.`;
  return `${describeRef(locked.ref)} is locked by transaction ${lock.member.transaction} (${user}) since ${since} UTC; ` +
    `${retryAdvice(holder, lock.member.transaction, timing)}.${consequence}`;
}

/**
 * When to retry, by the holder's phase. A Failed holder keeps its locks
 * until an admin resolves it (README: fix the objects, delete the record);
 * the others let go by themselves.
 */
export function retryAdvice(holder: Transaction | undefined, id: string, timing: LockedTiming): string {
  const status = holder?.status;
  // A failure noted on a transaction not yet resolved means that it rolls back, whatever its phase says yet.
  const phase = status?.failure && !TERMINAL_PHASES.has(status.phase ?? "Open") ? "RollingBack" : status?.phase;
  switch (phase) {
    case "Failed":
      return `it ended Failed (its rollback could not restore every object) and keeps its locks until an admin resolves it: ` +
        `kubectl tx describe ${id} says which objects; fix them, then kubectl delete transaction ${id}; retry after that`;
    case "RollingBack":
      return `it is rolling back now: retry in a few seconds${died(timing)}`;
    case "Verifying":
      return `it is closed and being verified: retry in a few seconds, once it commits or rolls back${died(timing)}`;
    default:
      return `retry after it commits or rolls back: ${whenFree(holder, timing)}`;
  }
}

function died(timing: LockedTiming): string {
  return `; about ${timing.lockTtlSeconds} s more if the kubetx replica coordinating it died`;
}

/** When an open holder lets go, as far as kubetx can tell from how it closes. */
export function whenFree(holder: Transaction | undefined, timing: LockedTiming): string {
  if (!holder) return `usually within seconds${died(timing)}`;
  const limit = seconds(openLimitMs(holder.spec, timing.maxOpenSeconds));
  const quiet = seconds(timing.quietMs);
  switch (holder.spec.mode) {
    case "plugin":
      // With a heartbeat the client's liveness, not a replica's, decides: a takeover changes nothing.
      if (holder.spec.clientHeartbeat !== undefined) {
        return `it ends when its kubectl tx apply finishes, or about ${seconds(CLIENT_HEARTBEAT_TIMEOUT_MS)} s after that command stops (at most ${limit} s after it opened)`;
      }
      return `it ends when its kubectl tx apply finishes, at most ${limit} s after it opened${died(timing)}`;
    case "transparent":
      return `it closes ${quiet} s after ${holder.spec.user}'s last write in it (at most ${limit} s after it opened)${died(timing)}`;
    case "explicit":
      if (holder.spec.expectedMembers !== undefined) {
        return `it commits once all ${holder.spec.expectedMembers} of its members have arrived; if some are missing, it rolls back ${limit} s after it opened${died(timing)}`;
      }
      return `it closes ${quiet} s after its last member arrives (at most ${limit} s after it opened)${died(timing)}`;
    case "undo":
      return `it is an undo, which takes seconds${died(timing)}`;
  }
}

/** Whole seconds, or one decimal below ten (a quiet window of 1.5 s). */
function seconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) || s >= 10 ? String(Math.round(s)) : s.toFixed(1);
}
