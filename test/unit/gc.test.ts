/**
 * What the garbage collector may remove, and when: leftovers of resolved
 * transactions, orphans once they stayed so for a while, kept journals and
 * records once their retention passed on this process's own clock.
 */
import { describe, expect, it } from "vitest";
import type { Leftover } from "../../src/resolver/gc.ts";
import { CLOSING_MARK_KEEP_MS, EligibleSince, eligibility, expiredRecords, failedCount, overdueLocks, waitFor } from "../../src/resolver/gc.ts";
import type { MemberSummary, Phase, Transaction } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";

const ID = "t-0a1b2c3d";
const lock: Leftover = { kind: "lock", name: "lk-1234", transaction: ID };
const heartbeat: Leftover = { kind: "heartbeat", name: `hb-${ID}`, transaction: ID };
const journal: Leftover = { kind: "journal", name: `jr-${ID}-1`, transaction: ID };
const session: Leftover = { kind: "session", name: "ss-abc", transaction: ID };
const closing: Leftover = { kind: "closing", name: `cl-${ID}`, transaction: ID };

function transaction(phase: Phase | undefined, id = ID, resolvedAt?: string): Transaction {
  const tx = newTransaction(id, { user: "alice", mode: "transparent" });
  return { ...tx, status: { ...(phase ? { phase } : {}), ...(resolvedAt ? { resolvedAt } : {}) } };
}

describe("eligibility", () => {
  it.each<Phase | undefined>(["Open", "Verifying", "RollingBack", undefined])("keeps everything of a transaction that is %s", (phase) => {
    for (const l of [lock, heartbeat, journal, session]) expect(eligibility(l, transaction(phase))).toBeUndefined();
  });

  it("lets locks, heartbeats, sessions and journals of a rolled-back transaction go at once", () => {
    for (const l of [lock, heartbeat, journal, session]) expect(eligibility(l, transaction("RolledBack"))).toBe("released");
  });

  it("keeps a committed transaction's journal for its retention, for kubectl tx undo", () => {
    expect(eligibility(journal, transaction("Committed"))).toBe("retained");
    expect(eligibility(lock, transaction("Committed"))).toBe("released");
  });

  it("lets a committed transaction's journal go at once when every member's namespace is gone: nothing can be undone into it", () => {
    const committed = (namespaces: string[]): Transaction => {
      const tx = transaction("Committed");
      return { ...tx, status: { ...tx.status, members: namespaces.map((namespace, i): MemberSummary => ({ operation: "UPDATE", outcome: "Committed", group: "", version: "v1", resource: "configmaps", namespace, name: `cm-${i}` })) } };
    };
    const gone = (ns: string): boolean => ns === "deleted" || ns === "also-deleted";
    expect(eligibility(journal, committed(["deleted", "also-deleted"]), gone)).toBe("released");
    // One member still has its namespace, or is cluster-scoped: undo may still restore it.
    expect(eligibility(journal, committed(["deleted", "live"]), gone)).toBe("retained");
    expect(eligibility(journal, committed(["deleted", ""]), gone)).toBe("retained");
    expect(eligibility(journal, committed([]), gone)).toBe("retained");
    // Only the journal of a committed transaction is kept at all; the rest is unchanged.
    expect(eligibility(lock, committed(["deleted"]), gone)).toBe("released");
    expect(eligibility(journal, { ...committed(["deleted"]), status: { ...committed(["deleted"]).status, phase: "Failed" } }, gone)).toBeUndefined();
  });

  it("keeps a Failed transaction's locks, heartbeat and journal for an admin, but not its session", () => {
    for (const l of [lock, heartbeat, journal]) expect(eligibility(l, transaction("Failed"))).toBeUndefined();
    expect(eligibility(session, transaction("Failed"))).toBe("released");
  });

  it("keeps a closing mark while its transaction is unresolved, lets it settle once resolved, and go as an orphan once the record is gone", () => {
    // Admission reads the mark as "no new members": it must outlast any write still being admitted into the transaction.
    for (const phase of ["Open", "Verifying", "RollingBack", undefined] as const) expect(eligibility(closing, transaction(phase))).toBeUndefined();
    for (const phase of ["Committed", "RolledBack", "Failed"] as const) expect(eligibility(closing, transaction(phase))).toBe("settled");
    expect(eligibility(closing, undefined)).toBe("orphan");
  });

  it("treats anything whose transaction has no record as an orphan", () => {
    for (const l of [lock, heartbeat, journal, session]) expect(eligibility(l, undefined)).toBe("orphan");
  });

  it("waits the orphan grace for an orphan, the retention for a kept journal, a while for a settled mark, nothing for a released leftover", () => {
    const waits = { orphanMs: 15_000, retentionMs: 3_600_000, settledMs: CLOSING_MARK_KEEP_MS };
    expect(waitFor("orphan", waits)).toBe(15_000);
    expect(waitFor("retained", waits)).toBe(3_600_000);
    expect(waitFor("settled", waits)).toBe(600_000);
    expect(waitFor("released", waits)).toBe(0);
  });
});

