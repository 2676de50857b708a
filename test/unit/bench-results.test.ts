/** Where the bench writes its results, and where it may put an etcd that syncs to disk. */
import { describe, expect, it } from "vitest";
import { filesystemName, inMemory } from "../../bench/support/filesystems.ts";
import { resultFileNames } from "../../bench/support/report.ts";

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
