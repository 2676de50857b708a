/**
 * The chaos campaign's checker, on hand-made histories: each property it
 * checks is shown both ways, a history that keeps it (no violation) and
 * one that breaks it (the violation it must report). A checker that
 * cannot fail would pass every campaign.
 */
import { describe, expect, it } from "vitest";
import { workloadRequests } from "../../chaos/checker/audit.ts";
import { checkTrial } from "../../chaos/checker/check.ts";
import { findCycle, precedenceEdges } from "../../chaos/checker/order.ts";
import { recordView } from "../../chaos/checker/read.ts";
import type { AuditRequest, CommandRecord, LeftoverView, MemberView, Mode, ObjectPlan, OpOutcome, OpPlan, RecordView, TrialHistory, Version } from "../../chaos/history.ts";
import { SEED_TOKEN, objectKey } from "../../chaos/history.ts";
import { OTHER_TOOL, planTrial } from "../../chaos/workload.ts";

const T0 = Date.parse("2026-11-30T10:00:00Z");
const NS = "chaos-1-1-a";
const A = objectKey("ConfigMap", NS, "a");
const B = objectKey("ConfigMap", NS, "b");

function object(name: string, seeded = true, deletableBy?: string): ObjectPlan {
  return { key: objectKey("ConfigMap", NS, name), kind: "ConfigMap", namespace: NS, name, seeded, ...(deletableBy ? { deletableBy } : {}) };
}

interface OpSpec {
  readonly id: string;
  readonly mode?: Mode;
  readonly user?: OpPlan["user"];
  readonly applies?: readonly string[];
  readonly deletes?: readonly string[];
  readonly invalid?: OpPlan["invalid"];
  /** The transaction kubetx told the client it joined. */
  readonly tx: string;
  /** When the op ran, seconds after T0. */
  readonly at: number;
  /** Other transactions kubetx told the client it joined (a split apply). */
  readonly alsoHeard?: readonly string[];
  /** How long it ran, seconds (half a second unless given). */
  readonly seconds?: number;
  readonly stdout?: string;
  readonly exitCode?: number;
  /** The client heard of no transaction (the apiserver died before it answered). */
  readonly silent?: boolean;
  /** What kubectl printed instead of kubetx's line, when the apiserver refused it. */
  readonly refused?: string;
}

function op(spec: OpSpec): OpPlan {
  return {
    id: spec.id, client: spec.id.split("o")[0] ?? "c1", user: spec.user ?? "alice", mode: spec.mode ?? "transparent", token: `tok-${spec.id}`, pauseBeforeMs: 0,
    writes: [...(spec.applies ?? []).map((o) => ({ object: o, action: "apply" as const })), ...(spec.deletes ?? []).map((o) => ({ object: o, action: "delete" as const }))],
    ...(spec.invalid ? { invalid: spec.invalid, invalidAt: 0 } : {}),
    ...(spec.mode === "explicit" ? { txId: spec.tx } : {}),
  };
}

function outcome(spec: OpSpec): OpOutcome {
  const startedAt = T0 + spec.at * 1000;
  const endedAt = startedAt + (spec.seconds ?? 0.5) * 1000;
  const joined = spec.refused ?? (spec.silent ? "error: unexpected EOF\n" : (spec.mode === "plugin" ? `kubectl tx: applying 1 object as transaction ${spec.tx}\n` : `Warning: kubetx: joined transaction ${spec.tx} (1 member)\n`)
    + (spec.alsoHeard ?? []).map((id) => `Warning: kubetx: joined transaction ${id} (2 members)\n`).join(""));
  const deletes = (spec.deletes ?? []).map((k) => `configmap "${k.split("/").at(-1) ?? ""}" deleted`).join("\n");
  const command: CommandRecord = {
    argv: ["kubectl", "apply", "-f", "x.yaml", ...(spec.deletes?.length ? ["delete", "configmap", "-n", NS, ...spec.deletes.map((k) => k.split("/").at(-1) ?? "")] : [])],
    startedAt, endedAt, exitCode: spec.exitCode ?? 0, stdout: `${spec.stdout ?? ""}${deletes}`, stderr: joined,
  };
  return { op: spec.id, startedAt, endedAt, commands: [command] };
}

