/**
 * The transaction state machine of DESIGN.md section 3, as pure decisions
 * over facts the resolver gathered. Times are this process's observations.
 */
import { revisionAtMost } from "../kube/revision.ts";
import type { ClientState, Mode, Phase, TransactionSpec, TransactionStatus } from "./model.ts";
import { CLIENT_HEARTBEAT_PERIOD_MS, CLIENT_HEARTBEAT_TIMEOUT_MS, MAX_TIMEOUT_SECONDS } from "./model.ts";

export interface OpenFacts {
  readonly mode: Mode;
  readonly expectedMembers?: number;
  readonly clientState?: ClientState;
  readonly clientMessage?: string;
  /** Set when admission denied a member. */
  readonly failure?: string;
  readonly memberCount: number;
  /** When this process first saw the transaction. */
  readonly openedAt: number;
  /** When this process last saw the member count change. */
  readonly lastChangeAt: number;
  /** The longest it may stay open: openLimitMs. */
  readonly timeoutMs: number;
  readonly quietMs: number;
  /** This process took the transaction over from a coordinator that stopped renewing its heartbeat. */
  readonly coordinatorLost?: boolean;
  /**
   * A member's own request has not completed yet (the audit sink has not
   * reported it): the client is still waiting on it, so the apply is not
   * quiet, however long ago the member was admitted.
   */
  readonly inFlight?: boolean;
  /**
   * Plugin transactions whose client sends a heartbeat: when this process
   * last saw spec.clientHeartbeat change (observeHeartbeat). Absent for a
   * client that sends none (an older kubectl tx): then maxOpenSeconds
   * bounds it as before.
   */
  readonly clientHeartbeatAt?: number;
}

export type Decision =
  | { readonly next: "Open" }
  | { readonly next: "Verifying"; readonly reason: string }
  | { readonly next: "RollingBack"; readonly reason: string; readonly message: string };

const STAY: Decision = { next: "Open" };

/**
 * Whether a record as read now may move from one of `from` to `to`. Never
 * to Committed over a failure: a member refused while the transaction was
 * being verified (at the policy's limit, say) notes one after the verifier
 * read the record, and the transaction must roll back, as that refusal
 * told the user.
 */
export function mayMove(status: TransactionStatus | undefined, from: readonly Phase[], to: Phase): boolean {
  return from.includes(status?.phase ?? "Open") && !(to === "Committed" && status?.failure);
}

export function decideOpen(f: OpenFacts, now: number): Decision {
  if (f.failure) return { next: "RollingBack", reason: "MemberFailed", message: memberFailedMessage(f.memberCount) };
  if (f.clientState === "Failed") {
    return { next: "RollingBack", reason: "ApplyFailed", message: f.clientMessage?.trim() || "kubectl apply reported a failure" };
  }
  const closed = closedByClient(f);
  if (closed) return closed;
  const client = clientLiveness(f, now);
  if (client) return client;
  if (f.coordinatorLost) return lost(f, now);
  if (closesByQuiet(f) && quiet(f, now)) return { next: "Verifying", reason: "QuietWindowPassed" };
  if (now - f.openedAt >= f.timeoutMs) return { next: "RollingBack", reason: "Timeout", message: timeoutMessage(f) };
  return STAY;
}

/** The client said it finished, or every expected member arrived. */
function closedByClient(f: OpenFacts): Decision | undefined {
  if (f.clientState === "Applied") return { next: "Verifying", reason: "ApplyFinished" };
  if (f.expectedMembers !== undefined && f.memberCount >= f.expectedMembers) return { next: "Verifying", reason: "AllMembersArrived" };
  return undefined;
}

/**
 * A plugin transaction with a heartbeat lives as long as its kubectl tx
 * apply does: it rolls back once the heartbeat has not moved for
 * CLIENT_HEARTBEAT_TIMEOUT_MS (the command was killed, its machine stopped,
 * or it lost the apiserver), or at the --timeout its user asked for.
 * Neither the policy's maxOpenSeconds (see openLimitMs) nor the death of
 * its coordinating replica ends it while the client lives: the client,
 * not the clock, says when kubectl is done.
 */
function clientLiveness(f: OpenFacts, now: number): Decision | undefined {
  if (f.mode !== "plugin" || f.clientHeartbeatAt === undefined) return undefined;
  if (now - f.clientHeartbeatAt >= CLIENT_HEARTBEAT_TIMEOUT_MS) {
    return {
      next: "RollingBack", reason: "ClientLost",
      message: `kubectl tx apply stopped renewing the transaction (no heartbeat for ${CLIENT_HEARTBEAT_TIMEOUT_MS / 1000} s: it was killed, its machine stopped, or it lost the apiserver) before kubectl finished; ${plural(f.memberCount, "member")} had arrived`,
    };
  }
  if (now - f.openedAt >= f.timeoutMs) return { next: "RollingBack", reason: "Timeout", message: timeoutMessage(f) };
  return STAY;
}

