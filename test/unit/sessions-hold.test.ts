/**
 * Which transaction a requester's next plain write joins: an open or
 * rolling-back transparent one keeps it; a resolved failed one keeps it only
 * for a quiet window after a refusal the resolver may not have seen
 * (chaos F16), and never for long; and which field managers are one tool.
 */
import { describe, expect, it } from "vitest";
import type { Phase, Transaction } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";
import { sameTool } from "../../src/transactions/grouping.ts";
import { joinable, MAX_REFUSING_AFTER_MS, takesOver } from "../../src/transactions/sessions.ts";

const NOW = Date.parse("2026-11-30T12:00:00Z");
const HOLD = { nowMs: NOW, quietMs: 3_000 };
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

function record(mode: "transparent" | "explicit" | "plugin", phase: Phase, status: Partial<NonNullable<Transaction["status"]>> = {}): Transaction {
  return { ...newTransaction("t-0a1b2c3d", { user: "alice", mode }), status: { phase, ...status } };
}

describe("joinable", () => {
  it("joins a session that has no record yet (a replica is creating it)", () => {
    expect(joinable(undefined, "CREATE", HOLD)).toBe(true);
  });

  it("joins an open or rolling-back transparent transaction", () => {
    expect(joinable(record("transparent", "Open"), "CREATE", HOLD)).toBe(true);
    expect(joinable(record("transparent", "RollingBack"), "UPDATE", HOLD)).toBe(true);
  });

  it("starts afresh after a committed one, however recent", () => {
    expect(joinable(record("transparent", "Committed", { resolvedAt: ago(10), refusedAt: ago(10) }), "CREATE", HOLD)).toBe(false);
  });

  it("starts afresh after a rolled-back one whose last refusal the resolver saw (a quiet window before it ended)", () => {
    expect(joinable(record("transparent", "RolledBack", { resolvedAt: ago(100), refusedAt: ago(3_100) }), "CREATE", HOLD)).toBe(false);
    expect(joinable(record("transparent", "RolledBack", { resolvedAt: ago(100) }), "CREATE", HOLD)).toBe(false);
  });

  it("keeps a rolled-back or failed one for a quiet window after a refusal noted as it ended", () => {
    expect(joinable(record("transparent", "RolledBack", { resolvedAt: ago(500), refusedAt: ago(400) }), "CREATE", HOLD)).toBe(true);
    expect(joinable(record("transparent", "Failed", { resolvedAt: ago(500), refusedAt: ago(2_999) }), "DELETE", HOLD)).toBe(true);
    expect(joinable(record("transparent", "RolledBack", { resolvedAt: ago(500), refusedAt: ago(3_000) }), "CREATE", HOLD)).toBe(false);
  });

  it("stops refusing a minute after the end, however often the requester retries", () => {
    expect(joinable(record("transparent", "RolledBack", { resolvedAt: ago(MAX_REFUSING_AFTER_MS), refusedAt: ago(1) }), "CREATE", HOLD)).toBe(false);
  });

  it("never keeps a transaction the user named once it is resolved", () => {
    expect(joinable(record("explicit", "RolledBack", { resolvedAt: ago(10), refusedAt: ago(10) }), "CREATE", HOLD)).toBe(false);
    expect(joinable(record("plugin", "RolledBack", { resolvedAt: ago(10), refusedAt: ago(10) }), "DELETE", HOLD)).toBe(false);
  });

  it("lets a user-named transaction take only the prune deletes of kubectl tx apply", () => {
    expect(joinable(record("plugin", "Open"), "DELETE", HOLD)).toBe(true);
    expect(joinable(record("plugin", "Open"), "CREATE", HOLD)).toBe(false);
    expect(joinable(record("explicit", "Open"), "DELETE", HOLD)).toBe(false);
  });
});

describe("sameTool", () => {
  it("takes writes with the session's field manager, or with none (deletes), as the same tool's", () => {
    expect(sameTool("kubectl-client-side-apply", "kubectl-client-side-apply")).toBe(true);
    expect(sameTool("kubectl", undefined)).toBe(true);
    expect(sameTool(undefined, "helm")).toBe(true);
  });

  it("takes kubectl's write of last-applied-configuration during a server-side apply as kubectl's, either way round", () => {
    expect(sameTool("kubectl", "kubectl-last-applied")).toBe(true);
    expect(sameTool("kubectl-last-applied", "kubectl")).toBe(true);
  });

  it("takes another field manager as another tool", () => {
    expect(sameTool("kubectl", "kubectl-client-side-apply")).toBe(false);
    expect(sameTool("kubectl-last-applied", "helm")).toBe(false);
    expect(sameTool("kubectl", "my-script")).toBe(false);
  });
});

describe("takesOver", () => {
  it("lets the same user's write of another tool continue her open transparent transaction with no failure that holds its object", () => {
    expect(takesOver(record("transparent", "Open"), "alice")).toBe(true);
  });

  it("leaves a transaction that is closing, failing or ended, or one the user named, to today's answer", () => {
    expect(takesOver(undefined, "alice")).toBe(false);
    expect(takesOver(record("transparent", "Verifying"), "alice")).toBe(false);
    expect(takesOver(record("transparent", "RollingBack"), "alice")).toBe(false);
    expect(takesOver(record("transparent", "Open", { failure: "a write failed" }), "alice")).toBe(false);
    expect(takesOver(record("transparent", "Committed"), "alice")).toBe(false);
    expect(takesOver(record("explicit", "Open"), "alice")).toBe(false);
    expect(takesOver(record("plugin", "Open"), "alice")).toBe(false);
  });

  it("lets no other user continue it", () => {
    expect(takesOver(record("transparent", "Open"), "bob")).toBe(false);
  });
});