function member(key: string, operation: string, outcome: string): MemberView {
  const [, namespace, name] = key.split("/") as [string, string, string];
  return { group: "", resource: "configmaps", namespace, name, operation, outcome };
}

function record(id: string, phase: string, members: readonly MemberView[], user = "alice", mode = "transparent"): RecordView {
  return { id, user, mode, phase, createdAt: new Date(T0).toISOString(), members };
}

/** Versions from values: a token, or null for absent; one second apart from `at`. */
function versions(values: readonly (string | null)[], at = 0): Version[] {
  return values.map((v, i) => ({ rv: String(100 + i), at: T0 + (at + i) * 1000, exists: v !== null, ...(v !== null ? { token: v, uid: "u1" } : {}) }));
}

interface Build {
  readonly objects?: readonly ObjectPlan[];
  readonly ops: readonly OpSpec[];
  readonly records: readonly RecordView[];
  readonly histories: Readonly<Record<string, readonly Version[]>>;
  readonly leftovers?: readonly LeftoverView[];
  readonly sink?: boolean;
  readonly requests?: readonly AuditRequest[];
  readonly faults?: TrialHistory["faults"];
}

function history(b: Build): TrialHistory {
  const objects = b.objects ?? [object("a"), object("b")];
  const ops = b.ops.map(op);
  return {
    plan: {
      seed: 1, trial: 1, namespaces: [NS], sink: b.sink ?? true, replicas: 3, objects,
      timing: { quietWindowMs: 2000, lockTtlMs: 3000, maxOpenMs: 10_000, auditSinkDelayMs: 1000 },
      clients: [...new Set(ops.map((o) => o.client))].map((name) => ({ name, user: ops.find((o) => o.client === name)?.user ?? "alice", ops: ops.filter((o) => o.client === name) })),
      faults: [],
    },
    outcomes: b.ops.map(outcome),
    faults: b.faults ?? [],
    observation: {
      startedAt: T0, endedAt: T0 + 60_000,
      histories: objects.map((o) => ({ key: o.key, versions: b.histories[o.key] ?? versions([SEED_TOKEN]), gaps: 0 })),
      records: b.records, leftovers: b.leftovers ?? [],
      ...(b.requests ? { requests: b.requests } : {}),
    },
  };
}

function kinds(h: TrialHistory): string[] {
  return checkTrial(h).violations.map((v) => v.kind).sort();
}

