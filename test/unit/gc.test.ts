/**
 * garbage(): which locks, heartbeats and journals a replica that died
 * between resolving a transaction and releasing left behind, and which of
 * them may be deleted now.
 */
import { describe, expect, it } from "vitest";
import type { Leftover } from "../../src/resolver/gc.ts";
import { garbage } from "../../src/resolver/gc.ts";
import type { Phase, Transaction } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";

const ID = "t-0a1b2c3d";
const RESOLVED_AT = Date.parse("2026-03-01T12:00:00Z");
const RETENTION_SECONDS = 3600;
const RETENTION_MS = RETENTION_SECONDS * 1000;

const lock: Leftover = { kind: "lock", name: "lk-1234", transaction: ID };
const heartbeat: Leftover = { kind: "heartbeat", name: `hb-${ID}`, transaction: ID };
const journal: Leftover = { kind: "journal", name: `jr-${ID}-1`, transaction: ID };

/** `resolvedAt: null` leaves it out. */
function transaction(phase: Phase | undefined, resolvedAt: string | null = new Date(RESOLVED_AT).toISOString()): Transaction {
  const tx = newTransaction(ID, { user: "alice", mode: "transparent" });
  return { ...tx, status: { ...(phase ? { phase } : {}), ...(resolvedAt ? { resolvedAt } : {}) } };
}

function collect(leftovers: readonly Leftover[], tx: Transaction | undefined, now = RESOLVED_AT + 1000): Leftover[] {
  const transactions = new Map(tx ? [[ID, tx]] : []);
  return garbage(leftovers, transactions, now, RETENTION_SECONDS);
}

describe("garbage: locks and heartbeats", () => {
  it.each<Phase>(["Open", "Verifying", "RollingBack"])("keeps them while the transaction is %s", (phase) => {
    expect(collect([lock, heartbeat], transaction(phase))).toEqual([]);
  });

  it("keeps them for a transaction without a phase yet, which is open", () => {
    expect(collect([lock, heartbeat], transaction(undefined))).toEqual([]);
  });

  it("keeps them for a Failed transaction, which an admin resolves", () => {
    expect(collect([lock, heartbeat], transaction("Failed"), RESOLVED_AT + 10 * RETENTION_MS)).toEqual([]);
  });

  it.each<Phase>(["Committed", "RolledBack"])("deletes them once the transaction is %s", (phase) => {
    expect(collect([lock, heartbeat], transaction(phase))).toEqual([lock, heartbeat]);
  });

  it("deletes those of a transaction whose record is gone", () => {
    expect(collect([lock, heartbeat], undefined)).toEqual([lock, heartbeat]);
  });
});

describe("garbage: journals", () => {
  it.each<Phase>(["Open", "Verifying", "RollingBack", "Failed"])("keeps the journal of a %s transaction", (phase) => {
    expect(collect([journal], transaction(phase), RESOLVED_AT + 10 * RETENTION_MS)).toEqual([]);
  });

  it("deletes the journal of a RolledBack transaction at once", () => {
    expect(collect([journal], transaction("RolledBack"), RESOLVED_AT)).toEqual([journal]);
  });

  it("keeps the journal of a Committed transaction while its retention runs, for kubectl tx undo", () => {
    expect(collect([journal], transaction("Committed"), RESOLVED_AT + RETENTION_MS - 1)).toEqual([]);
  });

  it("deletes the journal of a Committed transaction once resolvedAt plus the retention has passed", () => {
    expect(collect([journal], transaction("Committed"), RESOLVED_AT + RETENTION_MS)).toEqual([journal]);
  });

  it("deletes the journal of a Committed transaction at once when the retention is 0", () => {
    expect(garbage([journal], new Map([[ID, transaction("Committed")]]), RESOLVED_AT, 0)).toEqual([journal]);
  });

  it("deletes the journal of a Committed transaction that has no resolvedAt", () => {
    expect(collect([journal], transaction("Committed", null), RESOLVED_AT)).toEqual([journal]);
  });

  it("deletes the journal of a transaction whose record is gone", () => {
    expect(collect([journal], undefined)).toEqual([journal]);
  });
});

describe("garbage: several transactions at once", () => {
  it("judges each leftover by its own transaction", () => {
    const open = { ...transaction("Open"), metadata: { name: "t-open0000" } };
    const committed = { ...transaction("Committed"), metadata: { name: "t-done0000" } };
    const transactions = new Map([["t-open0000", open], ["t-done0000", committed]]);
    const leftovers: Leftover[] = [
      { kind: "lock", name: "lk-open", transaction: "t-open0000" },
      { kind: "lock", name: "lk-done", transaction: "t-done0000" },
      { kind: "journal", name: "jr-done", transaction: "t-done0000" },
      { kind: "heartbeat", name: "hb-gone", transaction: "t-gone0000" },
    ];
    expect(garbage(leftovers, transactions, RESOLVED_AT + 1000, RETENTION_SECONDS).map((l) => l.name)).toEqual(["lk-done", "hb-gone"]);
  });
});
