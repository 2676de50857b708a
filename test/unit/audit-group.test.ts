import { describe, expect, it } from "vitest";
import type { AuditEntry } from "../../src/audit/events.ts";
import type { Timeline } from "../../src/audit/group.ts";
import { AuditCollector, DEFAULT_REJECTION_WINDOW, isRestore } from "../../src/audit/group.ts";
import { isRejectedBeforeKubetx } from "../../src/audit/rules.ts";

const T0 = Date.parse("2026-11-24T14:00:00Z");
let ids = 0;

/** A complete request `ms` after T0. */
function entry(ms: number, fields: Partial<AuditEntry> = {}): AuditEntry {
  ids += 1;
  return {
    auditID: `id-${ids}`, time: new Date(T0 + ms).toISOString(), timeMs: T0 + ms, user: "alice", verb: "create",
    object: `configmaps shop/o${ids}`, target: { namespace: "shop", group: "", resource: "configmaps" }, code: 201, seenByKubetx: false, dryRun: false, ...fields,
  };
}

function member(ms: number, transaction: string, fields: Partial<AuditEntry> = {}): AuditEntry {
  return entry(ms, { transaction, decision: "member", seenByKubetx: true, ...fields });
}

function rejected(ms: number, fields: Partial<AuditEntry> = {}): AuditEntry {
  return entry(ms, { code: 422, message: "is invalid", ...fields });
}

function collect(entries: readonly AuditEntry[], filter = {}): Timeline[] {
  const collector = new AuditCollector(filter);
  entries.forEach((e) => collector.add(e));
  return collector.timelines();
}

function summary(timelines: readonly Timeline[]): Record<string, string[]> {
  return Object.fromEntries(timelines.map((t) => [t.transaction, t.entries.map((e) => `${e.object}:${e.code}:${e.rejectedBeforeKubetx ? "rejected" : (e.decision ?? "-")}`)]));
}

