/** The policy's per-user limits: what a write that would take a new lock is refused for. */
import { describe, expect, it } from "vitest";
import type { UserLimitFacts } from "../../src/transactions/user-limits.ts";
import { userLimitRefusal } from "../../src/transactions/user-limits.ts";

const LIMITS = { maxOpenTransactionsPerUser: 2, maxLocksPerUser: 5 };

function facts(over: Partial<UserLimitFacts> & { open?: string[]; locks?: number }): UserLimitFacts {
  return {
    user: "alice", transaction: "t-new00001", alreadyOpen: false, limits: LIMITS,
    usage: { locks: over.locks ?? 0, transactions: new Set(over.open ?? []) },
    ...over,
  };
}

describe("per-user limits", () => {
  it("lets a user open transactions up to the limit", () => {
    expect(userLimitRefusal(facts({ open: ["t-aaaaaaaa"], locks: 1 }))).toBeUndefined();
  });

  it("refuses the transaction one past maxOpenTransactionsPerUser, naming the limit and the way out", () => {
    const refusal = userLimitRefusal(facts({ open: ["t-aaaaaaaa", "t-bbbbbbbb"], locks: 2 }));
    expect(refusal?.message).toBe("alice already has 2 open transactions, the TransactionPolicy's limit (maxOpenTransactionsPerUser: 2); " +
      "wait until some of them commit or roll back ('kubectl tx list'), or ask an admin to raise the limit. Transaction t-new00001 will roll back.");
    expect(refusal?.failure).toContain("maxOpenTransactionsPerUser");
  });

  it("lets a transaction already open take more locks while the user is at the open-transaction limit", () => {
    expect(userLimitRefusal(facts({ transaction: "t-bbbbbbbb", open: ["t-aaaaaaaa", "t-bbbbbbbb"], locks: 2 }))).toBeUndefined();
  });

  it("counts a transaction as open when it holds a lock the cached list does not show yet", () => {
    expect(userLimitRefusal(facts({ alreadyOpen: true, open: ["t-aaaaaaaa", "t-bbbbbbbb"], locks: 2 }))).toBeUndefined();
  });

  it("refuses the lock one past maxLocksPerUser, naming the limit", () => {
    const refusal = userLimitRefusal(facts({ transaction: "t-aaaaaaaa", open: ["t-aaaaaaaa"], locks: 5 }));
    expect(refusal?.message).toContain("alice's transactions already hold 5 locks, the TransactionPolicy's limit (maxLocksPerUser: 5)");
    expect(refusal?.message).toMatch(/Transaction t-aaaaaaaa will roll back\.$/);
    expect(userLimitRefusal(facts({ transaction: "t-aaaaaaaa", open: ["t-aaaaaaaa"], locks: 4 }))).toBeUndefined();
  });
});
