/**
 * A later write of a member that leaves its annotation as it was (kubectl
 * apply --server-side's migration calls) continues the requester's open
 * named transaction that holds the object, and only that.
 */
import { describe, expect, it } from "vitest";
import type { ContinuedDeps } from "../../src/admission/continued.ts";
import { carriedTransaction, continuedScope } from "../../src/admission/continued.ts";
import type { Scope } from "../../src/admission/scope.ts";
import type { ObjectRef } from "../../src/kube/types.ts";
import type { LockRecord } from "../../src/locks/record.ts";
import type { Mode, Phase, Transaction } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";
import { settingsWrite } from "../support/admission-requests.ts";

const TX = "t-0a1b2c3d";
const REF: ObjectRef = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" };

function record(options: { mode?: Mode; user?: string; phase?: Phase; failure?: string } = {}): Transaction {
  const tx = newTransaction(TX, { user: options.user ?? "alice", mode: options.mode ?? "plugin" });
  return { ...tx, status: { phase: options.phase ?? "Open", ...(options.failure ? { failure: options.failure } : {}) } };
}

function lockOf(transaction: string): LockRecord {
  return { name: "lk-x", resourceVersion: "7", member: { transaction, ref: REF, kind: "ConfigMap", operation: "UPDATE", user: "alice", requestUid: "r", admittedAt: 0 } };
}

/** Caches holding `tx` and the object's lock, counting lookups. */
function caches(tx: Transaction | undefined, lock: LockRecord | undefined): ContinuedDeps & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    records: { lookup: (id) => { reads.push(`record ${id}`); return Promise.resolve(tx); } },
    locks: { lockNow: () => { reads.push("lock"); return Promise.resolve(lock); } },
  };
}

const TRANSPARENT: Scope = { kind: "transparent" };

describe("carriedTransaction", () => {
  it("is the annotation an update leaves as it was", () => {
    expect(carriedTransaction(settingsWrite("UPDATE", { now: TX, before: TX }))).toBe(TX);
  });
  it("is nothing for an update that sets or changes it, removes it, or opts out, and for creates and deletes", () => {
    expect(carriedTransaction(settingsWrite("UPDATE", { now: TX, before: undefined }))).toBeUndefined();
    expect(carriedTransaction(settingsWrite("UPDATE", { now: TX, before: "t-99999999" }))).toBeUndefined();
    expect(carriedTransaction(settingsWrite("UPDATE", { now: undefined, before: TX }))).toBeUndefined();
    expect(carriedTransaction(settingsWrite("UPDATE", { now: "none", before: "none" }))).toBeUndefined();
    expect(carriedTransaction(settingsWrite("UPDATE", { now: undefined, before: undefined }))).toBeUndefined();
    expect(carriedTransaction(settingsWrite("CREATE", { now: TX, before: undefined }))).toBeUndefined();
    expect(carriedTransaction(settingsWrite("DELETE", { now: undefined, before: TX }))).toBeUndefined();
  });
});

describe("continuedScope", () => {
  it("continues the requester's open kubectl tx or explicit transaction that holds the object, with its record", async () => {
    for (const mode of ["plugin", "explicit"] as const) {
      const tx = record({ mode });
      for (const scope of [TRANSPARENT, { kind: "session-only" } as const]) {
        expect(await continuedScope(settingsWrite("UPDATE", { now: TX, before: TX }), scope, REF, caches(tx, lockOf(TX)))).toEqual({ kind: "explicit", transaction: TX, record: tx });
      }
    }
  });

  it("keeps the write's own scope when the transaction is another user's, transparent, closing, failing or gone", async () => {
    const cases = [record({ user: "bob" }), record({ mode: "transparent" }), record({ phase: "Committed" }), record({ phase: "RollingBack" }), record({ failure: "a member failed" }), undefined];
    for (const tx of cases) expect(await continuedScope(settingsWrite("UPDATE", { now: TX, before: TX }), TRANSPARENT, REF, caches(tx, lockOf(TX)))).toBeUndefined();
  });

  it("keeps it when the object's lock is not the transaction's (another one's, or none seen yet), reading the lock only for an open transaction", async () => {
    expect(await continuedScope(settingsWrite("UPDATE", { now: TX, before: TX }), TRANSPARENT, REF, caches(record(), lockOf("t-99999999")))).toBeUndefined();
    expect(await continuedScope(settingsWrite("UPDATE", { now: TX, before: TX }), TRANSPARENT, REF, caches(record(), undefined))).toBeUndefined();
    const closed = caches(record({ phase: "Committed" }), lockOf(TX));
    await continuedScope(settingsWrite("UPDATE", { now: TX, before: TX }), TRANSPARENT, REF, closed);
    expect(closed.reads).toEqual([`record ${TX}`]);
  });

  it("looks at nothing for a write that names its transaction, passes, or carries no annotation", async () => {
    const none = caches(record(), lockOf(TX));
    expect(await continuedScope(settingsWrite("UPDATE", { now: TX, before: TX }), { kind: "explicit", transaction: TX }, REF, none)).toBeUndefined();
    expect(await continuedScope(settingsWrite("UPDATE", { now: TX, before: TX }), { kind: "pass", reason: "subresource" }, REF, none)).toBeUndefined();
    expect(await continuedScope(settingsWrite("UPDATE", { now: undefined, before: undefined }), TRANSPARENT, REF, none)).toBeUndefined();
    expect(none.reads).toEqual([]);
  });
});