describe("grouping audit entries into transactions", () => {
  it("puts the requests of one transaction together in time order, whatever order they were read in", () => {
    const a = member(200, "t-aaaaaaaa", { object: "configmaps shop/b" });
    const b = member(100, "t-aaaaaaaa", { object: "configmaps shop/a" });
    const other = member(150, "t-bbbbbbbb", { user: "bob", object: "configmaps shop/z" });
    const timelines = collect([a, other, b]);
    expect(summary(timelines)).toEqual({
      "t-aaaaaaaa": ["configmaps shop/a:201:member", "configmaps shop/b:201:member"],
      "t-bbbbbbbb": ["configmaps shop/z:201:member"],
    });
    expect(timelines.map((t) => t.transaction)).toEqual(["t-aaaaaaaa", "t-bbbbbbbb"]);
    expect(timelines[0]).toMatchObject({ users: ["alice"], firstMs: T0 + 100, lastMs: T0 + 200 });
  });

  it("shows kubetx's restores with the transaction they were made for, apart from its span and users", () => {
    const restore = entry(5000, { user: "system:serviceaccount:kubetx-system:kubetx", verb: "delete", object: "configmaps shop/a", code: 200, restoreFor: "t-aaaaaaaa" });
    const other = entry(5100, { user: "system:serviceaccount:kubetx-system:kubetx", verb: "delete", object: "configmaps shop/z", code: 200, restoreFor: "t-bbbbbbbb" });
    const timelines = collect([restore, member(0, "t-aaaaaaaa", { object: "configmaps shop/a" }), other]);
    expect(summary(timelines)).toEqual({ "t-aaaaaaaa": ["configmaps shop/a:201:member", "configmaps shop/a:200:-"] });
    expect(timelines[0]).toMatchObject({ users: ["alice"], firstMs: T0, lastMs: T0 });
    expect(isRestore(timelines[0]?.entries[1] ?? { ...restore, restoreFor: undefined, rejectedBeforeKubetx: false })).toBe(true);
    // A rejected write long after the apply is not pulled in by the restores that followed it.
    expect(summary(collect([member(0, "t-aaaaaaaa"), restore, rejected(5000 + DEFAULT_REJECTION_WINDOW.afterMs)]))["t-aaaaaaaa"]).toHaveLength(2);
    expect(summary(collect([member(0, "t-aaaaaaaa"), restore], { transaction: "t-bbbbbbbb" }))).toEqual({});
  });

  it("adds the user's write that the apiserver rejected before kubetx saw it, within the window", () => {
    const timelines = collect([
      member(0, "t-aaaaaaaa", { object: "configmaps shop/a" }), member(50, "t-aaaaaaaa", { object: "configmaps shop/b" }), rejected(80, { object: "configmaps shop/bad" }),
    ]);
    expect(summary(timelines)["t-aaaaaaaa"]).toEqual(["configmaps shop/a:201:member", "configmaps shop/b:201:member", "configmaps shop/bad:422:rejected"]);
  });

  it("adds a rejected write of kubectl tx's kubectl to the transaction its User-Agent names, however close another is", () => {
    const timelines = collect([
      member(0, "t-aaaaaaaa", { object: "configmaps shop/a" }), member(100, "t-bbbbbbbb", { object: "configmaps shop/b" }),
      rejected(110, { object: "configmaps shop/bad", kubectlFor: "t-aaaaaaaa" }), rejected(120, { object: "configmaps shop/plain" }),
      rejected(130, { object: "configmaps shop/bob", user: "bob", kubectlFor: "t-aaaaaaaa" }),
    ]);
    expect(summary(timelines)).toEqual({
      "t-aaaaaaaa": ["configmaps shop/a:201:member", "configmaps shop/bad:422:rejected"],
      "t-bbbbbbbb": ["configmaps shop/b:201:member", "configmaps shop/plain:422:rejected"],
    });
  });

  it("counts a rejection up to the sink's window before the first and after the last request, and not beyond", () => {
    const { beforeMs, afterMs } = DEFAULT_REJECTION_WINDOW;
    const inBefore = rejected(1000 - beforeMs, { object: "configmaps shop/before" });
    const inAfter = rejected(1100 + afterMs, { object: "configmaps shop/after" });
    const tooEarly = rejected(999 - beforeMs, { object: "configmaps shop/early" });
    const tooLate = rejected(1101 + afterMs, { object: "configmaps shop/late" });
    const timelines = collect([tooEarly, inBefore, member(1000, "t-aaaaaaaa", { object: "configmaps shop/m" }), member(1100, "t-aaaaaaaa", { object: "configmaps shop/n" }), inAfter, tooLate]);
    expect(summary(timelines)["t-aaaaaaaa"]).toEqual([
      "configmaps shop/before:422:rejected", "configmaps shop/m:201:member", "configmaps shop/n:201:member", "configmaps shop/after:422:rejected",
    ]);
  });

  it("gives a rejection to the nearer of two transactions of the user only", () => {
    const timelines = collect([
      member(0, "t-first000", { object: "configmaps shop/f" }),
      member(1500, "t-second00", { object: "configmaps shop/s" }),
      rejected(1600, { object: "configmaps shop/bad" }),
    ]);
    expect(summary(timelines)).toEqual({ "t-first000": ["configmaps shop/f:201:member"], "t-second00": ["configmaps shop/s:201:member", "configmaps shop/bad:422:rejected"] });
  });

  it("gives a rejection inside two overlapping transactions to the later one, in whatever order they were read", () => {
    const entries = [member(1000, "t-later000", { object: "configmaps shop/l1" }), member(1800, "t-later000", { object: "configmaps shop/l2" }),
      member(0, "t-earlier0", { object: "configmaps shop/e1" }), member(2000, "t-earlier0", { object: "configmaps shop/e2" }), rejected(1500, { object: "configmaps shop/bad" })];
    const expected = {
      "t-earlier0": ["configmaps shop/e1:201:member", "configmaps shop/e2:201:member"],
      "t-later000": ["configmaps shop/l1:201:member", "configmaps shop/bad:422:rejected", "configmaps shop/l2:201:member"],
    };
    expect(summary(collect(entries))).toEqual(expected);
    expect(summary(collect([...entries].reverse()))).toEqual(expected);
  });

  it("keeps the nearer transaction's claim even when --transaction shows only the other one", () => {
    const entries = [member(0, "t-first000", { object: "configmaps shop/f" }), member(1500, "t-second00"), rejected(1600)];
    expect(summary(collect(entries, { transaction: "t-first000" }))).toEqual({ "t-first000": ["configmaps shop/f:201:member"] });
  });

  it("ignores other users' rejections, rejected reads, a create that found its object already there, a conflict kubectl retries and a dry run", () => {
    const timelines = collect([
      member(0, "t-aaaaaaaa", { object: "configmaps shop/m" }),
      rejected(10, { user: "bob" }),
      entry(20, { verb: "get", code: 404 }),
      entry(30, { verb: "create", code: 409 }),
      entry(40, { verb: "patch", code: 409, reason: "Conflict" }),
      rejected(45, { dryRun: true }),
      entry(50, { verb: "patch", code: 403, seenByKubetx: true, decision: "pass" }),
    ]);
    expect(summary(timelines)).toEqual({ "t-aaaaaaaa": ["configmaps shop/m:201:member"] });
  });

  it("takes the window of the sink under the default policy: a quiet window before, a quiet window and the sink's delay after", () => {
    expect(DEFAULT_REJECTION_WINDOW).toEqual({ beforeMs: 2_000, afterMs: 3_000 });
  });

  it("counts a rejection within a window it is given", () => {
    const entries = [member(0, "t-aaaaaaaa", { object: "configmaps shop/m" }), rejected(5_000, { object: "configmaps shop/late" })];
    const collector = new AuditCollector({}, { beforeMs: 5_000, afterMs: 5_000 });
    entries.forEach((e) => collector.add(e));
    expect(summary(collector.timelines())["t-aaaaaaaa"]).toEqual(["configmaps shop/m:201:member", "configmaps shop/late:422:rejected"]);
  });

  it("counts an event found in two files once", () => {
    const once = member(0, "t-aaaaaaaa");
    const bad = rejected(5);
    expect(summary(collect([once, bad, once, bad]))["t-aaaaaaaa"]).toHaveLength(2);
  });

  it("shows only the transactions of --user, and only their own rejections", () => {
    const entries = [member(0, "t-aaaaaaaa"), rejected(5), member(0, "t-bbbbbbbb", { user: "bob", object: "configmaps shop/b" }), rejected(10, { user: "bob", object: "configmaps shop/bobs" })];
    expect(summary(collect(entries, { user: "bob" }))).toEqual({ "t-bbbbbbbb": ["configmaps shop/b:201:member", "configmaps shop/bobs:422:rejected"] });
  });

  it("finds nothing in a log without kubetx annotations", () => {
    expect(collect([rejected(0), entry(10)])).toEqual([]);
  });
});

