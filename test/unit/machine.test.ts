/**
 * The transaction state machine as pure decisions: when an open transaction
 * closes, rolls back or waits, and when a verifying one commits.
 */
import { describe, expect, it } from "vitest";
import type { MemberCheck, OpenFacts } from "../../src/transactions/machine.ts";
import { JOINED_AS_IT_CLOSED, activitySince, closesQuietly, decideJoinedLate, decideOpen, decideVerify, decideWithdrawn, mayMove, memberFailedMessage, observeHeartbeat, openLimitMs } from "../../src/transactions/machine.ts";
import { CLIENT_HEARTBEAT_PERIOD_MS, CLIENT_HEARTBEAT_TIMEOUT_MS } from "../../src/transactions/model.ts";

const OPENED = 1_000_000;
const QUIET = 2_000;
const TIMEOUT = 60_000;

/** An open transaction with two members whose last member arrived just now. */
function facts(overrides: Partial<OpenFacts> = {}): OpenFacts {
  return { mode: "transparent", memberCount: 2, openedAt: OPENED, lastChangeAt: OPENED, timeoutMs: TIMEOUT, quietMs: QUIET, ...overrides };
}

/** Shortly after the last change: neither the quiet window nor the timeout has passed. */
const SOON = OPENED + 100;

describe("decideOpen", () => {
  it("rolls back when admission denied a member, with a summary as message that leaves the denial to the failure field", () => {
    const decision = decideOpen(facts({ failure: "kubetx: configmaps ns/a is locked by transaction t-other000" }), SOON);
    expect(decision).toEqual({ next: "RollingBack", reason: "MemberFailed", message: "a member failed (see failure), so the transaction's 2 members roll back" });
  });

  it("counts the members a failure rolls back in the message, one or none", () => {
    expect(memberFailedMessage(1)).toBe("a member failed (see failure), so the transaction's 1 member rolls back");
    expect(memberFailedMessage(0)).toBe("a member failed (see failure); no admitted member to roll back");
  });

  it("rolls back on a denied member even when the client already reported success", () => {
    const decision = decideOpen(facts({ mode: "plugin", clientState: "Applied", failure: "denied" }), SOON);
    expect(decision).toMatchObject({ next: "RollingBack", reason: "MemberFailed" });
  });

  it("rolls back with the client's own message when kubectl tx apply reports a failure", () => {
    const decision = decideOpen(facts({ mode: "plugin", clientState: "Failed", clientMessage: "  error: deployments.apps \"web\" is invalid \n" }), SOON);
    expect(decision).toEqual({ next: "RollingBack", reason: "ApplyFailed", message: "error: deployments.apps \"web\" is invalid" });
  });

  it("rolls back with a generic message when the client reports a failure without saying why", () => {
    expect(decideOpen(facts({ mode: "plugin", clientState: "Failed" }), SOON)).toEqual({
      next: "RollingBack", reason: "ApplyFailed", message: "kubectl apply reported a failure",
    });
  });

  it("treats a blank client failure message like a missing one", () => {
    expect(decideOpen(facts({ mode: "plugin", clientState: "Failed", clientMessage: "   " }), SOON)).toMatchObject({ message: "kubectl apply reported a failure" });
  });

  it("closes for verification as soon as the client reports that kubectl finished", () => {
    expect(decideOpen(facts({ mode: "plugin", clientState: "Applied" }), SOON)).toEqual({ next: "Verifying", reason: "ApplyFinished" });
  });

  it("closes for verification once every expected member has arrived", () => {
    expect(decideOpen(facts({ mode: "explicit", expectedMembers: 3, memberCount: 3 }), SOON)).toEqual({ next: "Verifying", reason: "AllMembersArrived" });
  });

  it("keeps waiting while fewer than the expected members have arrived", () => {
    expect(decideOpen(facts({ mode: "explicit", expectedMembers: 3, memberCount: 2 }), SOON)).toEqual({ next: "Open" });
  });

  it("verifies a transparent transaction whose coordinator died, once a quiet window passed since the new coordinator took over", () => {
    const tookOver = OPENED + 10_000;
    expect(decideOpen(facts({ coordinatorLost: true, lastChangeAt: tookOver }), tookOver + QUIET - 1)).toEqual({ next: "Open" });
    expect(decideOpen(facts({ coordinatorLost: true, lastChangeAt: tookOver }), tookOver + QUIET)).toEqual({ next: "Verifying", reason: "CoordinatorLost" });
  });

  it("rolls back a transparent transaction whose coordinator died before any member arrived", () => {
    expect(decideOpen(facts({ coordinatorLost: true, memberCount: 0 }), SOON)).toEqual({
      next: "RollingBack", reason: "CoordinatorLost", message: "the kubetx replica coordinating it stopped; 0 members had arrived",
    });
  });

  it("rolls back an explicit transaction whose coordinator died, saying how many of the expected members had arrived", () => {
    expect(decideOpen(facts({ mode: "explicit", expectedMembers: 5, memberCount: 2, coordinatorLost: true }), SOON)).toEqual({
      next: "RollingBack", reason: "CoordinatorLost", message: "the kubetx replica coordinating it stopped; 2 of 5 members had arrived",
    });
  });

  it("rolls back an explicit transaction without a member count whose coordinator died, saying how many members had arrived", () => {
    expect(decideOpen(facts({ mode: "explicit", memberCount: 3, coordinatorLost: true }), SOON)).toEqual({
      next: "RollingBack", reason: "CoordinatorLost", message: "the kubetx replica coordinating it stopped; 3 members had arrived",
    });
  });

  it("rolls back a plugin transaction without a heartbeat whose coordinator died before kubectl finished", () => {
    expect(decideOpen(facts({ mode: "plugin", memberCount: 4, coordinatorLost: true }), SOON)).toEqual({
      next: "RollingBack", reason: "CoordinatorLost", message: "the kubetx replica coordinating it stopped; 4 members had arrived",
    });
  });

  it("verifies rather than rolls back when the coordinator died after all expected members arrived", () => {
    expect(decideOpen(facts({ mode: "explicit", expectedMembers: 2, memberCount: 2, coordinatorLost: true }), SOON)).toEqual({
      next: "Verifying", reason: "AllMembersArrived",
    });
  });

  it("closes a transparent transaction once the quiet window has passed since the last new member", () => {
    expect(decideOpen(facts({ lastChangeAt: OPENED + 5_000 }), OPENED + 5_000 + QUIET)).toEqual({ next: "Verifying", reason: "QuietWindowPassed" });
  });

  it("keeps a transparent transaction open while a member's own request is still in flight, however quiet", () => {
    expect(decideOpen(facts({ inFlight: true }), OPENED + QUIET * 10)).toEqual({ next: "Open" });
    expect(decideOpen(facts({ inFlight: false }), OPENED + QUIET)).toEqual({ next: "Verifying", reason: "QuietWindowPassed" });
  });

  it("keeps a transparent transaction open until the quiet window has fully passed", () => {
    expect(decideOpen(facts({ lastChangeAt: OPENED + 5_000 }), OPENED + 5_000 + QUIET - 1)).toEqual({ next: "Open" });
  });

  it("closes an explicit transaction without a member count by the quiet window", () => {
    expect(decideOpen(facts({ mode: "explicit" }), OPENED + QUIET)).toEqual({ next: "Verifying", reason: "QuietWindowPassed" });
  });

  it("never closes an explicit transaction with a member count by the quiet window", () => {
    expect(decideOpen(facts({ mode: "explicit", expectedMembers: 3 }), OPENED + QUIET * 10)).toEqual({ next: "Open" });
  });

  it("never closes a plugin transaction by the quiet window: it waits for kubectl to finish", () => {
    expect(decideOpen(facts({ mode: "plugin" }), OPENED + QUIET * 10)).toEqual({ next: "Open" });
  });

  it("never closes a transaction without members by the quiet window", () => {
    expect(decideOpen(facts({ memberCount: 0 }), OPENED + QUIET * 10)).toEqual({ next: "Open" });
  });

  it("times out an explicit transaction naming how many of the expected members arrived", () => {
    expect(decideOpen(facts({ mode: "explicit", expectedMembers: 5, memberCount: 4 }), OPENED + TIMEOUT)).toEqual({
      next: "RollingBack", reason: "Timeout", message: "only 4 of 5 expected members arrived within 60 s",
    });
  });

  it("times out a plugin transaction saying that kubectl tx apply never reported back", () => {
    expect(decideOpen(facts({ mode: "plugin" }), OPENED + TIMEOUT)).toEqual({
      next: "RollingBack", reason: "Timeout", message: "kubectl tx apply did not report that kubectl finished within 60 s",
    });
  });

  it("times out a transparent transaction that never had a member saying how long it stayed open", () => {
    expect(decideOpen(facts({ memberCount: 0 }), OPENED + TIMEOUT)).toEqual({
      next: "RollingBack", reason: "Timeout", message: "the transaction stayed open for 60 s",
    });
  });

  it("times out a transparent transaction whose writes never stop", () => {
    const now = OPENED + TIMEOUT + 500;
    expect(decideOpen(facts({ lastChangeAt: now - 100 }), now)).toMatchObject({ next: "RollingBack", reason: "Timeout" });
  });

  it("stays open one millisecond before the timeout", () => {
    expect(decideOpen(facts({ mode: "plugin" }), OPENED + TIMEOUT - 1)).toEqual({ next: "Open" });
  });
});

