import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEntry } from "../../src/audit/events.ts";
import { AuditCollector } from "../../src/audit/group.ts";
import { AuditReadError, isGzip, parseLine, readAuditLogs } from "../../src/audit/read.ts";

interface Line {
  readonly id: string;
  readonly at: string;
  readonly verb?: string;
  readonly name: string;
  readonly code?: number;
  readonly transaction?: string;
  readonly stage?: string;
}

/** One audit log line as the apiserver writes it (Go's JSON: no spaces). */
function line(l: Line): string {
  const annotations: Record<string, string> = { "authorization.k8s.io/decision": "allow" };
  if (l.transaction) Object.assign(annotations, { "validate.kubetx.io/transaction": l.transaction, "validate.kubetx.io/decision": "member" });
  return JSON.stringify({
    kind: "Event", apiVersion: "audit.k8s.io/v1", level: "Metadata", auditID: l.id, stage: l.stage ?? "ResponseComplete",
    requestURI: `/api/v1/namespaces/shop/configmaps`, verb: l.verb ?? "create", user: { username: "alice", groups: ["system:authenticated"] },
    objectRef: { resource: "configmaps", namespace: "shop", name: l.name, apiVersion: "v1" },
    responseStatus: { metadata: {}, code: l.code ?? 201 }, stageTimestamp: `2026-11-24T14:00:${l.at}Z`, annotations,
  });
}

const TX = "t-0123abcd";

async function readAll(files: readonly string[]): Promise<{ entries: AuditEntry[]; stats: Awaited<ReturnType<typeof readAuditLogs>> }> {
  const entries: AuditEntry[] = [];
  const stats = await readAuditLogs(files, (e) => entries.push(e));
  return { entries, stats };
}

describe("reading audit logs", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-audit-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, content: string | Buffer): Promise<string> {
    const p = path.join(dir, name);
    await writeFile(p, content);
    return p;
  }

  it("hands over every complete request of a plain log and counts what it skipped", async () => {
    const log = await file("plain.log", [
      line({ id: "1", at: "01.000000", name: "a", transaction: TX }),
      line({ id: "2", at: "01.100000", name: "a", stage: "RequestReceived" }),
      "",
      "{\"kind\":\"Event\",\"stage\":\"Respo", // a line the apiserver was still writing
      line({ id: "3", at: "01.200000", name: "b", transaction: TX }),
    ].join("\n") + "\n");
    const { entries, stats } = await readAll([log]);
    expect(entries.map((e) => e.auditID)).toEqual(["1", "3"]);
    expect(stats).toEqual({ files: 1, lines: 4, events: 2, malformed: 1 });
  });

  it("reads a gzipped log by its content, whatever its name", async () => {
    const text = [line({ id: "g1", at: "02.000000", name: "a", transaction: TX }), line({ id: "g2", at: "02.100000", name: "b", transaction: TX })].join("\n") + "\n";
    const gz = await file("audit-2026-11-24T14-00-02.000.log.gz", gzipSync(text));
    const unnamed = await file("rotated-without-suffix", gzipSync(text));
    expect(await isGzip(gz)).toBe(true);
    expect(await isGzip(await file("plain-too.log", text))).toBe(false);
    expect((await readAll([gz])).entries.map((e) => e.auditID)).toEqual(["g1", "g2"]);
    expect((await readAll([unnamed])).entries.map((e) => e.auditID)).toEqual(["g1", "g2"]);
  });

  it("joins a transaction split over a rotated set, given newest first, and counts a repeated event once", async () => {
    // The apiserver rotated (and compressed) the log between the first member and the rest of the apply.
    const older = await file("audit-2026-11-24T14-00-03.000.log.gz", gzipSync([
      line({ id: "r0", at: "02.900000", name: "earlier", transaction: "t-earlier0" }),
      line({ id: "r1", at: "03.000000", name: "a", transaction: TX }),
    ].join("\n") + "\n"));
    const current = await file("audit.log", [
      line({ id: "r1", at: "03.000000", name: "a", transaction: TX }), // copied into both files
      line({ id: "r2", at: "03.050000", name: "b", transaction: TX }),
      line({ id: "r3", at: "03.080000", name: "bad", code: 422 }),
      line({ id: "r4", at: "03.070000", name: "bad", code: 404, verb: "get" }),
    ].join("\r\n") + "\r\n");
    const collector = new AuditCollector({ transaction: TX });
    const stats = await readAuditLogs([current, older], (e) => void collector.add(e));
    expect(stats).toMatchObject({ files: 2, events: 6, malformed: 0 });
    const [timeline] = collector.timelines();
    expect(timeline?.entries.map((e) => `${e.auditID}:${e.object}:${e.rejectedBeforeKubetx}`)).toEqual([
      "r1:configmaps shop/a:false", "r2:configmaps shop/b:false", "r3:configmaps shop/bad:true",
    ]);
  });

  it("says which file it could not read and why", async () => {
    const missing = path.join(dir, "missing.log");
    await expect(readAll([missing])).rejects.toThrow(`${missing}: no such file`);
    await expect(readAll([missing])).rejects.toBeInstanceOf(AuditReadError);
    await expect(readAll([dir])).rejects.toThrow(`${dir}: it is a directory`);
    const truncated = await file("truncated.log.gz", gzipSync(line({ id: "t", at: "04.000000", name: "a" })).subarray(0, 20));
    await expect(readAll([truncated])).rejects.toThrow(/truncated\.log\.gz: unexpected end of file/);
  });
});

describe("one line", () => {
  it("is an entry, another stage, or not an audit event", () => {
    expect(parseLine(line({ id: "1", at: "01.000000", name: "a" }))).toMatchObject({ auditID: "1" });
    expect(parseLine(line({ id: "1", at: "01.000000", name: "a", stage: "ResponseStarted" }))).toBe("skipped");
    expect(parseLine("[1,2]")).toBe("malformed");
    expect(parseLine("null")).toBe("malformed");
    expect(parseLine("not json")).toBe("malformed");
  });
});
