/**
 * Which ended transaction a failed write (reported by /observe or the
 * audit sink after the fact) belongs to: one it would have rolled back, or
 * the requester's next apply, whose rest must then be refused.
 */
import { describe, expect, it } from "vitest";
import { endedWith } from "../../src/transactions/failures.ts";
import type { Transaction, TransactionStatus } from "../../src/transactions/model.ts";

const QUIET = 2_400;
const CLOSED = Date.parse("2026-12-02T10:00:10.000Z");
const RESOLVED = CLOSED + 150;

function ended(status: TransactionStatus): Transaction {
  return { apiVersion: "kubetx.io/v1alpha1", kind: "Transaction", metadata: { name: "t-1" }, spec: { user: "carol", mode: "transparent" }, status };
}

const committed = ended({ phase: "Committed", closedAt: new Date(CLOSED).toISOString(), resolvedAt: new Date(RESOLVED).toISOString() });
const rolledBack = ended({ phase: "RolledBack", closedAt: new Date(CLOSED).toISOString(), resolvedAt: new Date(RESOLVED).toISOString() });

describe("a failed write reported after the requester's last transaction ended", () => {
  it("belongs to a rolled-back one if it came before the end: counted, or too late to matter; a report sent twice opens nothing", () => {
    expect(endedWith(rolledBack, CLOSED - 5_000, QUIET)).toBe(true);
    expect(endedWith(rolledBack, RESOLVED, QUIET)).toBe(true);
  });

  it("belongs to a committed one only if it came before that one's last quiet window", () => {
    expect(endedWith(committed, CLOSED - QUIET - 1, QUIET)).toBe(true);
  });

  it("is the next apply's when it came in the committed one's last quiet window, as it closed (chaos F23): it opens a failed transaction", () => {
    expect(endedWith(committed, CLOSED - QUIET, QUIET)).toBe(false);
    expect(endedWith(committed, CLOSED + 100, QUIET)).toBe(false);
  });

  it("is the next apply's when it came after the end, or the last one is still open", () => {
    expect(endedWith(committed, RESOLVED + 1, QUIET)).toBe(false);
    expect(endedWith(rolledBack, RESOLVED + 1, QUIET)).toBe(false);
    expect(endedWith(ended({ phase: "Verifying", closedAt: new Date(CLOSED).toISOString() }), CLOSED - 5_000, QUIET)).toBe(false);
    expect(endedWith(undefined, CLOSED, QUIET)).toBe(false);
  });
});
