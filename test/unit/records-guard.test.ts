/**
 * The webhooks that guard kubetx's own objects: a TransactionPolicy is
 * denied with every bad field named, and a Transaction record can only be
 * opened, changed and deleted by its owner (or a cluster admin), who cannot
 * rewrite who owns it.
 */
import { describe, expect, it } from "vitest";
import { guardPolicy } from "../../src/admission/policy-records.ts";
import { MESSAGE_PREFIX } from "../../src/admission/response.ts";
import type { AdmissionRequest, Operation, UserInfo } from "../../src/admission/review.ts";
import { guardTransactionRecord } from "../../src/admission/transaction-records.ts";
import type { KubeObject } from "../../src/kube/types.ts";
import type { TransactionSpec } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";

const TX = "t-0a1b2c3d";
const ALICE: UserInfo = { username: "alice", groups: ["system:authenticated"] };
const BOB: UserInfo = { username: "bob", groups: ["system:authenticated"] };
const ADMIN: UserInfo = { username: "root", groups: ["system:masters", "system:authenticated"] };

function policyRequest(operation: Operation, spec: unknown): AdmissionRequest {
  const object: KubeObject = { apiVersion: "kubetx.io/v1alpha1", kind: "TransactionPolicy", metadata: { name: "shop" }, spec };
  return {
    uid: "req-policy",
    kind: { group: "kubetx.io", version: "v1alpha1", kind: "TransactionPolicy" },
    resource: { group: "kubetx.io", version: "v1alpha1", resource: "transactionpolicies" },
    name: "shop",
    operation,
    userInfo: ADMIN,
    object: operation === "DELETE" ? null : object,
    oldObject: operation === "CREATE" ? null : object,
  };
}

function record(spec: Partial<TransactionSpec> = {}): KubeObject {
  return newTransaction(TX, { user: "alice", mode: "transparent", ...spec });
}

function recordRequest(operation: Operation, userInfo: UserInfo, objects: { object?: KubeObject; oldObject?: KubeObject }): AdmissionRequest {
  return {
    uid: "req-record",
    kind: { group: "kubetx.io", version: "v1alpha1", kind: "Transaction" },
    resource: { group: "kubetx.io", version: "v1alpha1", resource: "transactions" },
    name: TX,
    operation,
    userInfo,
    object: objects.object ?? null,
    oldObject: objects.oldObject ?? null,
  };
}

describe("guardPolicy", () => {
  it("allows a valid policy and copies the request uid back", () => {
    expect(guardPolicy(policyRequest("CREATE", { mode: "explicit", maxMembers: 100 }))).toMatchObject({ uid: "req-policy", allowed: true });
  });

  it("allows an update to a valid policy", () => {
    expect(guardPolicy(policyRequest("UPDATE", {})).allowed).toBe(true);
  });

  it("denies an invalid policy with the kubetx: prefix, the policy name and every bad field", () => {
    const response = guardPolicy(policyRequest("CREATE", { mode: "always", quietWindowSeconds: 0, exemptServiceAccounts: ["deployer"] }));
    expect(response).toMatchObject({ uid: "req-policy", allowed: false, status: { code: 403 } });
    const message = response.status?.message ?? "";
    expect(message.startsWith(`${MESSAGE_PREFIX} TransactionPolicy shop is invalid: `)).toBe(true);
    for (const field of ["spec.mode", "spec.quietWindowSeconds", "spec.exemptServiceAccounts"]) expect(message).toContain(field);
    expect(message).toContain("Fix these fields and apply again");
  });

  it("marks a denial as denied in the audit annotations", () => {
    expect(guardPolicy(policyRequest("UPDATE", { colour: "blue" })).auditAnnotations).toEqual({ decision: "denied" });
  });

  it("denies a policy without a spec", () => {
    const response = guardPolicy(policyRequest("CREATE", undefined));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain("spec: must be an object");
  });

  it("allows any delete, even of a policy that would not validate", () => {
    expect(guardPolicy(policyRequest("DELETE", { mode: "always" }))).toMatchObject({ uid: "req-policy", allowed: true });
  });
});

