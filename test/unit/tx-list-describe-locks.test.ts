import { describe, expect, it } from "vitest";
import { ReadOnlyClient } from "../support/read-only-client.ts";
import type { ReviewDeps } from "../../src/cli/tx/cluster-read.ts";
import { describeJson, describeLines, runDescribe } from "../../src/cli/tx/describe.ts";
import { lockRows, locksTable, runLocks } from "../../src/cli/tx/locks.ts";
import { Forbidden, NotFound } from "../../src/kube/errors.ts";
import type { KubeObject } from "../../src/kube/types.ts";
import type { Member } from "../../src/locks/record.ts";
import { lockLease } from "../../src/locks/record.ts";
import type { Transaction } from "../../src/transactions/model.ts";

const NOW = Date.parse("2026-11-24T15:00:00Z");
const LEASES = "/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases";
const TRANSACTIONS = "/apis/kubetx.io/v1alpha1/transactions";


function deps(answer: (path: string) => unknown): ReviewDeps & { out: string[]; err: string[]; client: ReadOnlyClient } {
  const out: string[] = [];
  const err: string[] = [];
  const client = new ReadOnlyClient(answer);
  return { connect: () => Promise.resolve(client), now: () => NOW, say: (l) => out.push(l), warn: (l) => err.push(l), out, err, client };
}

const rolledBack: Transaction = {
  apiVersion: "kubetx.io/v1alpha1", kind: "Transaction", metadata: { name: "t-0123abcd" },
  spec: { user: "alice", mode: "explicit", expectedMembers: 3 },
  status: {
    phase: "RolledBack", reason: "Timeout", message: "only 2 of 3 expected members arrived\nwithin 60 s", coordinator: "kubetx-7d9f",
    openedAt: "2026-11-24T14:00:00Z", closedAt: "2026-11-24T14:01:00Z", resolvedAt: "2026-11-24T14:01:01Z", memberCount: 2,
    members: [
      { group: "", version: "v1", resource: "configmaps", kind: "ConfigMap", namespace: "shop", name: "settings", operation: "CREATE", outcome: "Restored", message: "deleted (uid 1234)" },
      { group: "apps", version: "v1", resource: "deployments", namespace: "shop", name: "web", operation: "UPDATE", outcome: "Restored", message: "restored resourceVersion 41" },
    ],
  },
};

describe("a described transaction", () => {
  it("shows the header, then one aligned line per member with its outcome and what was restored", () => {
    expect(describeLines(describeJson(rolledBack))).toEqual([
      "Transaction:  t-0123abcd",
      "User:         alice",
      "Mode:         explicit",
      "Phase:        RolledBack",
      "Reason:       Timeout",
      "Message:      only 2 of 3 expected members arrived",
      "              within 60 s",
      "Expected:     3 members",
      "Opened:       2026-11-24T14:00:00Z",
      "Closed:       2026-11-24T14:01:00Z",
      "Resolved:     2026-11-24T14:01:01Z",
      "Coordinator:  kubetx-7d9f",
      "Members (2):",
      "  OPERATION   OBJECT                      OUTCOME    MESSAGE",
      "  CREATE      configmaps shop/settings    Restored   deleted (uid 1234)",
      "  UPDATE      apps/deployments shop/web   Restored   restored resourceVersion 41",
    ]);
  });

  it("shows - for what kubetx has not recorded yet", () => {
    const opened: Transaction = { ...rolledBack, spec: { user: "alice", mode: "plugin", clientState: "Applying" }, status: undefined };
    const lines = describeLines(describeJson(opened));
    expect(lines).toContain("Phase:        - (kubetx has seen no member yet)");
    expect(lines).toContain("kubectl:      Applying");
    expect(lines).toContain("Reason:       -");
    expect(lines.at(-1)).toBe("Members:      none");
  });

  it("counts an open transaction's members before it lists them, and says where to see them", () => {
    const open: Transaction = { ...rolledBack, spec: { user: "alice", mode: "explicit", expectedMembers: 3 }, status: { phase: "Open", memberCount: 2 } };
    expect(describeLines(describeJson(open)).at(-1)).toBe("Members:      2 so far, listed here once it closes ('kubectl tx locks' shows the objects now)");
    expect(describeJson(open).memberCount).toBe(2);
  });

  it("is JSON with every field, null where absent", () => {
    const json = describeJson(rolledBack);
    expect(json).toMatchObject({ id: "t-0123abcd", phase: "RolledBack", failure: null, clientState: null, expectedMembers: 3, coordinator: "kubetx-7d9f" });
    expect(json.members[1]).toEqual({
      operation: "UPDATE", object: "apps/deployments shop/web", group: "apps", version: "v1", resource: "deployments", namespace: "shop", name: "web",
      kind: null, outcome: "Restored", message: "restored resourceVersion 41", conflicts: [],
    });
  });

  it("shows a member failure under Failure, beside the summary the message gives", () => {
    const failed = { ...rolledBack, status: { ...rolledBack.status, reason: "MemberFailed", message: "a member failed (see failure), so the transaction's 2 members roll back", failure: "x was rejected" } };
    const lines = describeLines(describeJson(failed));
    expect(lines).toContain("Message:      a member failed (see failure), so the transaction's 2 members roll back");
    expect(lines).toContain("Failure:      x was rejected");
  });

  it("gives an older record's failure once, in text and JSON, when its message repeats it", () => {
    const failed = { ...rolledBack, status: { ...rolledBack.status, message: "x was rejected", failure: "x was rejected", conflicts: ["apps/deployments shop/web: spec.replicas"] } };
    const json = describeJson(failed);
    expect(json).toMatchObject({ message: null, failure: "x was rejected" });
    expect(JSON.stringify(json).split("x was rejected")).toHaveLength(2);
    const lines = describeLines(json);
    expect(lines.filter((l) => l.includes("x was rejected"))).toEqual(["Failure:      x was rejected"]);
    expect(lines.join("\n")).toMatch(/Kept: +changes made by someone else since, not overwritten:\n +apps\/deployments shop\/web: spec.replicas/);
  });
});

