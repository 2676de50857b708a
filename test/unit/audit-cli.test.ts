import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timelineHeading, timelineJson, timelineRows } from "../../src/audit/format.ts";
import type { Timeline } from "../../src/audit/group.ts";
import { auditTable, runAudit } from "../../src/cli/tx/audit.ts";
import { TxError } from "../../src/cli/tx/errors.ts";
import type { AuditOptions } from "../../src/cli/tx/review-args.ts";

const T0 = Date.parse("2026-11-24T14:06:26.959Z");

const timeline: Timeline = {
  transaction: "t-0123abcd",
  users: ["alice"],
  firstMs: T0,
  lastMs: T0 + 42,
  entries: [
    { auditID: "1", time: "2026-11-24T14:06:26.959165Z", timeMs: T0, user: "alice", verb: "create", object: "configmaps shop/a", code: 201,
      transaction: "t-0123abcd", decision: "member", lock: "lk-1", seenByKubetx: true, dryRun: false, rejectedBeforeKubetx: false },
    { auditID: "2", time: "2026-11-24T14:06:27.001000Z", timeMs: T0 + 42, user: "alice", verb: "create", object: "configmaps shop/bad", code: 422,
      seenByKubetx: false, dryRun: false, message: `ConfigMap "bad" is invalid:\ndata[bad key]: ${"x".repeat(200)}`, rejectedBeforeKubetx: true },
  ],
};

describe("a timeline as kubectl tx audit prints it", () => {
  it("heads it with the transaction, its users, its span and what it holds", () => {
    expect(timelineHeading(timeline)).toBe("transaction t-0123abcd by alice, 2026-11-24T14:06:26.959Z to 14:06:27.001Z: 1 request, 1 rejected before kubetx");
  });

  it("counts kubetx's restores apart, and shows them as its decision", () => {
    const restore = { auditID: "3", time: "2026-11-24T14:06:28.000000Z", timeMs: T0 + 1041, user: "system:serviceaccount:kubetx-system:kubetx", verb: "delete",
      object: "configmaps shop/a", code: 200, seenByKubetx: false, dryRun: false, restoreFor: "t-0123abcd", rejectedBeforeKubetx: false };
    const withRestore = { ...timeline, entries: [...timeline.entries, restore] };
    expect(timelineHeading(withRestore)).toBe("transaction t-0123abcd by alice, 2026-11-24T14:06:26.959Z to 14:06:27.001Z: 1 request, 1 rejected before kubetx, 1 restore by kubetx");
    expect(timelineRows(withRestore)[2]?.slice(0, 6)).toEqual(["14:06:28.000", "system:serviceaccount:kubetx-system:kubetx", "delete", "configmaps shop/a", "200", "restore"]);
    expect(timelineJson(withRestore).requests[2]?.decision).toBe("restore");
  });

  it("shows each request's time, user, verb, object, code and decision, and a failure's message on one bounded line", () => {
    const [admitted, rejected] = timelineRows(timeline);
    expect(admitted).toEqual(["14:06:26.959", "alice", "create", "configmaps shop/a", "201", "member", ""]);
    expect(rejected?.slice(0, 6)).toEqual(["14:06:27.001", "alice", "create", "configmaps shop/bad", "422", "rejected before kubetx"]);
    expect(rejected?.[6]).toMatch(/^ConfigMap "bad" is invalid: data\[bad key\]: x+\.\.\.$/);
    expect(rejected?.[6]).toHaveLength(100);
  });

  it("gives JSON readers every field, the whole message, and null for what is absent", () => {
    const json = timelineJson(timeline);
    expect(json).toMatchObject({ transaction: "t-0123abcd", users: ["alice"], first: "2026-11-24T14:06:26.959Z", last: "2026-11-24T14:06:27.001Z" });
    expect(json.requests[0]).toEqual({
      time: "2026-11-24T14:06:26.959165Z", user: "alice", verb: "create", object: "configmaps shop/a", code: 201, decision: "member",
      lock: "lk-1", rejectedBeforeKubetx: false, message: null, auditID: "1",
    });
    expect(json.requests[1]).toMatchObject({ decision: null, lock: null, rejectedBeforeKubetx: true, code: 422 });
    expect(json.requests[1]?.message).toContain("x".repeat(200));
  });

  it("aligns the columns under a header and separates transactions with a blank line", () => {
    const lines = auditTable([timeline, { ...timeline, transaction: "t-99999999" }]);
    expect(lines[1]).toBe("TIME           USER    VERB     OBJECT                CODE   DECISION                 MESSAGE");
    expect(lines[2]).toBe("14:06:26.959   alice   create   configmaps shop/a     201    member");
    expect(lines[4]).toBe("");
    expect(lines[5]).toMatch(/^transaction t-99999999 /);
  });
});