describe("decideOpen for kubectl tx apply with a heartbeat", () => {
  /** A plugin transaction whose client renewed its heartbeat when it opened, bounded by the hour a live client may keep it. */
  const plugin = (overrides: Partial<OpenFacts> = {}): OpenFacts =>
    facts({ mode: "plugin", clientHeartbeatAt: OPENED, timeoutMs: openLimitMs({ mode: "plugin", clientHeartbeat: 0 }, 60), ...overrides });

  it("rolls back with ClientLost once the heartbeat has not changed for the client timeout, and not a millisecond earlier", () => {
    expect(decideOpen(plugin(), OPENED + CLIENT_HEARTBEAT_TIMEOUT_MS - 1)).toEqual({ next: "Open" });
    expect(decideOpen(plugin({ memberCount: 3 }), OPENED + CLIENT_HEARTBEAT_TIMEOUT_MS)).toEqual({
      next: "RollingBack", reason: "ClientLost",
      message: "kubectl tx apply stopped renewing the transaction (no heartbeat for 15 s: it was killed, its machine stopped, or it lost the apiserver) before kubectl finished; 3 members had arrived",
    });
  });

  it("keeps a transaction whose heartbeat moves open long past the policy's maxOpenSeconds", () => {
    const later = OPENED + 10 * TIMEOUT;
    expect(decideOpen(plugin({ clientHeartbeatAt: later - 1_000 }), later)).toEqual({ next: "Open" });
  });

  it("rolls back at the --timeout its user asked for, even while the heartbeat moves", () => {
    const limit = openLimitMs({ mode: "plugin", clientHeartbeat: 4, timeoutSeconds: 120 }, 60);
    expect(decideOpen(plugin({ timeoutMs: limit, clientHeartbeatAt: OPENED + limit - 1_000 }), OPENED + limit)).toEqual({
      next: "RollingBack", reason: "Timeout", message: "kubectl was still running 120 s after the transaction opened, the limit kubectl tx apply was given (--timeout; at most 1 h)",
    });
  });

  it("keeps a transaction whose coordinator died open while its heartbeat moves: the client says when kubectl is done", () => {
    const tookOver = OPENED + 10_000;
    expect(decideOpen(plugin({ coordinatorLost: true, clientHeartbeatAt: tookOver }), tookOver + 1_000)).toEqual({ next: "Open" });
    expect(decideOpen(plugin({ coordinatorLost: true, clientHeartbeatAt: tookOver }), tookOver + CLIENT_HEARTBEAT_TIMEOUT_MS)).toMatchObject({ next: "RollingBack", reason: "ClientLost" });
  });

  it("closes as soon as the client reports that kubectl finished, however old its last heartbeat", () => {
    expect(decideOpen(plugin({ clientState: "Applied" }), OPENED + CLIENT_HEARTBEAT_TIMEOUT_MS * 2)).toEqual({ next: "Verifying", reason: "ApplyFinished" });
  });

  it("rolls back on a denied member before looking at the heartbeat", () => {
    expect(decideOpen(plugin({ failure: "denied" }), SOON)).toMatchObject({ next: "RollingBack", reason: "MemberFailed" });
  });
});

