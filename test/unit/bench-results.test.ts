/** Where the bench writes its results, and where it may put an etcd that syncs to disk. */
import { describe, expect, it } from "vitest";
import { filesystemName, inMemory } from "../../bench/support/filesystems.ts";
import { newestWholeRuns, parseLimit, targetMedians, wholeRunKind } from "../../bench/support/medians.ts";
import type { Target } from "../../bench/support/report.ts";
import { parseOnly, resultFileNames, targetsOf } from "../../bench/support/report.ts";
import type { ThroughputResult } from "../../bench/scenarios/throughput.ts";

const STARTED = "2026-12-01T09:30:05.123Z";

describe("the results files", () => {
  it("are latest.json and a copy named by the start time for a full run", () => {
    expect(resultFileNames(STARTED, { quick: false, fsync: false })).toEqual(["latest.json", "2026-12-01T09-30-05Z.json"]);
  });

  it("carry -fsync with fsync on, so the two modes never overwrite each other", () => {
    expect(resultFileNames(STARTED, { quick: false, fsync: true })).toEqual(["latest-fsync.json", "2026-12-01T09-30-05Z-fsync.json"]);
  });

  it("are one quick file for a smoke run, never latest.json", () => {
    expect(resultFileNames(STARTED, { quick: true, fsync: false })).toEqual(["quick.json"]);
    expect(resultFileNames(STARTED, { quick: true, fsync: true })).toEqual(["quick-fsync.json"]);
  });

  it("are one dated file naming the scenarios for a partial run, never latest.json", () => {
    expect(resultFileNames(STARTED, { quick: false, fsync: false, only: ["apply", "rollback"] })).toEqual(["2026-12-01T09-30-05Z-only-apply-rollback.json"]);
    expect(resultFileNames(STARTED, { quick: false, fsync: true, only: ["rollback"] })).toEqual(["2026-12-01T09-30-05Z-only-rollback-fsync.json"]);
  });
});

describe("--only=", () => {
  it("takes scenario names, comma-separated, and puts them in run order", () => {
    expect(parseOnly(undefined)).toBeUndefined();
    expect(parseOnly("throughput,rollback")).toEqual(["rollback", "throughput"]);
  });

  it("says which names it knows when given one it does not, or none", () => {
    expect(parseOnly("rolback")).toBe('--only= takes scenario names from apply, rollback, latency, throughput, comma-separated; got "rolback"');
    expect(parseOnly("")).toMatch(/^--only= takes scenario names/);
  });
});

describe("filesystem types", () => {
  it("names the common ones and shows others in hex", () => {
    expect(filesystemName(0xef53)).toBe("ext4");
    expect(filesystemName(0x01021994)).toBe("tmpfs");
    expect(filesystemName(0x12345678)).toBe("0x12345678");
  });

  it("count tmpfs and ramfs as memory, and disks and overlays as not", () => {
    expect(inMemory(0x01021994)).toBe(true);
    expect(inMemory(0x858458f6)).toBe(true);
    expect(inMemory(0xef53)).toBe(false);
    expect(inMemory(0x794c7630)).toBe(false);
  });
});

describe("the targets", () => {
  const shape = (perSecond: number): ThroughputResult["shapes"]["optedOut"] => ({
    answered: perSecond * 10, perSecond, notAllowed: 0,
    latency: { n: 1, min: 1, p50: 1, p90: 1, p99: 1, max: 1, mean: 1 },
    kubetxCalls: { total: 0, byKind: {}, medianMsByKind: {} },
  });

  it("count a throughput as met from its floor up, and say so with >=", () => {
    const throughput: ThroughputResult = { options: { warmupSeconds: 1, seconds: 10, concurrency: 8 }, shapes: { optedOut: shape(3000), uncovered: shape(2999) } };
    const targets = targetsOf({ throughput });
    expect(targets.map((t) => [t.limit, t.value, t.met])).toEqual([[">= 3000/s", 3000, true], [">= 3000/s", 2999, false]]);
  });

  it("leave out what a run did not measure", () => {
    expect(targetsOf({})).toEqual([]);
  });
});

describe("medians of several runs (bench/medians.ts)", () => {
  const target = (name: string, value: number, limit: string): Target => ({ name, value, limit, met: false });

  it("takes each target's median over the runs that measured it, judged against its limit", () => {
    const medians = targetMedians([
      { file: "a.json", targets: [target("plugin ratio", 2.1, "<= 1.3x"), target("throughput", 2900, ">= 3000/s")] },
      { file: "b.json", targets: [target("plugin ratio", 1.2, "<= 1.3x"), target("throughput", 3100, ">= 3000/s")] },
      { file: "c.json", targets: [target("plugin ratio", 1.25, "<= 1.3x"), target("throughput", 4000, ">= 3000/s")] },
    ]);
    expect(medians).toEqual([
      { name: "plugin ratio", limit: "<= 1.3x", values: [2.1, 1.2, 1.25], median: 1.25, met: true },
      { name: "throughput", limit: ">= 3000/s", values: [2900, 3100, 4000], median: 3100, met: true },
    ]);
  });

  it("judges an even count by the mean of the middle two, and leaves out a limit it cannot read", () => {
    const medians = targetMedians([
      { file: "a.json", targets: [target("p99", 9, "<= 10 ms"), target("odd", 1, "about 2")] },
      { file: "b.json", targets: [target("p99", 12, "<= 10 ms")] },
    ]);
    expect(medians).toEqual([{ name: "p99", limit: "<= 10 ms", values: [9, 12], median: 10.5, met: false }]);
    expect(parseLimit("<= 1.3x")).toEqual({ atMost: true, bound: 1.3 });
    expect(parseLimit(">= 3000/s")).toEqual({ atMost: false, bound: 3000 });
    expect(parseLimit("about 2")).toBeUndefined();
  });

  it("picks the newest whole runs of each kind, never latest, quick, partial or earlier medians", () => {
    const files = [
      "2026-12-03T07-42-14Z.json", "2026-12-03T07-52-51Z-fsync.json", "2026-12-02T14-59-26Z.json", "2026-12-01T05-19-47Z.json",
      "2026-12-03T09-26-19Z-only-apply.json", "latest.json", "latest-fsync.json", "quick.json", "medians-2026-12-03T10-00-00Z.json",
      "2026-12-01T05-15-44Z-on-296cfa7.json",
    ];
    expect(wholeRunKind("2026-12-03T07-52-51Z-fsync.json")).toBe("fsync on");
    expect(wholeRunKind("2026-12-03T09-26-19Z-only-apply.json")).toBeUndefined();
    expect(newestWholeRuns(files, 2)).toEqual({
      "fsync off": ["2026-12-02T14-59-26Z.json", "2026-12-03T07-42-14Z.json"],
      "fsync on": ["2026-12-03T07-52-51Z-fsync.json"],
    });
  });
});
