import { describe, expect, it } from "vitest";
import type { ObjectRef } from "../../src/kube/types.ts";
import { FakeClock } from "../../src/telemetry/clock.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import type { Intent } from "../../src/transactions/intents.ts";
import { IntentTracker, reachedValidationByLocks, validatedKeys } from "../../src/transactions/intents.ts";
import type { LockRecord } from "../../src/locks/record.ts";

const alice = { username: "alice", groups: ["developers"] };
const configmaps = { group: "", version: "v1", resource: "configmaps", namespace: "demo" };
const GRACE_MS = 500;

function tracker(reached: (intent: Intent) => Promise<boolean> = () => Promise.resolve(false)): { intents: IntentTracker; clock: FakeClock; failed: string[] } {
  const clock = new FakeClock();
  const failed: string[] = [];
  const intents = new IntentTracker({
    clock, logger: silentLogger(), graceMs: GRACE_MS, reachedValidation: reached,
    failRequester: (requester, _manager, reason) => Promise.resolve(void failed.push(`${requester.username}: ${reason}`)),
  });
  return { intents, clock, failed };
}

describe("intents of transparent writes", () => {
  it("a named write observed and then validated fails nothing, although each webhook call has its own uid", async () => {
    const { intents, clock, failed } = tracker();
    const ref = { ...configmaps, name: "web" };
    intents.observe({ requester: alice, ref, operation: "CREATE" });
    intents.validated(validatedKeys(alice, "CREATE", ref, { metadata: { name: "web" } }));
    clock.advance(GRACE_MS);
    await intents.sweep();
    expect(intents.size).toBe(0);
    expect(failed).toEqual([]);
  });

  it("a generateName create is matched by its prefix: observed without a name, validated with the generated one", async () => {
    const { intents, clock, failed } = tracker();
    intents.observe({ requester: alice, ref: { ...configmaps, name: "" }, generateName: "job-", operation: "CREATE" });
    const generated = { ...configmaps, name: "job-x7k2p" };
    intents.validated(validatedKeys(alice, "CREATE", generated, { metadata: { name: "job-x7k2p", generateName: "job-" } }));
    clock.advance(GRACE_MS);
    await intents.sweep();
    expect(failed).toEqual([]);
  });

  it("a write that never reached validation fails the requester's transaction once its grace has passed", async () => {
    const { intents, clock, failed } = tracker();
    intents.observe({ requester: alice, ref: { ...configmaps, name: "bad key" }, operation: "UPDATE" });
    clock.advance(GRACE_MS - 1);
    await intents.sweep();
    expect(failed).toEqual([]);
    clock.advance(1);
    await intents.sweep();
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain("rejected the update of configmaps demo/bad key before it reached kubetx");
    expect(intents.size).toBe(0);
  });

  it("a validation of another object does not cross off a pending write", async () => {
    const { intents, clock, failed } = tracker();
    intents.observe({ requester: alice, ref: { ...configmaps, name: "a" }, operation: "CREATE" });
    intents.validated(validatedKeys(alice, "CREATE", { ...configmaps, name: "b" }, { metadata: { name: "b" } }));
    intents.validated(validatedKeys({ username: "bob" }, "CREATE", { ...configmaps, name: "a" }, { metadata: { name: "a" } }));
    clock.advance(GRACE_MS);
    await intents.sweep();
    expect(failed).toHaveLength(1);
  });

  it("a write whose check the apiserver refused (restarting, RBAC not read yet) is checked again at the next sweep, not forgotten", async () => {
    let answers = 0;
    const { intents, clock, failed } = tracker(() => (answers++ === 0 ? Promise.reject(new Error("403 Forbidden")) : Promise.resolve(false)));
    intents.observe({ requester: alice, ref: { ...configmaps, name: "a" }, operation: "CREATE" });
    intents.observe({ requester: alice, ref: { ...configmaps, name: "b" }, operation: "CREATE" });
    clock.advance(GRACE_MS);
    await expect(intents.sweep()).rejects.toThrow("403 Forbidden");
    expect(failed).toHaveLength(1);
    expect(intents.size).toBe(1);
    await intents.sweep();
    expect(failed).toHaveLength(2);
    expect(failed.join("\n")).toContain("configmaps demo/a");
    expect(intents.size).toBe(0);
  });

  it("a write validated on another replica is not failed", async () => {
    const { intents, clock, failed } = tracker(() => Promise.resolve(true));
    intents.observe({ requester: alice, ref: { ...configmaps, name: "a" }, operation: "CREATE" });
    clock.advance(GRACE_MS);
    await intents.sweep();
    expect(failed).toEqual([]);
  });
});

describe("evidence from locks that a write reached validation", () => {
  const lock = (ref: ObjectRef, user: string): LockRecord => ({
    name: "lk", resourceVersion: "1",
    member: { transaction: "t-00000001", ref, kind: "ConfigMap", operation: "CREATE", user, requestUid: "u", admittedAt: 0 },
  });
  const intent = (name: string, generateName?: string): Intent => ({
    requester: alice, ref: { ...configmaps, name }, operation: "CREATE", observedAt: 0, observedAtWall: 0, ...(generateName ? { generateName } : {}),
  });

  it("a named object counts when its lock is held for the same user", async () => {
    const reached = reachedValidationByLocks({
      read: (ref) => Promise.resolve(ref.name === "a" ? lock(ref, "alice") : undefined),
      locksOf: () => Promise.resolve([]),
    }, () => Promise.resolve(undefined));
    expect(await reached(intent("a"))).toBe(true);
    expect(await reached(intent("b"))).toBe(false);
  });

  it("a generated name counts when the requester's transaction holds a create with that prefix", async () => {
    const reached = reachedValidationByLocks({
      read: () => Promise.resolve(undefined),
      locksOf: (tx) => Promise.resolve(tx === "t-00000001" ? [lock({ ...configmaps, name: "job-x7k2p" }, "alice")] : []),
    }, () => Promise.resolve("t-00000001"));
    expect(await reached(intent("", "job-"))).toBe(true);
    expect(await reached(intent("", "cron-"))).toBe(false);
  });
});