describe("openLimitMs", () => {
  it("lets a client ask for less time than the policy's maxOpenSeconds, never more", () => {
    expect(openLimitMs({ mode: "explicit", timeoutSeconds: 30 }, 60)).toBe(30_000);
    expect(openLimitMs({ mode: "plugin", timeoutSeconds: 600 }, 60)).toBe(60_000);
    expect(openLimitMs({ mode: "transparent" }, 60)).toBe(60_000);
  });

  it("bounds kubectl tx apply with a heartbeat by its --timeout alone, or else by an hour", () => {
    expect(openLimitMs({ mode: "plugin", clientHeartbeat: 0, timeoutSeconds: 600 }, 60)).toBe(600_000);
    expect(openLimitMs({ mode: "plugin", clientHeartbeat: 0 }, 60)).toBe(3_600_000);
  });
});

describe("observeHeartbeat", () => {
  it("counts the first reading as a change: a client is never judged by what this process did not see", () => {
    expect(observeHeartbeat(undefined, 0, OPENED)).toEqual({ value: 0, changedAt: OPENED, readAt: OPENED });
  });

  it("keeps the time of the last change while the value stays the same", () => {
    const first = observeHeartbeat(undefined, 3, OPENED);
    const again = observeHeartbeat(first, 3, OPENED + 250);
    expect(observeHeartbeat(again, 3, OPENED + 500)).toEqual({ value: 3, changedAt: OPENED, readAt: OPENED + 500 });
  });

  it("notes a new value as a change now, whatever the value", () => {
    const first = observeHeartbeat(undefined, 3, OPENED);
    expect(observeHeartbeat(first, 2, OPENED + 250)).toEqual({ value: 2, changedAt: OPENED + 250, readAt: OPENED + 250 });
  });

  it("gives the client a fresh start after this process could not read for longer than a heartbeat period", () => {
    const first = observeHeartbeat(undefined, 3, OPENED);
    expect(observeHeartbeat(first, 3, OPENED + CLIENT_HEARTBEAT_PERIOD_MS)?.changedAt).toBe(OPENED);
    expect(observeHeartbeat(first, 3, OPENED + CLIENT_HEARTBEAT_PERIOD_MS + 1)?.changedAt).toBe(OPENED + CLIENT_HEARTBEAT_PERIOD_MS + 1);
  });

  it("sees no heartbeat in a record without one (an older kubectl tx, or another mode)", () => {
    expect(observeHeartbeat(observeHeartbeat(undefined, 1, OPENED), undefined, OPENED + 100)).toBeUndefined();
  });
});