describe("kubectl tx describe", () => {
  it("reads the record and prints it", async () => {
    const d = deps(() => rolledBack);
    expect(await runDescribe({ id: "t-0123abcd", output: "json" }, d)).toBe(0);
    expect(d.client.calls.map((c) => c.path)).toEqual([`${TRANSACTIONS}/t-0123abcd`]);
    expect(JSON.parse(d.out.join("\n"))).toEqual(describeJson(rolledBack));
  });

  it("says a missing transaction is missing, and a missing resource that kubetx is not installed", async () => {
    const init = { method: "GET", path: `${TRANSACTIONS}/t-0123abcd`, status: 404, reason: "NotFound" };
    await expect(runDescribe({ id: "t-0123abcd", output: "table" }, deps(() => new NotFound({ ...init, message: 'transactions.kubetx.io "t-0123abcd" not found' }))))
      .rejects.toThrow("kubectl tx: transaction t-0123abcd not found; list them with 'kubectl tx list'");
    await expect(runDescribe({ id: "t-0123abcd", output: "table" }, deps(() => new NotFound({ ...init, message: "the server could not find the requested resource" }))))
      .rejects.toThrow(/kubetx is not installed in this cluster/);
  });
});

function member(name: string, transaction: string, admittedAt: number): Member {
  return {
    transaction, ref: { group: "", version: "v1", resource: "configmaps", namespace: "shop", name }, kind: "ConfigMap",
    operation: "CREATE", user: "alice", requestUid: `uid-${name}`, admittedAt,
  };
}

const older = lockLease(member("b", "t-0123abcd", NOW - 90_000), 30);
const newer = lockLease(member("a", "t-4567abcd", NOW - 5_000), 30);
const heartbeat: KubeObject = { metadata: { name: "hb-t-0123abcd", labels: { "kubetx.io/role": "heartbeat" } }, spec: { holderIdentity: "kubetx-1" } };

describe("the locks", () => {
  it("are kubetx's lock Leases, oldest first, with object, holder, its phase, user, operation, acquired time and lease duration", () => {
    const rows = lockRows([newer, heartbeat, older], new Map([["t-0123abcd", "Failed"]]));
    expect(rows.map((r) => [r.object, r.transaction, r.phase, r.user, r.operation, r.acquired, r.leaseDurationSeconds])).toEqual([
      ["configmaps shop/b", "t-0123abcd", "Failed", "alice", "CREATE", "2026-11-24T14:58:30.000Z", 30],
      ["configmaps shop/a", "t-4567abcd", null, "alice", "CREATE", "2026-11-24T14:59:55.000Z", 30],
    ]);
    expect(locksTable(rows, NOW)).toEqual([
      "OBJECT              TRANSACTION   PHASE    USER    OPERATION   ACQUIRED                         LEASE",
      "configmaps shop/b   t-0123abcd    Failed   alice   CREATE      2026-11-24T14:58:30Z (90s ago)   30s",
      "configmaps shop/a   t-4567abcd    -        alice   CREATE      2026-11-24T14:59:55Z (5s ago)    30s",
    ]);
  });
});

describe("kubectl tx locks", () => {
  it("lists lock Leases in kubetx-system by label and the transactions for their phases", async () => {
    const d = deps((path) => (path === LEASES ? { items: [older] } : { items: [{ ...rolledBack, metadata: { name: "t-0123abcd" }, status: { phase: "Open" } }] }));
    expect(await runLocks({ output: "json" }, d)).toBe(0);
    expect(d.client.calls[0]).toMatchObject({ path: LEASES, query: { labelSelector: "kubetx.io/role=lock" } });
    expect(JSON.parse(d.out.join("\n"))).toEqual([expect.objectContaining({ object: "configmaps shop/b", transaction: "t-0123abcd", phase: "Open", lease: older.metadata?.name })]);
  });

  it("still shows the locks when the transactions cannot be read", async () => {
    const d = deps((path) => (path === LEASES ? { items: [older] } : new Forbidden({ method: "GET", path, status: 403, reason: "Forbidden", message: "no" })));
    await runLocks({ output: "table" }, d);
    expect(d.out[1]).toMatch(/^configmaps shop\/b +t-0123abcd +- +alice/);
    expect(d.err).toEqual(["kubectl tx: warning: could not read the transactions' phases (403 Forbidden: no); PHASE shows -"]);
  });

  it("says none are held on stderr", async () => {
    const d = deps(() => ({ items: [] }));
    await runLocks({ output: "table" }, d);
    expect(d.out).toEqual([]);
    expect(d.err).toEqual(["No locks held."]);
  });

  it("tells an ordinary user that reading kubetx-system needs an admin kubeconfig or a role for leases", async () => {
    const forbidden = new Forbidden({
      method: "GET", path: LEASES, status: 403, reason: "Forbidden",
      message: 'leases.coordination.k8s.io is forbidden: User "alice" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "kubetx-system"',
    });
    await expect(runLocks({ output: "table" }, deps(() => forbidden))).rejects.toThrow(
      'kubectl tx: you may not list leases in kubetx-system, where kubetx keeps its locks (403 Forbidden: leases.coordination.k8s.io is forbidden: User "alice" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "kubetx-system"); ' +
        "use an admin kubeconfig (--kubeconfig), or ask a cluster admin for a role that grants get and list on leases (coordination.k8s.io) in kubetx-system",
    );
  });
});
