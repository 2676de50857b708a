/**
 * Writes the apiserver refused with Retry-After before kubetx saw them: the
 * client sends them again by itself, so they fail nothing unless no retry
 * gets through (resolver/retries.ts, audit/rules.ts).
 */
import { describe, expect, it } from "vitest";
import { isRetriedByClient } from "../../src/audit/rules.ts";
import { findingOf } from "../../src/admission/audit-events.ts";
import type { RetriesSeen } from "../../src/resolver/retries.ts";
import { RETRY_WAIT_MS, awaitedRetries, judgeRetries } from "../../src/resolver/retries.ts";
import { newTransaction } from "../../src/transactions/model.ts";

const LOCK_A = `lk-${"a".repeat(40)}`;
const LOCK_B = `lk-${"b".repeat(40)}`;
const write = (receivedAt: string) => ({ receivedAt, reason: "the apiserver rejected the create of configmaps shop/a before it reached kubetx (429: too many requests)" });

describe("which refused writes the client retries by itself", () => {
  it("is a 429, or any answer with Retry-After", () => {
    expect(isRetriedByClient({ code: 429 })).toBe(true);
    expect(isRetriedByClient({ code: 504, retryAfterSeconds: 1 })).toBe(true);
    expect(isRetriedByClient({ code: 422 })).toBe(false);
    expect(isRetriedByClient({ code: 500, retryAfterSeconds: 0 })).toBe(false);
  });

  it("reads Retry-After from the audit event's status details", () => {
    const event = (responseStatus: Record<string, unknown>): unknown => ({
      stage: "ResponseComplete", verb: "create", auditID: "a-1", user: { username: "alice" }, requestURI: "/api/v1/namespaces/shop/configmaps",
      objectRef: { resource: "configmaps", namespace: "shop", name: "a", apiVersion: "v1" }, responseStatus,
      requestReceivedTimestamp: "2026-12-03T10:00:00.000000Z", stageTimestamp: "2026-12-03T10:00:00.001000Z",
    });
    expect(findingOf(event({ code: 429, message: "Too many requests, please try again later." }))).toMatchObject({ kind: "rejected", retried: true });
    expect(findingOf(event({ code: 403, message: "slow down", details: { retryAfterSeconds: 2 } }))).toMatchObject({ kind: "rejected", retried: true });
    expect(findingOf(event({ code: 403, message: "forbidden", details: { retryAfterSeconds: "2" } }))).not.toHaveProperty("retried");
  });

  it("makes a member's own request refused so a write to wait for, not a failure", () => {
    const member = (responseStatus: Record<string, unknown>): unknown => ({
      stage: "ResponseComplete", verb: "patch", auditID: "a-2", user: { username: "alice" }, requestURI: "/api/v1/namespaces/shop/configmaps/a",
      objectRef: { resource: "configmaps", namespace: "shop", name: "a", apiVersion: "v1" }, responseStatus,
      annotations: { "validate.kubetx.io/transaction": "t-0a1b2c3d", "validate.kubetx.io/decision": "member", "validate.kubetx.io/lock": LOCK_A },
      requestReceivedTimestamp: "2026-12-03T10:00:00.000000Z", stageTimestamp: "2026-12-03T10:00:00.001000Z",
    });
    const throttled = findingOf(member({ code: 429, message: "slow down", details: { retryAfterSeconds: 1 } }));
    expect(throttled).toMatchObject({ kind: "member", lock: LOCK_A, code: 429, retrying: { admitted: true, receivedAt: "2026-12-03T10:00:00.000000Z" } });
    expect(throttled).not.toHaveProperty("failure");
    expect(findingOf(member({ code: 403, message: "no" }))).toMatchObject({ kind: "member", failure: expect.stringContaining("403: no") as unknown });
  });
});

describe("waiting for a retry", () => {
  const tx = { ...newTransaction("t-0a1b2c3d", { user: "alice", mode: "transparent" }), status: { phase: "Open" as const, retrying: { [LOCK_A]: write("2026-12-03T10:00:00Z"), [LOCK_B]: write("2026-12-03T10:00:01Z") } } };

  it("waits only for objects no member has written yet", () => {
    expect([...awaitedRetries(tx, new Set([LOCK_B])).keys()]).toEqual([LOCK_A]);
    expect(awaitedRetries(tx, new Set([LOCK_A, LOCK_B])).size).toBe(0);
  });

  it("waits for a member's own refused request until a request of that member succeeded", () => {
    const member = { ...tx, status: { phase: "Open" as const, retrying: { [LOCK_A]: { ...write("2026-12-03T10:00:00Z"), admitted: true } } } };
    expect([...awaitedRetries(member, new Set([LOCK_A])).keys()]).toEqual([LOCK_A]);
    expect(awaitedRetries({ ...member, status: { ...member.status, persisted: { [LOCK_A]: true } } }, new Set([LOCK_A])).size).toBe(0);
  });

  it("waits from the last refusal it saw, and fails once a retry is overdue", () => {
    const seen: RetriesSeen = new Map();
    expect(judgeRetries(awaitedRetries(tx, new Set()), seen, 1_000)).toEqual({ waiting: true });
    expect(judgeRetries(awaitedRetries(tx, new Set()), seen, 1_000 + RETRY_WAIT_MS - 1)).toEqual({ waiting: true });
    const overdue = judgeRetries(awaitedRetries(tx, new Set()), seen, 1_000 + RETRY_WAIT_MS);
    expect(overdue.waiting).toBe(false);
    expect(overdue.givenUp).toMatch(/429: too many requests\); kubectl sends such a write again by itself, but no retry of it got through within 35 s/);
  });

  it("starts the wait again when the client is refused again (a newer refusal of the object)", () => {
    const seen: RetriesSeen = new Map();
    judgeRetries(awaitedRetries(tx, new Set([LOCK_B])), seen, 0);
    const again = { ...tx, status: { ...tx.status, retrying: { [LOCK_A]: write("2026-12-03T10:00:09Z") } } };
    expect(judgeRetries(awaitedRetries(again, new Set()), seen, RETRY_WAIT_MS)).toEqual({ waiting: true });
    expect(judgeRetries(awaitedRetries(again, new Set()), seen, 2 * RETRY_WAIT_MS).givenUp).toBeDefined();
  });

  it("forgets a write once a member wrote its object", () => {
    const seen: RetriesSeen = new Map();
    judgeRetries(awaitedRetries(tx, new Set()), seen, 0);
    expect(judgeRetries(awaitedRetries(tx, new Set([LOCK_A, LOCK_B])), seen, 10 * RETRY_WAIT_MS)).toEqual({ waiting: false });
    expect(seen.size).toBe(0);
  });
});
