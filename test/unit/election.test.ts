/** Who coordinates a transaction: the heartbeat election, over an in-memory lock and a fake clock. */
import { describe, expect, it } from "vitest";
import { Conflict } from "../../src/kube/errors.ts";
import type { Heartbeat } from "../../src/locks/store.ts";
import type { HeartbeatLock } from "../../src/resolver/election.ts";
import { Election } from "../../src/resolver/election.ts";
import { FakeClock } from "../../src/telemetry/clock.ts";

const LEASE_MS = 3_000;
const PERIOD_MS = 100;

/** One heartbeat Lease per transaction, with resourceVersions, as the apiserver keeps them; `blocked` makes every write hang up with a Conflict. */
class MemoryLock implements HeartbeatLock {
  readonly leases = new Map<string, Heartbeat>();
  writes = 0;
  private version = 0;

  readHeartbeat(transaction: string): Promise<Heartbeat | undefined> {
    return Promise.resolve(this.leases.get(transaction));
  }

  createHeartbeat(transaction: string, holder: string): Promise<Heartbeat | undefined> {
    if (this.leases.has(transaction)) return Promise.resolve(undefined);
    return Promise.resolve(this.put(transaction, holder));
  }

  writeHeartbeat(previous: Heartbeat, holder: string): Promise<Heartbeat> {
    const current = this.leases.get(previous.transaction);
    if (current?.resourceVersion !== previous.resourceVersion) {
      return Promise.reject(new Conflict({ status: 409, reason: "Conflict", message: "changed", method: "PUT", path: "/leases" }));
    }
    return Promise.resolve(this.put(previous.transaction, holder));
  }

  private put(transaction: string, holder: string): Heartbeat {
    this.version += 1;
    this.writes += 1;
    const lease = { transaction, holder, resourceVersion: String(this.version) };
    this.leases.set(transaction, lease);
    return lease;
  }
}

function replica(lock: MemoryLock, identity: string, clock: FakeClock): Election {
  return new Election({ lock, clock, identity, leaseMs: () => LEASE_MS, periodMs: PERIOD_MS });
}

describe("the heartbeat election", () => {
  it("lets the first replica that sees a transaction coordinate it, and keeps the other out while it renews", async () => {
    const lock = new MemoryLock();
    const clock = new FakeClock();
    const [a, b] = [replica(lock, "a", clock), replica(lock, "b", clock)];
    expect(await a.coordinate("t-1")).toBe("mine");
    expect(await b.coordinate("t-1")).toBe("other");
    for (let i = 0; i < 10; i += 1) {
      clock.advance(LEASE_MS / 2);
      expect(await a.coordinate("t-1")).toBe("mine");
      expect(await b.coordinate("t-1")).toBe("other");
    }
  });

  it("renews only every third of a lease, not on every pass", async () => {
    const lock = new MemoryLock();
    const clock = new FakeClock();
    const a = replica(lock, "a", clock);
    await a.coordinate("t-1");
    const writes = lock.writes;
    clock.advance(LEASE_MS / 3 - 1);
    await a.coordinate("t-1");
    expect(lock.writes).toBe(writes);
    clock.advance(1);
    await a.coordinate("t-1");
    expect(lock.writes).toBe(writes + 1);
  });

  it("lets another replica take over only after it saw the heartbeat unchanged for a whole lease on its own clock", async () => {
    const lock = new MemoryLock();
    const clock = new FakeClock();
    const [a, b] = [replica(lock, "a", clock), replica(lock, "b", clock)];
    await a.coordinate("t-1");
    expect(await b.coordinate("t-1")).toBe("other");
    clock.advance(LEASE_MS);
    expect(await b.coordinate("t-1")).toBe("other");
    clock.advance(1);
    expect(await b.coordinate("t-1")).toBe("taken-over");
    expect(lock.leases.get("t-1")?.holder).toBe("b");
  });

  it("is not fooled by a step of the wall clock into taking over", async () => {
    const lock = new MemoryLock();
    const clock = new FakeClock();
    const [a, b] = [replica(lock, "a", clock), replica(lock, "b", clock)];
    await a.coordinate("t-1");
    await b.coordinate("t-1");
    clock.step(3_600_000);
    expect(await b.coordinate("t-1")).toBe("other");
  });

  it("tells a coordinator that paused past its lease that it no longer leads, and gives it nothing back after the takeover", async () => {
    const lock = new MemoryLock();
    const clock = new FakeClock();
    const [a, b] = [replica(lock, "a", clock), replica(lock, "b", clock)];
    await a.coordinate("t-1");
    await b.coordinate("t-1");
    expect(a.leading("t-1")).toBe(true);
    // a is paused (SIGSTOP, a GC stall): it neither renews nor acts.
    clock.advance(LEASE_MS + 1);
    expect(a.leading("t-1")).toBe(false);
    expect(await b.coordinate("t-1")).toBe("taken-over");
    // a resumes: its next pass finds another holder.
    expect(await a.coordinate("t-1")).toBe("other");
    expect(a.leading("t-1")).toBe(false);
    expect(b.leading("t-1")).toBe(true);
  });

  it("forgets transactions that are no longer open", async () => {
    const lock = new MemoryLock();
    const clock = new FakeClock();
    const a = replica(lock, "a", clock);
    await a.coordinate("t-1");
    await a.coordinate("t-2");
    a.retain(new Set(["t-2"]));
    expect(a.leading("t-1")).toBe(false);
    expect(a.leading("t-2")).toBe(true);
  });
});
