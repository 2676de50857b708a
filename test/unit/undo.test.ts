/**
 * kubectl tx undo, in its pure parts: whether a committed member is still
 * as the transaction left it, which write reverts it, and the refusals that
 * need nothing but the two Transaction records.
 */
import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../src/kube/types.ts";
import type { Member } from "../../src/locks/record.ts";
import type { UndoDeps, UndoStep } from "../../src/resolver/undo.ts";
import { planUndo, undoMember, unchangedSinceCommit } from "../../src/resolver/undo.ts";
import type { MemberOperation, MemberSummary, Phase, Transaction } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";

const REF = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" };
const ORIGINAL_ID = "t-0a1b2c3d";
const UNDO_ID = "t-undo1234";
const NOW = 1_750_000_000_000;

function committed(operation: MemberOperation, extra: Partial<MemberSummary> = {}): MemberSummary {
  return { ...REF, kind: "ConfigMap", operation, outcome: "Committed", ...extra };
}

function live(resourceVersion: string, uid = "uid-1"): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: REF.name, namespace: REF.namespace, uid, resourceVersion } };
}

function step(operation: MemberOperation, liveObject: KubeObject | undefined): UndoStep {
  const original: Member = { transaction: ORIGINAL_ID, ref: REF, kind: "ConfigMap", operation, user: "alice", requestUid: "", admittedAt: 0 };
  return { original, committed: committed(operation), entry: undefined, live: liveObject };
}

describe("unchangedSinceCommit: a created or updated member", () => {
  it.each<MemberOperation>(["CREATE", "UPDATE"])("is unchanged after %s when resourceVersion and uid are as committed", (operation) => {
    expect(unchangedSinceCommit(committed(operation, { uid: "uid-1", resourceVersion: "42" }), live("42", "uid-1"))).toBe(true);
  });

  it.each<MemberOperation>(["CREATE", "UPDATE"])("has changed after %s when someone wrote it since (another resourceVersion)", (operation) => {
    expect(unchangedSinceCommit(committed(operation, { uid: "uid-1", resourceVersion: "42" }), live("43", "uid-1"))).toBe(false);
  });

  it.each<MemberOperation>(["CREATE", "UPDATE"])("has changed after %s when it was deleted and re-created (another uid)", (operation) => {
    expect(unchangedSinceCommit(committed(operation, { uid: "uid-1", resourceVersion: "42" }), live("42", "uid-2"))).toBe(false);
  });

  it.each<MemberOperation>(["CREATE", "UPDATE"])("has changed after %s when it is gone", (operation) => {
    expect(unchangedSinceCommit(committed(operation, { uid: "uid-1", resourceVersion: "42" }), undefined)).toBe(false);
  });

  it("has changed when the commit recorded no resourceVersion to compare with", () => {
    expect(unchangedSinceCommit(committed("UPDATE", { uid: "uid-1" }), live("42", "uid-1"))).toBe(false);
  });

  it("is judged by resourceVersion alone when the commit recorded no uid", () => {
    expect(unchangedSinceCommit(committed("UPDATE", { resourceVersion: "42" }), live("42", "uid-anything"))).toBe(true);
  });
});

describe("unchangedSinceCommit: a deleted member", () => {
  it("is unchanged while the object is still gone", () => {
    expect(unchangedSinceCommit(committed("DELETE"), undefined)).toBe(true);
  });

  it("has changed once an object of that name exists again", () => {
    expect(unchangedSinceCommit(committed("DELETE", { resourceVersion: "42", uid: "uid-1" }), live("50", "uid-9"))).toBe(false);
  });
});

describe("undoMember", () => {
  it("reverts a CREATE with a DELETE guarded by the live resourceVersion", () => {
    expect(undoMember(UNDO_ID, step("CREATE", live("42")), NOW)).toEqual({
      transaction: UNDO_ID, ref: REF, kind: "ConfigMap", operation: "DELETE", user: "alice",
      requestUid: `undo-${UNDO_ID}`, admittedAt: NOW, oldResourceVersion: "42",
    });
  });

  it("reverts an UPDATE with an UPDATE guarded by the live resourceVersion", () => {
    expect(undoMember(UNDO_ID, step("UPDATE", live("43")), NOW)).toMatchObject({ operation: "UPDATE", oldResourceVersion: "43" });
  });

  it("reverts a DELETE with a CREATE, with no resourceVersion since nothing is there", () => {
    const member = undoMember(UNDO_ID, step("DELETE", undefined), NOW);
    expect(member).toMatchObject({ transaction: UNDO_ID, ref: REF, operation: "CREATE" });
    expect(member).not.toHaveProperty("oldResourceVersion");
  });

  it("belongs to the undo transaction, not to the original", () => {
    const member = undoMember(UNDO_ID, step("UPDATE", live("43")), NOW);
    expect(member.transaction).toBe(UNDO_ID);
    expect(member.admittedAt).toBe(NOW);
  });
});

describe("planUndo: refusals from the records alone", () => {
  /** Refusals about the records themselves happen before any read, write or RBAC check. */
  const noDeps = {} as UndoDeps;

  function undoBy(user: string): Transaction {
    return newTransaction(UNDO_ID, { user, mode: "undo", undoOf: ORIGINAL_ID });
  }

  function original(user: string, phase: Phase): Transaction {
    return { ...newTransaction(ORIGINAL_ID, { user, mode: "transparent" }), status: { phase, members: [committed("UPDATE", { resourceVersion: "1" })] } };
  }

  it("refuses to undo a transaction that does not exist", async () => {
    expect(await planUndo(noDeps, undoBy("alice"), undefined)).toEqual({ kind: "refused", message: `transaction ${ORIGINAL_ID} does not exist`, members: [] });
  });

  it("refuses to undo another user's transaction", async () => {
    const plan = await planUndo(noDeps, undoBy("bob"), original("alice", "Committed"));
    expect(plan.kind).toBe("refused");
    expect(plan.kind === "refused" ? plan.message : "").toContain("belongs to alice");
  });

  it.each<Phase>(["Open", "Verifying", "RollingBack", "RolledBack", "Failed"])("refuses to undo a %s transaction", async (phase) => {
    const plan = await planUndo(noDeps, undoBy("alice"), original("alice", phase));
    expect(plan.kind === "refused" ? plan.message : "").toContain(`is ${phase}; only a committed transaction can be undone`);
  });
});