/**
 * The longest a transaction may stay open, in ms. A client may ask
 * (spec.timeoutSeconds) for less time than the policy's maxOpenSeconds,
 * never more; except kubectl tx apply with a heartbeat, which proves that
 * kubectl still runs: its transaction is bounded by what its user asked
 * (--timeout), or else by the longest anyone may ask, an hour.
 */
export function openLimitMs(spec: Pick<TransactionSpec, "mode" | "timeoutSeconds" | "clientHeartbeat">, maxOpenSeconds: number): number {
  if (spec.mode === "plugin" && spec.clientHeartbeat !== undefined) return Math.min(spec.timeoutSeconds ?? MAX_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS) * 1000;
  return Math.min(spec.timeoutSeconds ?? maxOpenSeconds, maxOpenSeconds) * 1000;
}

/** What this process has seen of a client's heartbeat. */
export interface HeartbeatSeen {
  readonly value: number;
  /** When this process saw the value change (or gave the client a fresh start). */
  readonly changedAt: number;
  /** When this process last read it. */
  readonly readAt: number;
}

/**
 * Notes a reading of spec.clientHeartbeat at `now` (this process's
 * monotonic clock), as locks/expiry.ts notes a Lease: the first reading
 * counts as a change. A gap of more than a heartbeat period since this
 * process last read it (the apiserver was down, this replica paused, or
 * another replica coordinated meanwhile) is not the client's fault: the
 * client gets a fresh timeout from now instead of being judged by what
 * this process could not see. Pure.
 */
export function observeHeartbeat(previous: HeartbeatSeen | undefined, value: number | undefined, now: number): HeartbeatSeen | undefined {
  if (value === undefined) return undefined;
  const fresh = previous === undefined || previous.value !== value || now - previous.readAt > CLIENT_HEARTBEAT_PERIOD_MS;
  return { value, changedAt: fresh ? now : previous.changedAt, readAt: now };
}

/**
 * The record's message when a member failed: a summary beside
 * status.failure, which says which member and why. The sentence is not
 * repeated: describe and -o yaml show both fields.
 */
