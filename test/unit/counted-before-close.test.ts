/**
 * A transaction that closed while a write of it was admitted still takes
 * that write when the resolver counted its lock before the close (chaos
 * F22): Verifying, no failure, and the lock no newer than status.countedAt.
 */
import { describe, expect, it } from "vitest";
import { countedBeforeClose } from "../../src/transactions/coordinator.ts";
import type { Phase, Transaction } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";

function closed(phase: Phase, status: Partial<NonNullable<Transaction["status"]>> = {}): Transaction {
  return { ...newTransaction("t-0a1b2c3d", { user: "alice", mode: "explicit", expectedMembers: 2 }), status: { phase, countedAt: "500", ...status } };
}

describe("whether a closed transaction still verifies a lock", () => {
  it("does for a lock the resolver counted before it moved to Verifying", () => {
    expect(countedBeforeClose(closed("Verifying"), { resourceVersion: "499" })).toBe(true);
    expect(countedBeforeClose(closed("Verifying"), { resourceVersion: "500" })).toBe(true);
    // As numbers: "99" is older than "500".
    expect(countedBeforeClose(closed("Verifying"), { resourceVersion: "99" })).toBe(true);
  });

  it("does not for a lock written after the count, which the resolver's list may have missed", () => {
    expect(countedBeforeClose(closed("Verifying"), { resourceVersion: "501" })).toBe(false);
    expect(countedBeforeClose(closed("Verifying"), { resourceVersion: "1000" })).toBe(false);
  });

  it("does not once the transaction failed, rolls back, or resolved, nor without a count both revisions can be compared with", () => {
    for (const phase of ["RollingBack", "RolledBack", "Committed", "Failed", "Open"] as const) {
      expect(countedBeforeClose(closed(phase), { resourceVersion: "1" }), phase).toBe(false);
    }
    expect(countedBeforeClose(closed("Verifying", { failure: "a member failed" }), { resourceVersion: "1" })).toBe(false);
    expect(countedBeforeClose(closed("Verifying", { countedAt: undefined }), { resourceVersion: "1" })).toBe(false);
    expect(countedBeforeClose(closed("Verifying", { countedAt: "" }), { resourceVersion: "1" })).toBe(false);
    expect(countedBeforeClose(closed("Verifying"), { resourceVersion: "" })).toBe(false);
    expect(countedBeforeClose(closed("Verifying"), { resourceVersion: "abc" })).toBe(false);
  });
});