describe("decideVerify", () => {
  const GRACE = 2_000;
  const ERROR_GRACE = 10_000;
  const timing = { graceMs: GRACE, errorGraceMs: ERROR_GRACE };
  const check = (describe: string, persisted: boolean, firstCheckedAt = OPENED): MemberCheck => ({ describe, state: persisted ? "persisted" : "missing", firstCheckedAt });

  it("commits when every member persisted", () => {
    expect(decideVerify([check("configmaps ns/a", true), check("configmaps ns/b", true)], OPENED, timing)).toEqual({ next: "Committed" });
  });

  it("keeps verifying while a missing member is still within the grace period", () => {
    expect(decideVerify([check("configmaps ns/a", true), check("configmaps ns/b", false)], OPENED + GRACE - 1, timing)).toEqual({ next: "Verifying" });
  });

  it("rolls back once a missing member has stayed missing for the grace period, naming only the overdue members", () => {
    const checks = [
      check("configmaps ns/a", true),
      check("configmaps ns/late", false, OPENED),
      check("configmaps ns/fresh", false, OPENED + 1_500),
      check("apps/deployments ns/web", false, OPENED - 10),
    ];
    expect(decideVerify(checks, OPENED + GRACE, timing)).toEqual({
      next: "RollingBack",
      reason: "MemberNotPersisted",
      message: "admitted but never written: configmaps ns/late, apps/deployments ns/web",
    });
  });

  it("rolls back at once when a member's own request failed, with the apiserver's reason", () => {
    const failed: MemberCheck = { describe: "configmaps ns/b", state: "failed", detail: "denied by another webhook", firstCheckedAt: OPENED };
    expect(decideVerify([check("configmaps ns/a", true), failed], OPENED, timing)).toEqual({ next: "RollingBack", reason: "MemberFailed", message: "denied by another webhook" });
  });

  it("keeps trying to read a member kubetx may not read for a while, then gives up rather than verify for ever", () => {
    const unreadable: MemberCheck = { describe: "widgets ns/w", state: "error", detail: "503 ServiceUnavailable", firstCheckedAt: OPENED };
    expect(decideVerify([unreadable], OPENED + ERROR_GRACE - 1, timing)).toEqual({ next: "Verifying" });
    expect(decideVerify([unreadable], OPENED + ERROR_GRACE, timing)).toEqual({
      next: "RollingBack", reason: "VerifyFailed", message: "kubetx could not read widgets ns/w (503 ServiceUnavailable)",
    });
  });
});

