/**
 * The denial a writer gets when another transaction holds the object: who
 * holds it, since when, and when to retry, which depends on how the holder
 * closes (DESIGN.md section 3). Pure: the numbers are the limits in force.
 */
import type { ObjectRef } from "../kube/types.ts";
import { describeRef } from "../kube/types.ts";
import type { LockRecord } from "../locks/record.ts";
import type { Limits } from "../policy/policy.ts";
import { openLimitMs } from "./machine.ts";
import type { Transaction } from "./model.ts";
import { CLIENT_HEARTBEAT_TIMEOUT_MS } from "./model.ts";

export type LockedLimits = Pick<Limits, "quietWindowMs" | "lockTtlSeconds" | "maxOpenSeconds">;

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

export function lockedMessage(locked: Locked, limits: LockedLimits): string {
  const { lock, holder } = locked;
  const since = new Date(lock.member.admittedAt).toISOString().slice(11, 19);
  const user = holder?.spec.user ?? lock.member.user;
  const consequence = locked.dryRun ? "" : ` Transaction ${locked.transaction} will roll back.`;
  return `${describeRef(locked.ref)} is locked by transaction ${lock.member.transaction} (${user}) since ${since} UTC; ` +
    `retry after it commits or rolls back: ${whenFree(holder, limits)}.${consequence}`;
}

/** When the holder lets go, as far as kubetx can tell from how it closes. */
export function whenFree(holder: Transaction | undefined, limits: LockedLimits): string {
  const died = `; about ${limits.lockTtlSeconds} s more if the kubetx replica coordinating it died`;
  if (!holder) return `usually within seconds${died}`;
  const limit = seconds(openLimitMs(holder.spec, limits.maxOpenSeconds));
  const quiet = seconds(limits.quietWindowMs);
  switch (holder.spec.mode) {
    case "plugin":
      // With a heartbeat the client's liveness, not a replica's, decides: a takeover changes nothing.
      if (holder.spec.clientHeartbeat !== undefined) {
        return `it ends when its kubectl tx apply finishes, or about ${seconds(CLIENT_HEARTBEAT_TIMEOUT_MS)} s after that command stops (at most ${limit} s after it opened)`;
      }
      return `it ends when its kubectl tx apply finishes, at most ${limit} s after it opened${died}`;
    case "transparent":
      return `it closes ${quiet} s after ${holder.spec.user}'s last write in it (at most ${limit} s after it opened)${died}`;
    case "explicit":
      if (holder.spec.expectedMembers !== undefined) {
        return `it commits once all ${holder.spec.expectedMembers} of its members have arrived; if some are missing, it rolls back ${limit} s after it opened${died}`;
      }
      return `it closes ${quiet} s after its last member arrives (at most ${limit} s after it opened)${died}`;
    case "undo":
      return `it is an undo, which takes seconds${died}`;
  }
}

/** Whole seconds, or one decimal below ten (a quiet window of 1.5 s). */
function seconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) || s >= 10 ? String(Math.round(s)) : s.toFixed(1);
}
