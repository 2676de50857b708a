/**
 * Time as kubetx sees it; injected so expiry logic is tested with a fake
 * clock. Two readings: the wall clock, only for timestamps people read
 * (records, Events, Lease times), and a monotonic clock for every duration
 * and expiry decision, so a step of the machine's clock (NTP, an admin)
 * never makes a lease look expired or a retention look passed.
 */
import { performance } from "node:perf_hooks";

export interface Clock {
  /** Milliseconds since the epoch: for timestamps only. */
  now(): number;
  /** Milliseconds on a clock that never steps: for durations and expiry. */
  monotonic(): number;
}

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  private wall: number;
  private steady = 0;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.wall = start;
  }

  now(): number {
    return this.wall;
  }

  monotonic(): number {
    return this.steady;
  }

  /** Time passes: both clocks move. */
  advance(ms: number): void {
    this.wall += ms;
    this.steady += ms;
  }

  /** The wall clock is set (NTP, an admin): only it moves, forwards or back. */
  step(ms: number): void {
    this.wall += ms;
  }
}

/** MicroTime as the apiserver wants it: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Resolves after `ms`, when `signal` aborts, or when the function handed to
 * `wakeable` is called, whichever comes first, and leaves no listener on
 * `signal` behind: a loop that waits like this every period for days must
 * not grow the signal's listener list by one a period.
 */
export function pause(ms: number, signal: AbortSignal, wakeable?: (wake: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    wakeable?.(done);
  });
}