describe("the chaos checker: atomicity", () => {
  it("accepts two committed transactions applied one after the other", () => {
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A, B], at: 1 }, { id: "c2o1", user: "bob", tx: "t-two", applies: [A], at: 5 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed"), member(B, "UPDATE", "Committed")]), record("t-two", "Committed", [member(A, "UPDATE", "Committed")], "bob")],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", "tok-c2o1"]), [B]: versions([SEED_TOKEN, "tok-c1o1"]) },
    });
    expect(kinds(h)).toEqual([]);
  });

  it("accepts a rolled-back transaction whose writes were all restored", () => {
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A, B], at: 1 }],
      records: [record("t-one", "RolledBack", [member(A, "UPDATE", "Restored"), member(B, "UPDATE", "Restored")])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", SEED_TOKEN]), [B]: versions([SEED_TOKEN, "tok-c1o1", SEED_TOKEN]) },
    });
    expect(kinds(h)).toEqual([]);
  });

  it("reports a rolled-back transaction that left one of its writes in place", () => {
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A, B], at: 1 }],
      records: [record("t-one", "RolledBack", [member(A, "UPDATE", "Restored"), member(B, "UPDATE", "Restored")])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", SEED_TOKEN]), [B]: versions([SEED_TOKEN, "tok-c1o1"]) },
    });
    expect(kinds(h)).toEqual(["atomicity"]);
  });

  it("reports a committed transaction one of whose members never reached its object", () => {
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A, B], at: 1 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed"), member(B, "UPDATE", "Committed")])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]), [B]: versions([SEED_TOKEN]) },
    });
    expect(kinds(h)).toEqual(["atomicity"]);
  });

  it("reports a rolled-back create that left the object behind, and accepts one that removed it", () => {
    const objects = [object("a", false)];
    const spec = { ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }], records: [record("t-one", "RolledBack", [member(A, "CREATE", "Restored")])], objects };
    expect(kinds(history({ ...spec, histories: { [A]: versions([null, "tok-c1o1", null]) } }))).toEqual([]);
    expect(kinds(history({ ...spec, histories: { [A]: versions([null, "tok-c1o1"]) } }))).toEqual(["atomicity"]);
  });

  it("accepts a committed delete, and a rolled-back delete that put the object back", () => {
    const objects = [object("a", true, "c1")];
    const ops = [{ id: "c1o1", tx: "t-one", deletes: [A], at: 1 }];
    const committed = history({ objects, ops, records: [record("t-one", "Committed", [member(A, "DELETE", "Committed")])], histories: { [A]: versions([SEED_TOKEN, null], 1) } });
    const restored = history({ objects, ops, records: [record("t-one", "RolledBack", [member(A, "DELETE", "Restored")])], histories: { [A]: versions([SEED_TOKEN, null, SEED_TOKEN], 1) } });
    expect(kinds(committed)).toEqual([]);
    expect(kinds(restored)).toEqual([]);
  });

  it("follows a transaction that deleted and re-created an object, and its rollback that removes the copy and puts back the original", () => {
    // One transparent transaction: c1o1 deletes A, c1o2 re-creates it; the record lists A once, as its first write (DELETE).
    const h = history({
      objects: [object("a", true, "c1")],
      ops: [{ id: "c1o1", tx: "t-one", deletes: [A], at: 0 }, { id: "c1o2", tx: "t-one", applies: [A], at: 2 }],
      records: [record("t-one", "RolledBack", [member(A, "DELETE", "Restored")])],
      histories: { [A]: versions([SEED_TOKEN, null, "tok-c1o2", null, SEED_TOKEN], 1) },
    });
    expect(kinds(h)).toEqual([]);
  });

  it("accepts a rolled-back transaction that created and then deleted an object: it ends absent, as before", () => {
    const h = history({
      objects: [object("a", false, "c1")],
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 0 }, { id: "c1o2", tx: "t-one", deletes: [A], at: 2 }],
      records: [record("t-one", "RolledBack", [member(A, "CREATE", "NotPersisted")])],
      histories: { [A]: versions([null, "tok-c1o1", null]) },
    });
    expect(kinds(h)).toEqual([]);
  });

  it("reports a rolled-back delete whose object stayed deleted", () => {
    const h = history({
      objects: [object("a", true, "c1")],
      ops: [{ id: "c1o1", tx: "t-one", deletes: [A], at: 1 }],
      records: [record("t-one", "RolledBack", [member(A, "DELETE", "Restored")])],
      histories: { [A]: versions([SEED_TOKEN, null], 1) },
    });
    expect(kinds(h)).toEqual(["atomicity"]);
  });

  it("reports a write that persisted outside every transaction record", () => {
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }],
      records: [record("t-one", "Committed", [])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]) },
    });
    expect(kinds(h)).toEqual(["untracked-write"]);
  });

  it("reports a value no apply of the trial wrote", () => {
    const h = history({ ops: [], records: [], histories: { [A]: versions([SEED_TOKEN, "someone-else"]) } });
    expect(kinds(h)).toEqual(["unexplained-value"]);
  });
});

