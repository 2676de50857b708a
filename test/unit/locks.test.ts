/** Lease expiry by observation, and the mapping between a lock record and its Lease. */
import { describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { KubeObject, ObjectRef } from "../../src/kube/types.ts";
import { ExpiryTracker } from "../../src/locks/expiry.ts";
import { AlreadyExists } from "../../src/kube/errors.ts";
import type { LeaseCache } from "../../src/locks/store.ts";
import { LockStore } from "../../src/locks/store.ts";
import type { LockRecord, Member } from "../../src/locks/record.ts";
import { HEARTBEAT_ROLE, LOCK_ROLE, closingFromLease, closingLease, heartbeatLease, lockFromLease, lockLease, lockName, userDigest } from "../../src/locks/record.ts";
import { FakeClock, microTime } from "../../src/telemetry/clock.ts";

const TTL_MS = 15_000;

describe("ExpiryTracker", () => {
  it("never counts a lease seen for the first time as expired, however old its own timestamps", () => {
    const tracker = new ExpiryTracker(new FakeClock());
    expect(tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS)).toBe(false);
  });

  it("counts a lease as expired once it stayed unchanged for longer than the duration", () => {
    const clock = new FakeClock();
    const tracker = new ExpiryTracker(clock);
    tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS);
    clock.advance(TTL_MS);
    expect(tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS)).toBe(false);
    clock.advance(1);
    expect(tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS)).toBe(true);
  });

  it("restarts the wait when the lease shows a new resourceVersion (a renewal)", () => {
    const clock = new FakeClock();
    const tracker = new ExpiryTracker(clock);
    tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS);
    clock.advance(TTL_MS - 1);
    expect(tracker.expired("hb-t-0a1b2c3d", "101", TTL_MS)).toBe(false);
    clock.advance(TTL_MS - 1);
    expect(tracker.expired("hb-t-0a1b2c3d", "101", TTL_MS)).toBe(false);
    clock.advance(2);
    expect(tracker.expired("hb-t-0a1b2c3d", "101", TTL_MS)).toBe(true);
  });

  it("tracks each lease on its own", () => {
    const clock = new FakeClock();
    const tracker = new ExpiryTracker(clock);
    tracker.expired("hb-a", "1", TTL_MS);
    clock.advance(TTL_MS + 1);
    expect(tracker.expired("hb-b", "1", TTL_MS)).toBe(false);
    expect(tracker.expired("hb-a", "1", TTL_MS)).toBe(true);
  });

  it("is not fooled by a step of the wall clock: only time that passed counts", () => {
    const clock = new FakeClock();
    const tracker = new ExpiryTracker(clock);
    tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS);
    clock.step(3_600_000);
    expect(tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS)).toBe(false);
    clock.step(-7_200_000);
    clock.advance(TTL_MS + 1);
    expect(tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS)).toBe(true);
  });

  it("treats a forgotten lease as seen for the first time", () => {
    const clock = new FakeClock();
    const tracker = new ExpiryTracker(clock);
    tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS);
    clock.advance(TTL_MS + 1);
    tracker.forget("hb-t-0a1b2c3d");
    expect(tracker.expired("hb-t-0a1b2c3d", "100", TTL_MS)).toBe(false);
  });
});

const WEB: ObjectRef = { group: "apps", version: "v1", resource: "deployments", namespace: "shop", name: "web" };

describe("lockName", () => {
  it("is the same for the same object every time, whatever API version names it", () => {
    expect(lockName(WEB)).toBe(lockName({ ...WEB }));
    expect(lockName({ ...WEB, version: "v1beta1" })).toBe(lockName(WEB));
  });

  it("differs between objects that differ in group, resource, namespace or name", () => {
    const names = new Set([
      lockName(WEB),
      lockName({ ...WEB, group: "extensions" }),
      lockName({ ...WEB, resource: "statefulsets" }),
      lockName({ ...WEB, namespace: "other" }),
      lockName({ ...WEB, name: "api" }),
      lockName({ group: "", version: "v1", resource: "namespaces", name: "shop" }),
    ]);
    expect(names.size).toBe(6);
  });

  it("is a valid DNS label even for the longest object names", () => {
    const long = { ...WEB, namespace: "n".repeat(63), name: `${"x".repeat(250)}.example` };
    for (const ref of [WEB, long]) {
      const name = lockName(ref);
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
    }
  });
});

