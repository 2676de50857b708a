/**
 * Which replica coordinates a transaction: the holder of its heartbeat
 * Lease, as client-go's leader election decides a leader. The lock
 * interface (read, create, write) is kept apart from this loop, as client-go
 * keeps resourcelock apart from leaderelection, so it is tested with an
 * in-memory lock.
 *
 * Expiry is judged on this process's monotonic clock from when it observed
 * the last renewal, never by comparing another machine's timestamps. A
 * coordinator that has not renewed for a lease duration on its own clock
 * stops acting (`leading` turns false): another replica may have taken over.
 */
import { ExpiryTracker } from "../locks/expiry.ts";
import { heartbeatName } from "../locks/record.ts";
import type { Heartbeat } from "../locks/store.ts";
import { Conflict } from "../kube/errors.ts";
import type { Clock } from "../telemetry/clock.ts";

export interface HeartbeatLock {
  readHeartbeat(transaction: string): Promise<Heartbeat | undefined>;
  /** Undefined when another replica created it first. */
  createHeartbeat(transaction: string, holder: string, nowMs: number): Promise<Heartbeat | undefined>;
  /** Throws Conflict when the lease changed since `previous` was read. */
  writeHeartbeat(previous: Heartbeat, holder: string, nowMs: number): Promise<Heartbeat>;
}

export interface ElectionOptions {
  readonly lock: HeartbeatLock;
  readonly clock: Clock;
  readonly identity: string;
  /** The lease duration (the policy's lock TTL), in ms; it may change. */
  readonly leaseMs: () => number;
  /** How often the resolver comes round: renewals are never more frequent. */
  readonly periodMs: number;
}

/** `taken-over`: this replica just took the transaction from one that stopped renewing. */
export type Coordination = "mine" | "taken-over" | "other";

/** Like client-go's leader election: a heartbeat renews several times per lease duration, whatever a policy says. */
export function renewEveryMs(leaseMs: number, periodMs: number): number {
  return Math.max(periodMs, leaseMs / 3);
}

export class Election {
  private readonly o: ElectionOptions;
  private readonly expiry: ExpiryTracker;
  /** When this process last renewed (or took) each heartbeat it holds, on its monotonic clock. */
  private readonly renewedAt = new Map<string, number>();

  constructor(options: ElectionOptions) {
    this.o = options;
    this.expiry = new ExpiryTracker(options.clock);
  }

  /** Holds, creates, renews or takes over the transaction's heartbeat, and says whether this replica coordinates it. */
  async coordinate(id: string): Promise<Coordination> {
    const heartbeat = await this.o.lock.readHeartbeat(id);
    if (!heartbeat) return this.create(id);
    if (heartbeat.holder === this.o.identity) return this.renew(id, heartbeat);
    if (!this.expiry.expired(heartbeatName(id), heartbeat.resourceVersion, this.o.leaseMs())) return "other";
    return (await this.write(heartbeat)) ? "taken-over" : "other";
  }

  /**
   * True while this replica's last renewal is younger than a lease
   * duration on its own clock: checked before every write it makes as
   * coordinator, so a replica that was paused stops instead of acting on
   * what it decided before the pause.
   */
  leading(id: string): boolean {
    const at = this.renewedAt.get(id);
    return at !== undefined && this.o.clock.monotonic() - at < this.o.leaseMs();
  }

  forget(id: string): void {
    this.renewedAt.delete(id);
    this.expiry.forget(heartbeatName(id));
  }

  /** Drops what it remembers of transactions not in `active`: memory stays bounded by the open transactions. */
  retain(active: ReadonlySet<string>): void {
    for (const id of this.renewedAt.keys()) if (!active.has(id)) this.forget(id);
    this.expiry.retain(new Set([...active].map(heartbeatName)));
  }

  private async renew(id: string, heartbeat: Heartbeat): Promise<Coordination> {
    const at = this.renewedAt.get(id);
    const due = at === undefined || this.o.clock.monotonic() - at >= renewEveryMs(this.o.leaseMs(), this.o.periodMs);
    if (!due) return "mine";
    return (await this.write(heartbeat)) ? "mine" : "other";
  }

  /** The renewal time is taken before the write: a slow write must not stretch the lease on this side. */
  private async write(heartbeat: Heartbeat): Promise<boolean> {
    const started = this.o.clock.monotonic();
    try {
      await this.o.lock.writeHeartbeat(heartbeat, this.o.identity, this.o.clock.now());
      this.renewedAt.set(heartbeat.transaction, started);
      return true;
    } catch (error) {
      if (error instanceof Conflict) return false;
      throw error;
    }
  }

  private async create(id: string): Promise<Coordination> {
    const started = this.o.clock.monotonic();
    if (!(await this.o.lock.createHeartbeat(id, this.o.identity, this.o.clock.now()))) return "other";
    this.renewedAt.set(id, started);
    return "mine";
  }
}