describe("the chaos checker: lost updates and isolation", () => {
  it("reports a rollback that restored an older value over a committed write", () => {
    // t-one commits A; t-two writes A, rolls back, and puts back the seed instead of t-one's value.
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }, { id: "c2o1", user: "bob", tx: "t-two", applies: [A], at: 5 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")]), record("t-two", "RolledBack", [member(A, "UPDATE", "Restored")], "bob")],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", "tok-c2o1", SEED_TOKEN]) },
    });
    expect(kinds(h)).toContain("lost-update");
  });

  it("accepts a rollback that restored the committed value before it", () => {
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }, { id: "c2o1", user: "bob", tx: "t-two", applies: [A], at: 5 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")]), record("t-two", "RolledBack", [member(A, "UPDATE", "Restored")], "bob")],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", "tok-c2o1", "tok-c1o1"]) },
    });
    expect(kinds(h)).toEqual([]);
  });

  it("reports a transaction that wrote an object while another's write of it was unresolved", () => {
    // t-two writes A between t-one's write and t-one's restore; t-one's restore then reverts t-two's committed write.
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }, { id: "c2o1", user: "bob", tx: "t-two", applies: [A], at: 2 }],
      records: [record("t-one", "RolledBack", [member(A, "UPDATE", "Restored")]), record("t-two", "Committed", [member(A, "UPDATE", "Committed")], "bob")],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", "tok-c2o1", SEED_TOKEN]) },
    });
    expect(kinds(h)).toEqual(["isolation", "lost-update"]);
  });

  // chaos seed 4250 trial 238: carol's create of A rolled back; her refused delete of A, in the same transaction, ran while the
  // rollback deleted A, so the history cannot tell the restore from her own delete. alice created A after the rollback ended.
  const releasedThenWritten = (resolvedAfterSeconds: number): TrialHistory => {
    const at = (seconds: number): number => T0 + seconds * 1000;
    return history({
      objects: [object("a", false), object("b")],
      ops: [
        { id: "c3o1", user: "carol", tx: "t-one", applies: [A], at: 1 },
        { id: "c3o2", user: "carol", tx: "t-one", deletes: [A], at: 3, exitCode: 1 },
        { id: "c1o3", tx: "t-two", applies: [A], at: 5.5 },
      ],
      records: [
        { ...record("t-one", "RolledBack", [member(A, "CREATE", "Restored")], "carol"), resolvedAt: new Date(at(resolvedAfterSeconds)).toISOString() },
        record("t-two", "Committed", [member(A, "CREATE", "Committed")]),
      ],
      histories: {
        [A]: [
          { rv: "100", at: at(0), exists: false },
          { rv: "101", at: at(1.5), exists: true, token: "tok-c3o1", uid: "u1" },
          { rv: "102", at: at(3.2), exists: false },
          { rv: "103", at: at(6), exists: true, token: "tok-c1o3", uid: "u2" },
        ],
      },
    });
  };

  it("accepts a write after a rolled-back transaction ended and left the object where it found it", () => {
    expect(kinds(releasedThenWritten(4.5))).toEqual([]);
  });

  it("still reports a write made before that rolled-back transaction ended", () => {
    expect(kinds(releasedThenWritten(7))).toEqual(["isolation"]);
  });

  it("reports committed transactions that no serial order explains", () => {
    // A says one before two, B says two before one.
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A, B], at: 1 }, { id: "c2o1", user: "bob", tx: "t-two", applies: [A, B], at: 1 }],
      records: [
        record("t-one", "Committed", [member(A, "UPDATE", "Committed"), member(B, "UPDATE", "Committed")]),
        record("t-two", "Committed", [member(A, "UPDATE", "Committed"), member(B, "UPDATE", "Committed")], "bob"),
      ],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", "tok-c2o1"]), [B]: versions([SEED_TOKEN, "tok-c2o1", "tok-c1o1"]) },
    });
    expect(kinds(h)).toEqual(["serial-order"]);
  });
});