describe("kubectl tx audit", () => {
  let dir: string;
  let log: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-audit-cli-"));
    const event = (id: string, ms: number, name: string, code: number, annotations: Record<string, string>): string => JSON.stringify({
      auditID: id, stage: "ResponseComplete", verb: "create", user: { username: "alice" }, objectRef: { resource: "configmaps", namespace: "shop", name },
      responseStatus: { code, ...(code >= 400 ? { message: `ConfigMap "${name}" is invalid` } : {}) }, stageTimestamp: new Date(T0 + ms).toISOString(), annotations,
    });
    const kubetx = { "validate.kubetx.io/transaction": "t-0123abcd", "validate.kubetx.io/decision": "member" };
    log = path.join(dir, "audit.log.gz");
    await writeFile(log, gzipSync([event("1", 0, "a", 201, kubetx), event("2", 20, "b", 201, kubetx), event("3", 40, "bad", 422, {}), "garbage"].join("\n")));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function audit(options: Partial<AuditOptions>): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runAudit({ logs: [log], output: "table", ...options }, { say: (l) => out.push(l), warn: (l) => err.push(l) });
    return { code, out, err };
  }

  it("prints each transaction's timeline with the rejected write, and warns about lines it skipped", async () => {
    const { code, out, err } = await audit({});
    expect(code).toBe(0);
    expect(out[0]).toBe("transaction t-0123abcd by alice, 2026-11-24T14:06:26.959Z to 14:06:26.979Z: 2 requests, 1 rejected before kubetx");
    expect(out.slice(2).map((l) => l.split(/ {3,}/).slice(3, 6).join("|"))).toEqual([
      "configmaps shop/a|201|member", "configmaps shop/b|201|member", "configmaps shop/bad|422|rejected before kubetx",
    ]);
    expect(err).toEqual(["kubectl tx: warning: skipped 1 line that is not a JSON audit event"]);
  });

  it("prints JSON, an empty array when nothing matches", async () => {
    const json = JSON.parse((await audit({ output: "json" })).out.join("\n")) as { transaction: string; requests: unknown[] }[];
    expect(json.map((t) => [t.transaction, t.requests.length])).toEqual([["t-0123abcd", 3]]);
    expect(JSON.parse((await audit({ output: "json", user: "bob" })).out.join("\n"))).toEqual([]);
  });

  it("says so on stderr when the filters match nothing", async () => {
    const { code, out, err } = await audit({ transaction: "t-99999999" });
    expect(code).toBe(0);
    expect(out).toEqual([]);
    expect(err.at(-1)).toBe("No transaction t-99999999 in 3 complete requests of 1 audit log.");
  });

  it("fails with a line that names the file and what to check", async () => {
    const missing = path.join(dir, "nope.log");
    const failure = audit({ logs: [log, missing] });
    await expect(failure).rejects.toBeInstanceOf(TxError);
    await expect(failure).rejects.toThrow(`kubectl tx: cannot read audit log ${missing}: no such file; check the path (the apiserver's --audit-log-path) and that you may read it`);
  });
});