describe("lock Lease", () => {
  const member: Member = {
    transaction: "t-0a1b2c3d",
    ref: WEB,
    kind: "Deployment",
    operation: "UPDATE",
    user: "alice",
    requestUid: "req-1",
    admittedAt: Date.UTC(2026, 0, 1, 12, 0, 0, 123),
    oldResourceVersion: "41",
    admittedDigest: "abc",
  };

  it("reads back the member it was written for", () => {
    const lease = lockLease(member, 15);
    lease.metadata = { ...lease.metadata, resourceVersion: "99" };
    expect(lockFromLease(lease)).toEqual({ name: lockName(WEB), resourceVersion: "99", member });
  });

  it("is held by the transaction, labelled as a lock of it and of its user, and lasts the TTL", () => {
    const lease = lockLease(member, 15);
    expect(lease.metadata?.labels).toEqual({ "kubetx.io/role": LOCK_ROLE, "kubetx.io/transaction": "t-0a1b2c3d", "kubetx.io/user": userDigest(member.user) });
    // A user name with characters a label value cannot hold still makes a valid one.
    expect(userDigest("system:serviceaccount:ci:deployer@example.com")).toMatch(/^[0-9a-f]{40}$/);
    expect(lease.spec).toEqual({
      holderIdentity: "t-0a1b2c3d", leaseDurationSeconds: 15,
      acquireTime: "2026-01-01T12:00:00.123000Z", renewTime: "2026-01-01T12:00:00.123000Z",
    });
  });

  it("is not read as a lock when it is someone else's Lease", () => {
    const foreign = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "kube-scheduler", resourceVersion: "5" }, spec: { holderIdentity: "node-1" } };
    expect(lockFromLease(foreign)).toBeUndefined();
  });

  it("is not read as a lock when its member annotation is not JSON", () => {
    const garbled = { metadata: { name: lockName(WEB), annotations: { "kubetx.io/member": "{not json" } } };
    expect(lockFromLease(garbled)).toBeUndefined();
  });
});

