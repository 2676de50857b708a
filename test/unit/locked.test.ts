/**
 * The lock denial: who holds the object, and when to retry, told truly for
 * the holder's phase and each way it can close, with the limits in force
 * and the quiet window as the resolver counts it.
 */
import { describe, expect, it } from "vitest";
import type { LockRecord } from "../../src/locks/record.ts";
import type { Locked, LockedTiming } from "../../src/transactions/locked.ts";
import { lockedMessage, whenFree } from "../../src/transactions/locked.ts";
import type { TransactionSpec, TransactionStatus } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";

/** A policy quiet window of 2 s, counted with the audit sink's delay of 1 s. */
const LIMITS: LockedTiming = { quietMs: 3_000, lockTtlSeconds: 15, maxOpenSeconds: 60 };
const REF = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "web" };

const lock: LockRecord = {
  name: "lk-configmaps-shop-web",
  resourceVersion: "7",
  member: { transaction: "t-holder00", ref: REF, kind: "ConfigMap", operation: "UPDATE", user: "alice", requestUid: "u1", admittedAt: Date.UTC(2026, 0, 1, 14, 6, 33) },
};

const holder = (spec: Partial<TransactionSpec>): ReturnType<typeof newTransaction> => newTransaction("t-holder00", { user: "alice", mode: "explicit", ...spec });

/** A transparent holder with its status as the resolver wrote it. */
const inPhase = (status: TransactionStatus): ReturnType<typeof newTransaction> => ({ ...holder({ mode: "transparent" }), status });

function locked(overrides: Partial<Locked> = {}): Locked {
  return { ref: REF, transaction: "t-mine0000", dryRun: false, lock, holder: holder({ mode: "transparent" }), ...overrides };
}

describe("lockedMessage", () => {
  it("names the object, the holder and its user, when it took the lock, when to retry, and that the writer's own transaction rolls back", () => {
    expect(lockedMessage(locked(), LIMITS)).toBe(
      "configmaps shop/web is locked by transaction t-holder00 (alice) since 14:06:33 UTC; retry after it commits or rolls back: " +
      "it closes 3 s after alice's last write in it (at most 60 s after it opened); about 15 s more if the kubetx replica coordinating it died. " +
      "Transaction t-mine0000 will roll back.",
    );
  });

  it("says nothing of a transaction of the writer's own on a dry run: none will exist, so none rolls back", () => {
    const message = lockedMessage(locked({ dryRun: true }), LIMITS);
    expect(message).not.toContain("t-mine0000");
    expect(message).not.toContain("will roll back");
    expect(message.endsWith("died.")).toBe(true);
  });

  it("tells a writer held up by a Failed transaction that an admin must resolve it, and how, not to wait for it", () => {
    const message = lockedMessage(locked({ holder: inPhase({ phase: "Failed", reason: "RestoreImpossible" }) }), LIMITS);
    expect(message).toBe(
      "configmaps shop/web is locked by transaction t-holder00 (alice) since 14:06:33 UTC; " +
      "it ended Failed (its rollback could not restore every object) and keeps its locks until an admin resolves it: " +
      "kubectl tx describe t-holder00 says which objects; fix them, then kubectl delete transaction t-holder00; retry after that. " +
      "Transaction t-mine0000 will roll back.",
    );
    expect(message).not.toContain("retry after it commits or rolls back");
  });

  it("says a holder that is rolling back is doing so now", () => {
    expect(lockedMessage(locked({ holder: inPhase({ phase: "RollingBack", reason: "MemberFailed" }) }), LIMITS)).toContain(
      "since 14:06:33 UTC; it is rolling back now: retry in a few seconds; about 15 s more if the kubetx replica coordinating it died.",
    );
  });

  it("says an open holder with a failure noted is rolling back, since it will", () => {
    expect(lockedMessage(locked({ holder: inPhase({ phase: "Open", failure: "a write was denied" }) }), LIMITS)).toContain("it is rolling back now");
  });

  it("says a holder being verified commits or rolls back within seconds, not after a quiet window", () => {
    const message = lockedMessage(locked({ holder: inPhase({ phase: "Verifying", reason: "QuietWindowPassed" }) }), LIMITS);
    expect(message).toContain("it is closed and being verified: retry in a few seconds, once it commits or rolls back;");
    expect(message).not.toContain("last write");
  });

  it("takes the holder's user from the lock when its record could not be read", () => {
    expect(lockedMessage(locked({ holder: undefined }), LIMITS)).toContain("(alice) since 14:06:33 UTC; retry after it commits or rolls back: usually within seconds; about 15 s more");
  });
});

describe("whenFree", () => {
  it("for kubectl tx apply with a heartbeat: when the command finishes, or a few seconds after it stops, bounded by its --timeout", () => {
    expect(whenFree(holder({ mode: "plugin", clientHeartbeat: 3, timeoutSeconds: 300 }), LIMITS)).toBe(
      "it ends when its kubectl tx apply finishes, or about 15 s after that command stops (at most 300 s after it opened)",
    );
    expect(whenFree(holder({ mode: "plugin", clientHeartbeat: 3 }), LIMITS)).toContain("(at most 3600 s after it opened)");
  });

  it("for kubectl tx apply without a heartbeat (an older plugin): within the policy's open time", () => {
    expect(whenFree(holder({ mode: "plugin", timeoutSeconds: 600 }), LIMITS)).toBe(
      "it ends when its kubectl tx apply finishes, at most 60 s after it opened; about 15 s more if the kubetx replica coordinating it died",
    );
  });

  it("for a plain kubectl apply: the quiet window as the resolver counts it, after its user's last write", () => {
    expect(whenFree(holder({ mode: "transparent", user: "bob" }), { ...LIMITS, quietMs: 1_500 })).toContain("it closes 1.5 s after bob's last write in it");
  });

  it("for an explicit transaction with a member count: when all arrive, or the open time if some are missing", () => {
    expect(whenFree(holder({ mode: "explicit", expectedMembers: 3, timeoutSeconds: 30 }), LIMITS)).toBe(
      "it commits once all 3 of its members have arrived; if some are missing, it rolls back 30 s after it opened; about 15 s more if the kubetx replica coordinating it died",
    );
  });

  it("for an explicit transaction without a count: the quiet window after its last member", () => {
    expect(whenFree(holder({ mode: "explicit" }), LIMITS)).toContain("it closes 3 s after its last member arrives (at most 60 s after it opened)");
  });

  it("for an undo: seconds", () => {
    expect(whenFree(holder({ mode: "undo", undoOf: "t-old00000" }), LIMITS)).toContain("it is an undo, which takes seconds");
  });
});