describe("the chaos checker: records and leftovers", () => {
  it("reads a member's failure, which names the member, as the message of a record that rolled back for it", () => {
    const view = recordView({ spec: { user: "alice", mode: "transparent" }, status: {
      phase: "RolledBack", reason: "MemberFailed", message: "a member failed (see failure), so the transaction's 1 member rolls back",
      failure: "the apiserver rejected the create of configmaps ns/bad-c1o1 before it reached kubetx",
    } });
    expect(view.message).toBe("the apiserver rejected the create of configmaps ns/bad-c1o1 before it reached kubetx");
  });

  it("reports a record still open after quiescence", () => {
    const h = history({ ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }], records: [record("t-one", "Verifying", [])], histories: {} });
    expect(kinds(h)).toEqual(["record-not-final"]);
  });

  it("reports a Committed record whose members say otherwise", () => {
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Restored")])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]) },
    });
    expect(kinds(h)).toEqual(["record-untrue"]);
  });

  it("reports a lock left by a committed transaction, and keeps quiet about a Failed one's", () => {
    const ops = [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }];
    const histories = { [A]: versions([SEED_TOKEN, "tok-c1o1"]) };
    const lock = { kind: "lock" as const, name: "lk-1", transaction: "t-one" };
    const committed = history({ ops, histories, records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")])], leftovers: [lock] });
    const failed = history({ ops, histories, records: [record("t-one", "Failed", [member(A, "UPDATE", "Failed")])], leftovers: [lock] });
    expect(kinds(committed)).toEqual(["leftover"]);
    expect(kinds(failed)).toEqual([]);
    expect(checkTrial(failed).notes.map((n) => n.kind)).toContain("failed-transaction");
  });

  it("reports a client told of a transaction that has no record", () => {
    const h = history({ ops: [{ id: "c1o1", tx: "t-ghost", applies: [A], at: 1 }], records: [], histories: {} });
    expect(kinds(h)).toEqual(["record-missing"]);
  });

  it("reports a member the workload never wrote, such as a controller's ReplicaSet", () => {
    const replicaSet: MemberView = { group: "apps", resource: "replicasets", namespace: NS, name: "web-5d8f", operation: "CREATE", outcome: "Committed" };
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 1 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed"), replicaSet])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]) },
    });
    expect(kinds(h)).toEqual(["foreign-member"]);
  });
});