describe("mayMove", () => {
  it("moves from a listed phase only", () => {
    expect(mayMove({ phase: "Verifying" }, ["Verifying"], "Committed")).toBe(true);
    expect(mayMove(undefined, ["Open"], "Verifying")).toBe(true);
    expect(mayMove({ phase: "RollingBack" }, ["Verifying"], "Committed")).toBe(false);
  });

  it("never commits over a failure noted after the verifier read the record, but still rolls back", () => {
    const failed = { phase: "Verifying" as const, failure: "it grew past the policy's limit of 2 members" };
    expect(mayMove(failed, ["Verifying"], "Committed")).toBe(false);
    expect(mayMove(failed, ["Verifying"], "RollingBack")).toBe(true);
  });
});

describe("decideWithdrawn", () => {
  it("rolls back a transaction closed because every expected member arrived, when fewer still hold locks (F11)", () => {
    expect(decideWithdrawn({ reason: "AllMembersArrived", expectedMembers: 2, lockCount: 1 })).toMatchObject({
      next: "RollingBack", reason: "MemberWithdrew", message: expect.stringContaining("all 2 expected members arrived, but only 1 still hold") as string,
    });
  });

  it("lets the rest be verified when every counted member still holds its lock", () => {
    expect(decideWithdrawn({ reason: "AllMembersArrived", expectedMembers: 2, lockCount: 2 })).toBeUndefined();
  });

  it("does not count members of a transaction that closed for another reason (kubectl said it finished, or it went quiet)", () => {
    expect(decideWithdrawn({ reason: "ApplyFinished", expectedMembers: 3, lockCount: 1 })).toBeUndefined();
    expect(decideWithdrawn({ reason: "QuietWindowPassed", lockCount: 0 })).toBeUndefined();
  });
});

describe("a write that joins as the transaction closes for having gone quiet (chaos F23)", () => {
  const basis = { lastActivity: "req-1/replica-1/100", countedAt: "500" };
  const lock = (resourceVersion: string, name: string): { resourceVersion: string; describe: string } => ({ resourceVersion, describe: `configmaps ns/${name}` });

  it("is a close by the quiet window, or by a new coordinator once quiet; not one by count, by the client, or a rollback", () => {
    expect(closesQuietly("QuietWindowPassed")).toBe(true);
    expect(closesQuietly("CoordinatorLost")).toBe(true);
    for (const reason of ["AllMembersArrived", "ApplyFinished", "MemberFailed", "Timeout", undefined]) expect(closesQuietly(reason)).toBe(false);
  });

  it("shows as activity on the record since the close was decided, unless a failure rolls it back anyway", () => {
    expect(activitySince({ lastActivity: "req-1/replica-1/100" }, basis)).toBe(false);
    expect(activitySince({ lastActivity: "req-2/replica-2/7" }, basis)).toBe(true);
    expect(activitySince({ lastActivity: "req-2/replica-2/7", failure: "denied" }, basis)).toBe(false);
    // No activity at all when decided, some now.
    expect(activitySince({ lastActivity: "req-2/replica-2/7" }, { ...basis, lastActivity: "" })).toBe(true);
    expect(activitySince(undefined, { ...basis, lastActivity: "" })).toBe(false);
    // A mark without a basis (a close by count, or written by an older kubetx) says nothing.
    expect(activitySince({ lastActivity: "req-2/replica-2/7" }, undefined)).toBe(false);
  });

  it("shows as a lock newer than the count the close was decided on, and rolls everything back naming it", () => {
    const decision = decideJoinedLate({ reason: "QuietWindowPassed", countedAt: "500", locks: [lock("480", "a"), lock("501", "b")] });
    expect(decision).toMatchObject({ next: "RollingBack", reason: JOINED_AS_IT_CLOSED, message: expect.stringContaining("a write (configmaps ns/b) joined just as kubetx closed") as string });
    expect(decision?.message).toContain("apply again");
  });

  it("is no reason to roll back when every lock was counted, or the transaction closed by count or without a counted revision", () => {
    expect(decideJoinedLate({ reason: "QuietWindowPassed", countedAt: "500", locks: [lock("480", "a"), lock("500", "b")] })).toBeUndefined();
    expect(decideJoinedLate({ reason: "AllMembersArrived", countedAt: "500", locks: [lock("501", "b")] })).toBeUndefined();
    expect(decideJoinedLate({ reason: "CoordinatorLost", locks: [lock("501", "b")] })).toBeUndefined();
    expect(decideJoinedLate({ reason: "CoordinatorLost", countedAt: "500", locks: [lock("501", "b")] })?.reason).toBe(JOINED_AS_IT_CLOSED);
  });
});
