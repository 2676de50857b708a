/**
 * The transaction state machine of DESIGN.md section 3, as pure decisions
 * over facts the resolver gathered. Times are this process's observations.
 */
import type { ClientState, Mode } from "./model.ts";

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
  readonly timeoutMs: number;
  readonly quietMs: number;
  /** This process took the transaction over from a coordinator that stopped renewing its heartbeat. */
  readonly coordinatorLost?: boolean;
}

export type Decision =
  | { readonly next: "Open" }
  | { readonly next: "Verifying"; readonly reason: string }
  | { readonly next: "RollingBack"; readonly reason: string; readonly message: string };

const STAY: Decision = { next: "Open" };

export function decideOpen(f: OpenFacts, now: number): Decision {
  if (f.failure) return { next: "RollingBack", reason: "MemberFailed", message: f.failure };
  if (f.clientState === "Failed") {
    return { next: "RollingBack", reason: "ApplyFailed", message: f.clientMessage?.trim() || "kubectl apply reported a failure" };
  }
  const closed = closedByClient(f);
  if (closed) return closed;
  if (f.coordinatorLost) return lost(f, now);
  if (closesByQuiet(f) && f.memberCount > 0 && now - f.lastChangeAt >= f.quietMs) return { next: "Verifying", reason: "QuietWindowPassed" };
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
 * The replica coordinating an open transaction died. A transparent one is
 * verified once its quiet window has passed since the last member this
 * process has seen (the new coordinator starts that clock when it takes
 * over: kubectl may still be writing through another replica); any other
 * still waiting for members or for its client rolls back, since nobody can
 * say whether the rest will come.
 */
function lost(f: OpenFacts, now: number): Decision {
  if (f.mode === "transparent" && f.memberCount > 0) return now - f.lastChangeAt >= f.quietMs ? { next: "Verifying", reason: "CoordinatorLost" } : STAY;
  const waitingFor = f.expectedMembers !== undefined ? `${f.memberCount} of ${f.expectedMembers} members had arrived` : `${f.memberCount} members had arrived`;
  return { next: "RollingBack", reason: "CoordinatorLost", message: `the kubetx replica coordinating it stopped; ${waitingFor}` };
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