describe("a write rejected before kubetx", () => {
  it("is a failed write that no kubetx webhook answered", () => {
    expect(isRejectedBeforeKubetx(entry(0, { verb: "create", code: 422 }))).toBe(true);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "patch", code: 400 }))).toBe(true);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "delete", code: 403 }))).toBe(true);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "update", code: 409, reason: "Invalid" }))).toBe(true);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "patch", code: 500 }))).toBe(true);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "create", code: 409 }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "list", code: 403 }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "create", code: 201 }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "create", code: 403, seenByKubetx: true }))).toBe(false);
  });

  it("is not a resourceVersion conflict of an update or patch, which kubectl retries by itself, nor a dry run", () => {
    expect(isRejectedBeforeKubetx(entry(0, { verb: "patch", code: 409, reason: "Conflict" }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "update", code: 409, reason: "Conflict" }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "create", code: 422, dryRun: true }))).toBe(false);
  });

  it("is not a delete of an object that was not there (kubectl delete --ignore-not-found exits 0 on it)", () => {
    expect(isRejectedBeforeKubetx(entry(0, { verb: "delete", code: 404, reason: "NotFound" }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "deletecollection", code: 404, reason: "NotFound" }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "patch", code: 404, reason: "NotFound" }))).toBe(true);
    expect(isRejectedBeforeKubetx(entry(0, { verb: "update", code: 404, reason: "NotFound" }))).toBe(true);
  });

  it("is a write to an object kubetx could cover, by a known requester", () => {
    expect(isRejectedBeforeKubetx(entry(0, { code: 422, target: undefined, object: "apps/deployments/scale shop/web" }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { code: 422, target: undefined, object: "namespaces shop" }))).toBe(false);
    expect(isRejectedBeforeKubetx(entry(0, { code: 422, user: "" }))).toBe(false);
  });
});
