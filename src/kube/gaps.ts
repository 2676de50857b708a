/**
 * When this process last lost its connection to the apiserver, or got it
 * back. A watch or list that fails means the apiserver went away (a
 * restart, a crash): whatever it held only in memory went with it, its
 * audit batch buffer included, so a failed write kubetx would have heard of
 * from the audit sink may never be reported. The resolver asks this before
 * it commits what only the sink could have failed (DESIGN section 4).
 */
import type { Clock } from "../telemetry/clock.ts";

export interface Gap {
  /** Milliseconds since the epoch, to compare with the apiserver's timestamps. */
  readonly wall: number;
  /** On this process's monotonic clock, to compare with what it observed itself. */
  readonly monotonic: number;
}

export class ConnectionGaps {
  private readonly clock: Clock;
  private last: Gap | undefined;
  private broken = 0;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** A watch or list failed: the connection is down, or was. */
  broke(): void {
    this.broken += 1;
    this.mark();
  }

  /** A cache that had failed listed again: the gap ends now. */
  mended(): void {
    this.mark();
  }

  /** The latest instant the connection was seen broken or mended; undefined if it never broke. */
  get latest(): Gap | undefined {
    return this.last;
  }

  /** How many failures this process has seen (tests read it). */
  get breaks(): number {
    return this.broken;
  }

  private mark(): void {
    this.last = { wall: this.clock.now(), monotonic: this.clock.monotonic() };
  }
}