describe("EligibleSince", () => {
  it("lets a thing go only once it has looked eligible for the whole wait, on the clock it is given", () => {
    const since = new EligibleSince();
    expect(since.due("lk-1", 1_000, 500)).toBe(false);
    expect(since.due("lk-1", 1_499, 500)).toBe(false);
    expect(since.due("lk-1", 1_500, 500)).toBe(true);
  });

  it("starts the wait again for a thing it stopped seeing (a transaction created in between, a lagging list)", () => {
    const since = new EligibleSince();
    since.due("lk-1", 1_000, 500);
    since.retain(new Set());
    expect(since.size).toBe(0);
    expect(since.due("lk-1", 1_600, 500)).toBe(false);
  });
});

describe("expiredRecords", () => {
  const records = [
    transaction("Committed", "t-00000001", "2026-03-01T10:00:00Z"),
    transaction("RolledBack", "t-00000002", "2026-03-01T11:00:00Z"),
    transaction("Open", "t-00000003"),
    transaction("Committed", "t-00000004", "2026-03-01T12:00:00Z"),
  ];
  const names = (txs: Transaction[]): string[] => txs.map((tx) => tx.metadata?.name ?? "").sort();

  it("deletes resolved records whose retention has passed, never an open one", () => {
    expect(names(expiredRecords(records, (tx) => tx.metadata?.name !== "t-00000004", 100))).toEqual(["t-00000001", "t-00000002"]);
  });

  it("deletes the oldest resolved records beyond the maximum count, whatever their age", () => {
    expect(names(expiredRecords(records, () => false, 1))).toEqual(["t-00000001", "t-00000002"]);
    expect(names(expiredRecords(records, () => false, 3))).toEqual([]);
  });
});

describe("locks held longer than the policy allows", () => {
  const limits = { maxOpenSeconds: 60, lockTtlSeconds: 15 };
  const opened = Date.parse("2026-12-01T10:00:00Z");
  const at = (seconds: number): number => opened + seconds * 1000;
  function open(id: string, phase: Phase | undefined, spec: Partial<Transaction["spec"]> = {}): Transaction {
    const tx = transaction(phase, id);
    return { ...tx, metadata: { ...tx.metadata, creationTimestamp: new Date(opened).toISOString() }, spec: { ...tx.spec, ...spec } };
  }

  it("counts the locks of a transaction still unresolved past its open limit plus two lock TTLs, and no others", () => {
    const byId = new Map([["t-open", open("t-open", "Open")], ["t-rolling", open("t-rolling", "RollingBack")], ["t-failed", open("t-failed", "Failed")], ["t-done", open("t-done", "Committed")]]);
    const locks = ["t-open", "t-open", "t-rolling", "t-failed", "t-done", "t-orphan"].map((transaction) => ({ transaction }));
    // 60 s open limit + 2 x 15 s: at 90 s still within, past it overdue.
    expect(overdueLocks(locks, byId, at(90), limits)).toBe(0);
    expect(overdueLocks(locks, byId, at(91), limits)).toBe(3);
  });

  it("gives a live kubectl tx apply its own --timeout instead of maxOpenSeconds", () => {
    const plugin = open("t-plugin", "Open", { mode: "plugin", timeoutSeconds: 600, clientHeartbeat: 42 });
    const byId = new Map([["t-plugin", plugin]]);
    expect(overdueLocks([{ transaction: "t-plugin" }], byId, at(629), limits)).toBe(0);
    expect(overdueLocks([{ transaction: "t-plugin" }], byId, at(631), limits)).toBe(1);
  });

  it("counts Failed transactions, which wait for an admin", () => {
    expect(failedCount([transaction("Failed", "t-a"), transaction("RolledBack", "t-b"), transaction("Failed", "t-c"), transaction("Open", "t-d")])).toBe(2);
  });
});
