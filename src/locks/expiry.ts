/**
 * Lease expiry judged by the time this process observed the last renewal,
 * as client-go's leader election does: another machine's clock is never
 * compared with ours. A lease seen for the first time counts as renewed
 * just now, so a new process waits a full duration before taking over.
 */
import type { Clock } from "../telemetry/clock.ts";

interface Observation {
  /** What identifies a renewal: the lease's resourceVersion. */
  readonly version: string;
  readonly observedAt: number;
}

export class ExpiryTracker {
  private readonly clock: Clock;
  private readonly seen = new Map<string, Observation>();

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Records the lease as observed now; returns true when it has not changed for `durationMs`. */
  expired(name: string, version: string, durationMs: number): boolean {
    const now = this.clock.monotonic();
    const previous = this.seen.get(name);
    if (!previous || previous.version !== version) {
      this.seen.set(name, { version, observedAt: now });
      return false;
    }
    return now - previous.observedAt > durationMs;
  }

  forget(name: string): void {
    this.seen.delete(name);
  }

  /** Forgets every lease not named in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const name of this.seen.keys()) if (!keep.has(name)) this.seen.delete(name);
  }
}
