/** Bounded parallelism for member work in the resolver. */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { mapLimit } from "../../src/resolver/concurrency.ts";

describe("mapLimit", () => {
  it("returns results in the order of the input, however the work finishes", async () => {
    const delays = [30, 5, 20, 0, 10, 25, 1];
    const results = await mapLimit(delays, 3, async (ms) => {
      await sleep(ms);
      return `done-${ms}`;
    });
    expect(results).toEqual(delays.map((ms) => `done-${ms}`));
  });

  it("never has more than the limit in flight, and uses the limit", async () => {
    let inFlight = 0;
    let peak = 0;
    await mapLimit(Array.from({ length: 20 }, (_, i) => i), 4, async (i) => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await sleep(i % 3);
      inFlight -= 1;
    });
    expect(peak).toBe(4);
  });

  it("does each item exactly once", async () => {
    const seen: number[] = [];
    await mapLimit([1, 2, 3, 4, 5], 2, async (n) => {
      seen.push(n);
      await sleep(1);
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it("returns an empty list for no items without calling the work", async () => {
    let calls = 0;
    expect(await mapLimit([], 8, (n: number) => Promise.resolve((calls += n)))).toEqual([]);
    expect(calls).toBe(0);
  });

  it("rejects when one item's work fails", async () => {
    const work = mapLimit([1, 2, 3], 2, async (n) => {
      await sleep(1);
      if (n === 2) throw new Error("item 2 failed");
      return n;
    });
    await expect(work).rejects.toThrow("item 2 failed");
  });
});

describe("mapLimit with a limit below one", () => {
  it.each([0, -1, Number.NaN, 1.5])("refuses the limit %s instead of silently doing nothing", async (limit) => {
    await expect(mapLimit([1, 2], limit, (n) => Promise.resolve(n * 10))).rejects.toThrow(RangeError);
  });
});