describe("microTime", () => {
  it("writes exactly six fractional digits, as the apiserver requires", () => {
    expect(microTime(Date.UTC(2026, 4, 17, 8, 9, 10, 7))).toBe("2026-05-17T08:09:10.007000Z");
    expect(microTime(Date.UTC(2026, 4, 17, 8, 9, 10, 0))).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it("reads back as the same instant", () => {
    const ms = Date.UTC(2026, 4, 17, 8, 9, 10, 999);
    expect(Date.parse(microTime(ms))).toBe(ms);
  });
});

describe("heartbeatLease", () => {
  it("names the transaction, is held by the coordinating replica and is labelled as a heartbeat", () => {
    const now = Date.UTC(2026, 0, 1, 0, 0, 5, 500);
    expect(heartbeatLease("t-0a1b2c3d", "replica-1", 15, now)).toEqual({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "hb-t-0a1b2c3d", labels: { "kubetx.io/role": HEARTBEAT_ROLE, "kubetx.io/transaction": "t-0a1b2c3d" } },
      spec: { holderIdentity: "replica-1", leaseDurationSeconds: 15, acquireTime: "2026-01-01T00:00:05.500000Z", renewTime: "2026-01-01T00:00:05.500000Z" },
    });
  });
});

/** A Lease cache over `leases` at `revision`, which reaches nothing later. */
function cacheOf(leases: readonly KubeObject[], at: { ready: boolean; revision: string }): LeaseCache {
  return {
    ...at,
    values: () => leases.values(),
    get: (name) => leases.find((l) => l.metadata?.name === name),
    reached: (revision) => Promise.resolve(BigInt(revision) <= BigInt(at.revision || "0")),
  };
}

const lockOf = (user: string, transaction: string, name: string): KubeObject =>
  lockLease({ transaction, ref: { ...WEB, name }, kind: "Deployment", operation: "UPDATE", user, requestUid: name, admittedAt: 0 }, 15);

describe("a user's locks, for the per-user limits", () => {

  it("are counted from this process's Lease cache once it has synced, with no apiserver call on the request path", async () => {
    const calls: string[] = [];
    const client = { get: (path: string) => (calls.push(path), Promise.reject(new Error("no apiserver here"))) } as unknown as KubeClient;
    const leases = [lockOf("alice", "t-1", "a"), lockOf("alice", "t-2", "b"), lockOf("bob", "t-3", "c"), heartbeatLease("t-1", "replica-1", 15, 0)];
    const store = new LockStore({ client, namespace: "kubetx-system", ttlSeconds: () => 15, cache: cacheOf(leases, { ready: true, revision: "42" }) });
    const held = await store.heldBy("alice");
    expect(held.locks).toBe(2);
    expect([...held.transactions].sort()).toEqual(["t-1", "t-2"]);
    expect(calls).toEqual([]);
  });

  it("are listed from the apiserver while the cache has not synced", async () => {
    const calls: string[] = [];
    const client = { get: (path: string) => (calls.push(path), Promise.resolve({ items: [lockOf("alice", "t-1", "a")] })) } as unknown as KubeClient;
    const store = new LockStore({ client, namespace: "kubetx-system", ttlSeconds: () => 15, cache: cacheOf([], { ready: false, revision: "" }) });
    expect((await store.heldBy("alice")).locks).toBe(1);
    expect(calls).toHaveLength(1);
  });
});

describe("a transaction's locks as the resolver counts them", () => {
  it("come from the synced cache with the revision it reflects, and no apiserver call", async () => {
    const calls: string[] = [];
    const client = { get: (path: string) => (calls.push(path), Promise.reject(new Error("no apiserver here"))) } as unknown as KubeClient;
    const leases = [lockOf("alice", "t-1", "a"), lockOf("alice", "t-1", "b"), lockOf("bob", "t-2", "c"), heartbeatLease("t-1", "replica-1", 15, 0)];
    const store = new LockStore({ client, namespace: "kubetx-system", ttlSeconds: () => 15, cache: cacheOf(leases, { ready: true, revision: "1234" }) });
    const counted = await store.countLocks("t-1");
    expect(counted.revision).toBe("1234");
    expect(counted.locks.map((l) => l.member.ref.name).sort()).toEqual(["a", "b"]);
    expect(calls).toEqual([]);
  });

  it("come from the apiserver's watch cache, with that list's revision, while this process's has not synced", async () => {
    const asked: unknown[] = [];
    const client = { get: (_path: string, options: unknown) => (asked.push(options), Promise.resolve({ metadata: { resourceVersion: "77" }, items: [lockOf("alice", "t-1", "a")] })) } as unknown as KubeClient;
    const store = new LockStore({ client, namespace: "kubetx-system", ttlSeconds: () => 15, cache: cacheOf([], { ready: false, revision: "" }) });
    const counted = await store.countLocks("t-1");
    expect(counted).toMatchObject({ revision: "77", locks: [expect.objectContaining({ member: expect.objectContaining({ transaction: "t-1" }) as unknown })] });
    expect(asked).toEqual([{ query: expect.objectContaining({ resourceVersion: "0" }) as unknown }]);
  });
});

describe("a transaction's closing mark, as admission reads it after taking a lock", () => {
  const noApiserver = { get: () => Promise.reject(new Error("no apiserver here")) } as unknown as KubeClient;
  const withVersion = (lease: KubeObject, resourceVersion: string): KubeObject => ({ ...lease, metadata: { ...lease.metadata, resourceVersion } });
  const lock = (resourceVersion: string): LockRecord => ({ name: "lk-a", resourceVersion, member: { transaction: "t-1", ref: { ...WEB, name: "a" }, kind: "Deployment", operation: "UPDATE", user: "alice", requestUid: "a", admittedAt: 0 } });
  const mark = (resourceVersion: string): KubeObject => withVersion(closingLease("t-1", "replica-1", { next: "Verifying", reason: "QuietWindowPassed" }), resourceVersion);
  const store = (leases: KubeObject[], revision: string): LockStore =>
    new LockStore({ client: noApiserver, namespace: "kubetx-system", ttlSeconds: () => 15, cache: cacheOf(leases, { ready: true, revision }) });

  it("says the close began first when the mark is older than the lock", async () => {
    expect(await store([mark("90"), withVersion(lockOf("alice", "t-1", "a"), "100")], "100").closedBefore(lock("100"))).toBe(true);
  });

  it("says it did not when the mark came after the lock, or there is none", async () => {
    expect(await store([mark("110"), withVersion(lockOf("alice", "t-1", "a"), "100")], "110").closedBefore(lock("100"))).toBe(false);
    expect(await store([withVersion(lockOf("alice", "t-1", "a"), "100")], "100").closedBefore(lock("100"))).toBe(false);
  });

  it("cannot say while the cache has not reached the lock, nor without a synced cache: the caller reads the record", async () => {
    expect(await store([mark("90")], "99").closedBefore(lock("100"))).toBeUndefined();
    const unsynced = new LockStore({ client: noApiserver, namespace: "kubetx-system", ttlSeconds: () => 15, cache: cacheOf([], { ready: false, revision: "" }) });
    expect(await unsynced.closedBefore(lock("100"))).toBeUndefined();
  });

  it("keeps the first decision to close, with what it was decided on, when a second replica marks it again; read afresh, not from a cache that lags", async () => {
    const basis = { lastActivity: "req-7/replica-1/1234", countedAt: "88" };
    const first = withVersion(closingLease("t-1", "replica-1", { next: "Verifying", reason: "QuietWindowPassed", basis }), "90");
    const client = {
      create: () => Promise.reject(new AlreadyExists({ status: 409, reason: "AlreadyExists", message: "exists", method: "POST", path: "/leases" })),
      get: () => Promise.resolve(first),
    } as unknown as KubeClient;
    const again = new LockStore({ client, namespace: "kubetx-system", ttlSeconds: () => 15, cache: cacheOf([], { ready: true, revision: "80" }) });
    expect(await again.markClosing("t-1", "replica-2", { next: "RollingBack", reason: "Timeout", message: "late" })).toEqual({ next: "Verifying", reason: "QuietWindowPassed", basis });
    expect(await again.closingMark("t-1")).toBeUndefined();
    expect(await again.closingMark("t-1", { fresh: true })).toEqual({ next: "Verifying", reason: "QuietWindowPassed", basis });
  });

  it("drops a basis it cannot read whole, and keeps the decision", () => {
    const lease = closingLease("t-1", "replica-1", { next: "Verifying", reason: "QuietWindowPassed" });
    lease.metadata = { ...lease.metadata, annotations: { "kubetx.io/closing": JSON.stringify({ next: "Verifying", reason: "QuietWindowPassed", basis: { lastActivity: 7 } }) } };
    expect(closingFromLease(lease)).toEqual({ next: "Verifying", reason: "QuietWindowPassed" });
  });

  it("is read as unreadable, not as absent, when someone garbled it", async () => {
    const garbled = mark("90");
    garbled.metadata = { ...garbled.metadata, annotations: { "kubetx.io/closing": "{not json" } };
    expect(await store([garbled], "90").closingMark("t-1")).toBe("unreadable");
  });
});
