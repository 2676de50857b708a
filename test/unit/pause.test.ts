/** The wait between a loop's periods: ends on time, on abort or on wake, and leaves no listener on the signal. */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { pause } from "../../src/telemetry/clock.ts";

describe("pause", () => {
  it("leaves no abort listener behind however many periods it waits (a resolver waits four a second for days)", async () => {
    const stop = new AbortController();
    for (let i = 0; i < 50; i += 1) await pause(0, stop.signal);
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
  });

  it("ends early when woken, and when the signal aborts", async () => {
    const stop = new AbortController();
    let wake: (() => void) | undefined;
    const woken = pause(60_000, stop.signal, (w) => (wake = w));
    wake?.();
    await woken;
    const aborted = pause(60_000, stop.signal);
    stop.abort();
    await aborted;
    await pause(60_000, stop.signal);
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
  });
});