describe("the chaos checker: applies as units", () => {
  const partialSpec = {
    ops: [{ id: "c1o1", tx: "t-one", applies: [A, B], at: 1, seconds: 1 }],
    records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")])],
    histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]) },
  };

  const partial = (mode: Mode, sink = true, requests?: AuditRequest[]): TrialHistory => history({
    sink,
    ...(requests ? { requests } : {}),
    ops: [{ id: "c1o1", tx: "t-one", mode, applies: [A, B], at: 1, seconds: 4 }],
    records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")], "alice", mode)],
    histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]) },
  });

  it("reports an explicit apply that committed some of its objects", () => {
    expect(kinds(partial("explicit"))).toEqual(["partial-apply"]);
  });

  it("takes a transparent apply's partial commit without the audit sink as the documented limit", () => {
    const h = partial("transparent", false);
    expect(kinds(h)).toEqual([]);
    expect(checkTrial(h).notes.map((n) => n.kind)).toContain("transparent-limit");
  });

  it("takes a transparent apply whose writes paused longer than the quiet window as two applies, and one without such a pause as one", () => {
    const at = (s: number): AuditRequest => ({ at: T0 + s * 1000, user: "alice", verb: "patch", resource: "configmaps", namespace: NS, code: 200 });
    expect(kinds(partial("transparent", true, [at(1), at(1.1), at(4.5)]))).toEqual([]);
    expect(kinds(partial("transparent", true, [at(1), at(1.1), at(1.3)]))).toEqual(["partial-apply"]);
  });

  it("takes a transparent partial commit as a limit where kubetx never learnt of the failure because the apiserver restarted, not where it had failed the user's transaction", () => {
    const restart = [{ kind: "apiserver-restart" as const, startedAt: T0 + 3000, endedAt: T0 + 12_000 }];
    const failed = record("t-failed", "RolledBack", []);
    const unheard = history({ ...partialSpec, faults: restart });
    const heard = history({ ...partialSpec, faults: restart, records: [...partialSpec.records, { ...failed, reason: "MemberFailed", createdAt: new Date(T0 + 2000).toISOString() }] });
    expect(kinds(unheard)).toEqual([]);
    expect(kinds(heard)).toEqual(["partial-apply"]);
  });

  it("reports an apply with an invalid member that committed, unless transparent mode could not see it", () => {
    const spec = (mode: Mode, invalid: OpPlan["invalid"], sink: boolean): TrialHistory => history({
      sink,
      ops: [{ id: "c1o1", tx: "t-one", mode, applies: [A], invalid, at: 1 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")], "alice", mode)],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]) },
    });
    expect(kinds(spec("plugin", "unknown-field", false))).toContain("invalid-committed");
    expect(kinds(spec("transparent", "bad-key", false))).toEqual(["invalid-committed"]);
    expect(kinds(spec("transparent", "unknown-field", true))).toEqual(["invalid-committed"]);
    expect(kinds(spec("transparent", "unknown-field", false))).toEqual([]);
  });

  it("excuses a committed invalid member that a killed replica never reported, unless a failure naming that member shows kubetx knew (seed 4251 trial 102)", () => {
    const kill = [{ kind: "sigkill" as const, replica: 1, startedAt: T0 + 2000, endedAt: T0 + 3000 }];
    const failed = (message: string): RecordView => ({ ...record("t-later", "RolledBack", []), reason: "MemberFailed", message, createdAt: new Date(T0 + 3000).toISOString() });
    const spec = (records: RecordView[]): TrialHistory => history({
      sink: false,
      faults: kill,
      ops: [{ id: "c1o1", tx: "t-one", mode: "transparent", applies: [A], invalid: "bad-key", at: 1 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")], "alice", "transparent"), ...records],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]) },
    });
    expect(kinds(spec([]))).toEqual([]);
    // The same user's next apply failed on a lock: nothing about this member.
    expect(kinds(spec([failed(`a write to configmaps ${NS}/cm-a was denied: it is locked by transaction t-x1 (bob)`)]))).toEqual([]);
    expect(kinds(spec([failed(`the apiserver rejected the create of configmaps ${NS}/bad-c1o1 before it reached kubetx`)]))).toEqual(["invalid-committed"]);
    expect(kinds(spec([failed(`the apiserver rejected the create of configmaps ${NS}/bad-c1o12 before it reached kubetx`)]))).toEqual([]);
  });

  it("reports kubectl tx apply saying committed when the record says rolled back", () => {
    const h = history({
      ops: [{ id: "c1o1", tx: "t-one", mode: "plugin", applies: [A], at: 1, stdout: "transaction t-one committed: 1 member\n" }],
      records: [record("t-one", "RolledBack", [member(A, "UPDATE", "Restored")], "alice", "plugin")],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", SEED_TOKEN]) },
    });
    expect(kinds(h)).toEqual(["plugin-outcome"]);
  });
});

describe("the chaos checker: which transaction a write belongs to", () => {
  it("takes the transaction kubetx named for the write's own request, though the client also heard of a later one that lists the same object", () => {
    // c1o1's write of A joined t-one; after a long pause its write of B joined t-two, which c1o2's write of A joined moments later.
    const request = (s: number, name: string, transaction: string): AuditRequest => ({ at: T0 + s * 1000, user: "alice", verb: "patch", resource: "configmaps", namespace: NS, name, code: 200, transaction });
    const spec = {
      ops: [{ id: "c1o1", tx: "t-one", alsoHeard: ["t-two"], applies: [A, B], at: 1, seconds: 4 }, { id: "c1o2", tx: "t-two", applies: [A], at: 5.5 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")]), record("t-two", "Committed", [member(B, "UPDATE", "Committed"), member(A, "UPDATE", "Committed")])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1", "tok-c1o2"]), [B]: versions([SEED_TOKEN, "tok-c1o1"]) },
    };
    expect(kinds(history({ ...spec, requests: [request(1.2, "a", "t-one"), request(4.8, "b", "t-two"), request(5.7, "a", "t-two")] }))).toEqual([]);
  });

  it("never takes an explicit apply's refused write as part of another transaction of the same user that lists the object", () => {
    // c1o1 (t-one) committed A; c1o2 (t-two) wrote B, its write of A was refused by another webhook, and t-two rolled back.
    const spec: Build = {
      ops: [{ id: "c1o1", mode: "explicit", tx: "t-one", applies: [A], at: 0 }, { id: "c1o2", mode: "explicit", tx: "t-two", applies: [A, B], at: 1, exitCode: 1 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")], "alice", "explicit"), record("t-two", "RolledBack", [member(B, "UPDATE", "Restored")], "alice", "explicit")],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]), [B]: versions([SEED_TOKEN, "tok-c1o2", SEED_TOKEN]) },
    };
    expect(kinds(history(spec))).toEqual([]);
  });

  it("never takes a transparent write that persisted nowhere (the apiserver refused it, the client heard nothing) as part of the transaction an earlier apply of the same user opened", () => {
    // c1o1 committed A in t-one; c1o2's apply of A and an invalid object then got 403s from a restarted apiserver and printed no kubetx line.
    const spec: Build = {
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 0 }, { id: "c1o2", tx: "t-none", applies: [A], invalid: "bad-key", at: 1, exitCode: 1, refused: `Error from server (Forbidden): deployments.apps "a" is forbidden: User "alice" cannot get resource "configmaps"\n` }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed")])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]) },
    };
    expect(kinds(history(spec))).toEqual([]);
  });

  it("takes a write whose client heard nothing, but which reached its object, as part of the transaction an earlier apply of the same user opened and it joined", () => {
    const spec: Build = {
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 0 }, { id: "c1o2", tx: "t-none", applies: [B], at: 1, silent: true, exitCode: 1 }],
      records: [record("t-one", "Committed", [member(A, "UPDATE", "Committed"), member(B, "UPDATE", "Committed")])],
      histories: { [A]: versions([SEED_TOKEN, "tok-c1o1"]), [B]: versions([SEED_TOKEN, "tok-c1o2"]) },
    };
    expect(kinds(history(spec))).toEqual([]);
  });

  it("takes a write whose client heard nothing as part of the same user's transaction a later apply of hers joined (F12), not of another user's", () => {
    // c1o1's create of A persisted, but the apiserver died before answering; c1o2 (within the quiet window) deleted A in the same transaction, which then rolled back.
    const spec = (user: OpPlan["user"]): Build => ({
      objects: [object("a", false), object("b")],
      ops: [{ id: "c1o1", tx: "t-one", applies: [A], at: 0, silent: true, exitCode: 1 }, { id: "c1o2", user, tx: "t-one", applies: [B], deletes: [A], at: 1, seconds: 1 }],
      records: [record("t-one", "RolledBack", [member(A, "CREATE", "NotPersisted"), member(B, "UPDATE", "Restored")])],
      histories: { [A]: versions([null, "tok-c1o1", null]), [B]: versions([SEED_TOKEN, "tok-c1o2", SEED_TOKEN]) },
    });
    expect(kinds(history(spec("alice")))).toEqual([]);
    expect(kinds(history(spec("bob")))).toContain("untracked-write");
  });
});