describe("guardTransactionRecord: opening a transaction", () => {
  it("allows a user to open a transaction in their own name", async () => {
    expect(await guardTransactionRecord(recordRequest("CREATE", ALICE, { object: record() }))).toMatchObject({ uid: "req-record", allowed: true });
  });

  it("denies a user who opens a transaction in another user's name, naming both", async () => {
    const response = await guardTransactionRecord(recordRequest("CREATE", BOB, { object: record({ user: "alice" }) }));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toBe(`${MESSAGE_PREFIX} spec.user of a new transaction must be your own user name 'bob', got 'alice'`);
    expect(response.auditAnnotations).toEqual({ transaction: TX, decision: "denied" });
  });

  it("denies a cluster admin who opens a transaction in another user's name", async () => {
    expect((await guardTransactionRecord(recordRequest("CREATE", ADMIN, { object: record({ user: "alice" }) }))).allowed).toBe(false);
  });

  it("denies an undo that does not say which transaction it undoes", async () => {
    const response = await guardTransactionRecord(recordRequest("CREATE", ALICE, { object: record({ mode: "undo" }) }));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain("spec.undoOf");
  });

  it("allows an undo that names the transaction it undoes", async () => {
    const response = await guardTransactionRecord(recordRequest("CREATE", ALICE, { object: record({ mode: "undo", undoOf: "t-9f8e7d6c" }) }));
    expect(response.allowed).toBe(true);
  });
});

describe("guardTransactionRecord: changing and deleting a transaction", () => {
  it("allows the owner to update their transaction", async () => {
    const response = await guardTransactionRecord(recordRequest("UPDATE", ALICE, { object: record({ clientState: "Applied" }), oldObject: record() }));
    expect(response).toMatchObject({ allowed: true, auditAnnotations: { transaction: TX, decision: "record" } });
  });

  it("allows the owner to renew the heartbeat of their own plugin transaction", async () => {
    const open = record({ mode: "plugin", clientState: "Applying", clientHeartbeat: 4 });
    const response = await guardTransactionRecord(recordRequest("UPDATE", ALICE, { object: record({ mode: "plugin", clientState: "Applying", clientHeartbeat: 5 }), oldObject: open }));
    expect(response).toMatchObject({ allowed: true, auditAnnotations: { transaction: TX, decision: "record" } });
  });

  it("denies another user who would keep someone's transaction alive with its heartbeat", async () => {
    const open = record({ mode: "plugin", clientState: "Applying", clientHeartbeat: 4 });
    const response = await guardTransactionRecord(recordRequest("UPDATE", BOB, { object: record({ mode: "plugin", clientState: "Applying", clientHeartbeat: 5 }), oldObject: open }));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toBe(`${MESSAGE_PREFIX} transaction ${TX} belongs to alice; you may only change your own transactions`);
  });

  it("allows the owner to delete their transaction", async () => {
    expect((await guardTransactionRecord(recordRequest("DELETE", ALICE, { oldObject: record() }))).allowed).toBe(true);
  });

  it("denies another user who updates it, naming the owner", async () => {
    const response = await guardTransactionRecord(recordRequest("UPDATE", BOB, { object: record({ clientState: "Failed" }), oldObject: record() }));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toBe(`${MESSAGE_PREFIX} transaction ${TX} belongs to alice; you may only change your own transactions`);
  });

  it("denies another user who deletes it", async () => {
    expect((await guardTransactionRecord(recordRequest("DELETE", BOB, { oldObject: record() }))).allowed).toBe(false);
  });

  it("allows a member of system:masters to update another user's transaction", async () => {
    expect((await guardTransactionRecord(recordRequest("UPDATE", ADMIN, { object: record({ clientState: "Failed" }), oldObject: record() }))).allowed).toBe(true);
  });

  it("allows a member of system:masters to delete another user's transaction", async () => {
    expect((await guardTransactionRecord(recordRequest("DELETE", ADMIN, { oldObject: record() }))).allowed).toBe(true);
  });

  it("denies the owner who hands the transaction to another user", async () => {
    const response = await guardTransactionRecord(recordRequest("UPDATE", ALICE, { object: record({ user: "bob" }), oldObject: record() }));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain("spec.user and spec.mode of a transaction cannot change");
  });

  it("denies the owner who changes the transaction's mode", async () => {
    const response = await guardTransactionRecord(recordRequest("UPDATE", ALICE, { object: record({ mode: "undo", undoOf: "t-9f8e7d6c" }), oldObject: record() }));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain("cannot change");
  });

  it("denies even a cluster admin who changes the owner", async () => {
    expect((await guardTransactionRecord(recordRequest("UPDATE", ADMIN, { object: record({ user: "root" }), oldObject: record() }))).allowed).toBe(false);
  });
});
