/** The Event kubetx records on each object a rollback touched. */
import { describe, expect, it } from "vitest";
import type { LockRecord } from "../../src/locks/record.ts";
import type { RestoreOutcome } from "../../src/rollback/apply.ts";
import { eventFor } from "../../src/resolver/events.ts";
import type { Transaction } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";

const lock: LockRecord = {
  name: "lk-0",
  resourceVersion: "5",
  member: {
    transaction: "t-0a1b2c3d", ref: { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" },
    kind: "ConfigMap", operation: "UPDATE", user: "alice", requestUid: "req-1", admittedAt: 0,
  },
};

const tx: Transaction = {
  ...newTransaction("t-0a1b2c3d", { user: "alice", mode: "explicit", expectedMembers: 3 }),
  status: { phase: "RolledBack", reason: "Timeout", message: "only 2 of 3 expected members arrived within 60 s" },
};

const restored: RestoreOutcome = { kind: "restored", action: "patch", detail: "restored the pre-image (2 patch operations)" };

describe("eventFor", () => {
  it("records nothing for a member the rollback left unchanged", () => {
    expect(eventFor(tx, lock, { kind: "unchanged", detail: "the update did not persist" })).toBeUndefined();
  });

  it("records nothing when there is no outcome for the member", () => {
    expect(eventFor(tx, lock, undefined)).toBeUndefined();
  });

  it("records nothing for a cluster-scoped object, which has no namespace to hold an Event", () => {
    const clusterScoped: LockRecord = { ...lock, member: { ...lock.member, ref: { group: "", version: "v1", resource: "namespaces", name: "shop" } } };
    expect(eventFor(tx, clusterScoped, restored)).toBeUndefined();
  });

  it("names the transaction, its user and why it rolled back in a TransactionRolledBack event", () => {
    const event = eventFor(tx, lock, restored);
    expect(event?.reason).toBe("TransactionRolledBack");
    expect(event?.message).toBe(
      "kubetx: transaction t-0a1b2c3d (alice) rolled back (Timeout: only 2 of 3 expected members arrived within 60 s); " +
      "this object was restored: restored the pre-image (2 patch operations)",
    );
  });

  it("gives a member's failure as why, not the record's summary of it", () => {
    const failed: Transaction = {
      ...tx, status: { phase: "RollingBack", reason: "MemberFailed", message: "a member failed (see failure), so the transaction's 2 members roll back", failure: "configmaps shop/bad was refused" },
    };
    expect(eventFor(failed, lock, restored)?.message).toMatch(/^kubetx: transaction t-0a1b2c3d \(alice\) rolled back \(MemberFailed: configmaps shop\/bad was refused\); this object/);
  });

  it("falls back to the lock's user when the Transaction record is gone", () => {
    const event = eventFor(undefined, { ...lock, member: { ...lock.member, user: "bob" } }, restored);
    expect(event?.message).toMatch(/^kubetx: transaction t-0a1b2c3d \(bob\) rolled back; this object was restored/);
  });

  it("records a TransactionRestoreFailed event saying why when the object could not be restored", () => {
    const event = eventFor(tx, lock, { kind: "impossible", detail: "the object is being deleted and waits on finalizers [\"example.com/x\"]" });
    expect(event?.reason).toBe("TransactionRestoreFailed");
    expect(event?.message).toContain("could not restore this object: the object is being deleted and waits on finalizers");
    expect(event?.message).toContain("t-0a1b2c3d (alice)");
  });
});