export function memberFailedMessage(memberCount: number): string {
  if (memberCount === 0) return "a member failed (see failure); no admitted member to roll back";
  return `a member failed (see failure), so the transaction's ${plural(memberCount, "member")} ${memberCount === 1 ? "rolls" : "roll"} back`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * The replica coordinating an open transaction died. A transparent one is
 * verified once its quiet window has passed since the last member this
 * process has seen (the new coordinator starts that clock when it takes
 * over: kubectl may still be writing through another replica); any other
 * still waiting for members or for its client rolls back, since nobody can
 * say whether the rest will come.
 */
function lost(f: OpenFacts, now: number): Decision {
  if (f.mode === "transparent" && f.memberCount > 0) return quiet(f, now) ? { next: "Verifying", reason: "CoordinatorLost" } : STAY;
  const waitingFor = f.expectedMembers !== undefined ? `${f.memberCount} of ${f.expectedMembers} members had arrived` : `${f.memberCount} members had arrived`;
  return { next: "RollingBack", reason: "CoordinatorLost", message: `the kubetx replica coordinating it stopped; ${waitingFor}` };
}

/** Members arrived, none is in flight, and none arrived or completed for the quiet window. */
function quiet(f: OpenFacts, now: number): boolean {
  return f.memberCount > 0 && !f.inFlight && now - f.lastChangeAt >= f.quietMs;
}

/** Transparent transactions, and explicit ones that did not say how many members to expect, close when writes stop. */
function closesByQuiet(f: OpenFacts): boolean {
  return f.mode === "transparent" || (f.mode === "explicit" && f.expectedMembers === undefined);
}

function timeoutMessage(f: OpenFacts): string {
  const seconds = Math.round(f.timeoutMs / 1000);
  if (f.expectedMembers !== undefined) {
    return `only ${f.memberCount} of ${f.expectedMembers} expected members arrived within ${seconds} s`;
  }
  if (f.mode === "plugin" && f.clientHeartbeatAt !== undefined) return `kubectl was still running ${seconds} s after the transaction opened, the limit kubectl tx apply was given (--timeout; at most ${MAX_TIMEOUT_SECONDS / 3600} h)`;
  if (f.mode === "plugin") return `kubectl tx apply did not report that kubectl finished within ${seconds} s`;
  return `the transaction stayed open for ${seconds} s`;
}

/**
 * One member at verification: `persisted` (its write is there, or its
 * request succeeded), `missing` (not visible yet: it may be in flight),
 * `failed` (its own request failed, as the audit sink reported), `error`
 * (kubetx could not read it: 403, 503).
 */
export interface MemberCheck {
  readonly describe: string;
  readonly state: "persisted" | "missing" | "failed" | "error";
  readonly detail?: string;
  /** When this process first checked the member (a write can still be in flight just after admission). */
  readonly firstCheckedAt: number;
}

export interface VerifyTiming {
  /** How long a member may stay missing before it counts as never written. */
  readonly graceMs: number;
  /** How long kubetx keeps trying to read a member before it gives up verifying. */
  readonly errorGraceMs: number;
}

export type VerifyDecision =
  | { readonly next: "Verifying" }
  | { readonly next: "Committed" }
  | { readonly next: "RollingBack"; readonly reason: string; readonly message: string };

/**
 * A transaction closed because every expected member arrived (counted from
 * the lock cache) must still hold that many locks when verified: a write
 * whose admission then met the transaction Verifying gave its lock back and
 * was refused, so committing the rest would commit part of the apply.
 */
export function decideWithdrawn(f: { reason?: string; expectedMembers?: number; lockCount: number }): Extract<VerifyDecision, { next: "RollingBack" }> | undefined {
  if (f.reason !== "AllMembersArrived" || f.expectedMembers === undefined || f.lockCount >= f.expectedMembers) return undefined;
  return {
    next: "RollingBack",
    reason: "MemberWithdrew",
    message: `all ${f.expectedMembers} expected members arrived, but only ${f.lockCount} still hold their locks: a member's write met the transaction closing and was refused, so the apply did not fully land; apply again`,
  };
}

/** The reasons a transaction closes for having gone quiet (decideOpen, lost). */
const QUIET_CLOSES: ReadonlySet<string> = new Set(["QuietWindowPassed", "CoordinatorLost"]);

/**
 * Whether a transaction closes (or closed) because it went quiet: it has
 * no end of its own, so a write that arrives as it closes may be the first
 * of the requester's next apply (chaos F23), and joins it only if the
 * close had not been decided yet.
 */
export function closesQuietly(reason: string | undefined): boolean {
  return reason !== undefined && QUIET_CLOSES.has(reason);
}

/** What a close by the quiet window was decided on (locks/record.ts QuietBasis). */
export interface QuietBasisFacts {
  readonly lastActivity: string;
  readonly countedAt: string;
}

export const JOINED_AS_IT_CLOSED = "JoinedAsItClosed";

/**
 * The record as read after the closing mark was written: whether a later
 * write of an object the transaction holds noted activity after the close
 * was decided on `basis`. Such a write read no mark (it notes activity
 * first, then reads the mark), so it was admitted into a transaction that
 * had already decided to close.
 */
export function activitySince(status: TransactionStatus | undefined, basis: QuietBasisFacts | undefined): boolean {
  return basis !== undefined && !status?.failure && (status?.lastActivity ?? "") !== basis.lastActivity;
}

/**
 * A transaction closed because it went quiet holds a lock newer than the
 * count the close was decided on: that member was admitted after the
 * decision and before the closing mark. Committing would keep it while the
 * rest of its apply (refused by the mark) is lost, so everything rolls
 * back, as it does for activitySince.
 */
export function decideJoinedLate(f: { reason?: string; countedAt?: string; locks: readonly { readonly resourceVersion: string; readonly describe: string }[] }): Extract<VerifyDecision, { next: "RollingBack" }> | undefined {
  if (!closesQuietly(f.reason) || !f.countedAt) return undefined;
  const late = f.locks.filter((l) => !revisionAtMost(l.resourceVersion, f.countedAt ?? ""));
  return late.length === 0 ? undefined : joinedAsItClosed(late.map((l) => l.describe).join(", "));
}

/** The rollback of a transaction that a write joined as it closed (activitySince, decideJoinedLate). */
export function joinedAsItClosed(what: string): Extract<VerifyDecision, { next: "RollingBack" }> {
  return {
    next: "RollingBack",
    reason: JOINED_AS_IT_CLOSED,
    message: `a write (${what}) joined just as kubetx closed the transaction for having gone quiet; it may be the start of the requester's next apply, which the rest of that apply could not join, so kubetx rolls back both rather than keep half an apply: apply again`,
  };
}

/**
 * Commit when every member persisted; roll back at once when a member's
 * request failed, and once a member stayed missing (or unreadable) past its
 * grace. Nothing stays Verifying for ever.
 */
export function decideVerify(checks: readonly MemberCheck[], now: number, timing: VerifyTiming): VerifyDecision {
  const failed = checks.filter((c) => c.state === "failed");
  if (failed.length > 0) return { next: "RollingBack", reason: "MemberFailed", message: failed.map((c) => c.detail ?? c.describe).join("; ") };
  const unreadable = checks.filter((c) => c.state === "error" && now - c.firstCheckedAt >= timing.errorGraceMs);
  if (unreadable.length > 0) {
    return { next: "RollingBack", reason: "VerifyFailed", message: `kubetx could not read ${unreadable.map((c) => `${c.describe} (${c.detail ?? "error"})`).join(", ")}` };
  }
  if (checks.every((c) => c.state === "persisted")) return { next: "Committed" };
  const overdue = checks.filter((c) => c.state === "missing" && now - c.firstCheckedAt >= timing.graceMs);
  if (overdue.length === 0) return { next: "Verifying" };
  return {
    next: "RollingBack",
    reason: "MemberNotPersisted",
    message: `admitted but never written: ${overdue.map((c) => c.describe).join(", ")}`,
  };
}
