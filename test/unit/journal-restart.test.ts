/**
 * A member's later write that starts over: the apiserver ran admission again
 * for the same request after a storage conflict (someone wrote between its
 * read and kubetx's lock), so the first call's pre-image never was the
 * object the write changed (chaos F21). The later write's own starting
 * object replaces the pre-image, and the post-images before it, which never
 * reached storage, no longer count.
 */
import { describe, expect, it } from "vitest";
import { withLaterWrites } from "../../src/journal/journal.ts";
import type { KubeObject } from "../../src/kube/index.ts";
import { unwrittenSinceLock } from "../../src/transactions/coordinator.ts";

const at = (resourceVersion: string, color: string): KubeObject => ({ metadata: { name: "web", resourceVersion }, data: { color } });

describe("a member's entry with its later writes", () => {
  const first = { pre: at("10", "blue"), post: at("10", "green") };

  it("keeps the first pre-image and every post-image when no later write started over", () => {
    const entry = withLaterWrites(first, [{ post: at("12", "red") }, { post: at("13", "pink") }]);
    expect(entry.pre).toEqual(at("10", "blue"));
    expect(entry.posts).toEqual([at("10", "green"), at("12", "red"), at("13", "pink")]);
    expect(entry.post).toEqual(at("13", "pink"));
  });

  it("takes the pre-image of the last write that started over, and only the post-images from it on", () => {
    const entry = withLaterWrites(first, [
      { post: at("11", "green"), pre: at("11", "blue-relabelled") },
      { post: at("12", "green"), pre: at("12", "blue-again") },
      { post: at("14", "red") },
    ]);
    expect(entry.pre).toEqual(at("12", "blue-again"));
    expect(entry.posts).toEqual([at("12", "green"), at("14", "red")]);
    expect(entry.post).toEqual(at("14", "red"));
  });

  it("keeps a deleting write's null post-image and a started-over null pre-image", () => {
    const entry = withLaterWrites(first, [{ post: null, pre: null }]);
    expect(entry).toEqual({ pre: null, post: null, posts: [null] });
  });
});

describe("whether a later write's starting object was written since the lock", () => {
  it("is unwritten when its revision is at most the lock's: no write of the transaction landed yet", () => {
    expect(unwrittenSinceLock(at("41", "x"), { resourceVersion: "42" })).toBe(true);
    expect(unwrittenSinceLock(at("42", "x"), { resourceVersion: "42" })).toBe(true);
    // Compared as numbers, not strings.
    expect(unwrittenSinceLock(at("9", "x"), { resourceVersion: "10" })).toBe(true);
  });

  it("is written when its revision is later than the lock's, and never taken for unwritten without numeric revisions", () => {
    expect(unwrittenSinceLock(at("43", "x"), { resourceVersion: "42" })).toBe(false);
    expect(unwrittenSinceLock(at("10", "x"), { resourceVersion: "9" })).toBe(false);
    expect(unwrittenSinceLock(at("abc", "x"), { resourceVersion: "42" })).toBe(false);
    expect(unwrittenSinceLock(at("41", "x"), { resourceVersion: "" })).toBe(false);
    expect(unwrittenSinceLock(undefined, { resourceVersion: "42" })).toBe(false);
  });
});