describe("the chaos checker: the apiserver's audit log", () => {
  const line = (fields: Record<string, unknown>): string => JSON.stringify({
    kind: "Event", stage: "ResponseComplete", verb: "patch", requestURI: "/api/v1/namespaces/ns/configmaps/a",
    user: { username: "alice" }, objectRef: { resource: "configmaps", namespace: "ns", name: "a" },
    responseStatus: { code: 200 }, requestReceivedTimestamp: "2026-11-30T10:00:01.250000Z",
    annotations: { "validate.kubetx.io/transaction": "t-one" }, ...fields,
  });

  it("keeps the users' completed writes in the trial's namespaces with kubetx's transaction, and nothing else", () => {
    const text = [
      line({}),
      line({ stage: "ResponseStarted" }),
      line({ verb: "get" }),
      line({ user: { username: "system:serviceaccount:kubetx-system:kubetx" } }),
      line({ objectRef: { resource: "configmaps", namespace: "elsewhere", name: "a" } }),
      line({ requestURI: "/api/v1/namespaces/ns/configmaps/a?dryRun=All" }),
      line({ objectRef: { resource: "deployments", namespace: "ns", name: "web", subresource: "status" } }),
      '{"kind":"Event","stage":"ResponseComp',
    ].join("\n");
    expect(workloadRequests(text, new Set(["alice"]), new Set(["ns"]))).toEqual([
      { at: Date.parse("2026-11-30T10:00:01.250Z"), user: "alice", verb: "patch", resource: "configmaps", namespace: "ns", name: "a", code: 200, transaction: "t-one" },
    ]);
  });
});

describe("the chaos checker: serial order", () => {
  it("finds no cycle in a chain and finds the cycle of two transactions that each overwrote the other", () => {
    const chain = precedenceEdges(new Map([["A", ["t1", "t2", "t3"]], ["B", ["t1", "t3"]]]));
    expect(findCycle(chain)).toBeUndefined();
    const crossed = precedenceEdges(new Map([["A", ["t1", "t2"]], ["B", ["t2", "t1"]]]));
    expect(findCycle(crossed)?.map((e) => `${e.from}>${e.to}`).sort()).toEqual(["t1>t2", "t2>t1"]);
  });

  it("finds a cycle three transactions long that no pair shows", () => {
    const edges = precedenceEdges(new Map([["A", ["t1", "t2"]], ["B", ["t2", "t3"]], ["C", ["t3", "t1"]]]));
    expect(findCycle(edges)).toHaveLength(3);
  });
});

describe("the chaos workload", () => {
  it("draws the same plan from the same seed and trial, and another from the next trial", () => {
    const first = planTrial({ seed: 42, trial: 7, replicas: 3 });
    expect(planTrial({ seed: 42, trial: 7, replicas: 3 })).toEqual(first);
    expect(planTrial({ seed: 42, trial: 8, replicas: 3 })).not.toEqual(first);
  });

  it("gives every apply a token of its own and transparent clients users of their own", () => {
    const plan = planTrial({ seed: 5, trial: 1, replicas: 2 });
    const ops = plan.clients.flatMap((c) => c.ops);
    expect(new Set(ops.map((o) => o.token)).size).toBe(ops.length);
    expect(new Set(plan.clients.map((c) => c.user)).size).toBe(plan.clients.length);
    expect(plan.faults.every((f) => !("replica" in f) || (f.replica >= 1 && f.replica <= 2))).toBe(true);
  });

  it("runs some transparent applies as another tool, and only transparent ones", () => {
    const ops = Array.from({ length: 40 }, (_, trial) => planTrial({ seed: 9, trial, replicas: 2 })).flatMap((p) => p.clients.flatMap((c) => c.ops));
    const other = ops.filter((o) => o.fieldManager === OTHER_TOOL);
    expect(other.length).toBeGreaterThan(0);
    expect(other.every((o) => o.mode === "transparent")).toBe(true);
    expect(ops.filter((o) => o.mode === "transparent" && o.fieldManager === undefined).length).toBeGreaterThan(0);
  });
});
