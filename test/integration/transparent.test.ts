/**
 * Transparent mode: a plain `kubectl apply` in an opted-in namespace is
 * all-or-nothing, with nothing changed in how people type it.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { client, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister, useEngine } from "../support/engine.ts";
import { transactionPath } from "../../src/transactions/model.ts";
import { configMap, leftoversSettled, readOrUndefined, waitResolved, yamlOf } from "../support/objects.ts";
import { startThirdPartyWebhook } from "../support/third-party.ts";


/**
 * The transaction kubectl was told it joined (kubetx's warning line), or,
 * when the very first write was denied and none joined, the one the denial
 * says will roll back.
 */
function joined(stderr: string): string {
  const match = /kubetx: joined transaction (t-[a-z0-9-]+)/.exec(stderr) ?? /Transaction (t-[a-z0-9-]+) will roll back/.exec(stderr);
  if (!match?.[1]) throw new Error(`kubectl printed no kubetx warning:\n${stderr}`);
  return match[1];
}

const invalid = (ns: string, name: string): KubeObject => configMap(ns, name, { "bad key": "ConfigMap keys may not contain spaces" });

describe("transparent mode", () => {
  const ns = uniqueName("plain");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  const fixture = useEngine(ns);
  let admin: KubeClient;
  beforeAll(() => {
    admin = fixture.admin();
  });

  it("commits a valid multi-object apply and keeps its objects", async () => {
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(["ok-1", "ok-2", "ok-3"].map((n) => configMap(ns, n, { v: n }))) });
    expect(applied.code).toBe(0);
    expect(applied.stderr).toMatch(/kubetx: joined transaction t-[0-9a-f]+ \(3 members\)/);
    const tx = await waitResolved(admin, joined(applied.stderr));
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.spec.mode).toBe("transparent");
    expect(tx.status?.reason).toBe("QuietWindowPassed");
    for (const n of ["ok-1", "ok-2", "ok-3"]) expect((await admin.get(`${cms}/${n}`)).data).toEqual({ v: n });
    expect(await leftoversSettled(admin, tx.metadata?.name ?? "")).toEqual([]);
  });

  it("removes every valid object of an apply whose last object is invalid", async () => {
    const docs = [configMap(ns, "first", { v: "1" }), configMap(ns, "second", { v: "2" }), invalid(ns, "last")];
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    expect(applied.code).not.toBe(0);
    expect(applied.stdout).toContain("configmap/first created");
    const tx = await waitResolved(admin, joined(applied.stderr));
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.failure).toContain("rejected the create of configmaps");
    expect(tx.status?.failure).toContain("/last");
    expect(await readOrUndefined(admin, `${cms}/first`)).toBeUndefined();
    expect(await readOrUndefined(admin, `${cms}/second`)).toBeUndefined();
    const events = await admin.get<{ items: { reason?: string; involvedObject?: { name?: string } }[] }>(`/api/v1/namespaces/${ns}/events`);
    expect(events.items.filter((e) => e.reason === "TransactionRolledBack").map((e) => e.involvedObject?.name).sort()).toEqual(
      expect.arrayContaining(["first", "second"]),
    );
  });

  it("refuses the rest of an apply whose first write failed, even once the failed transaction has nothing left to restore", async () => {
    const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([invalid(ns, "starts-badly")]) });
    expect(first.code).not.toBe(0);
    // The failed transaction had no member to restore; the apply's next write, a moment later, must not start afresh and commit.
    await new Promise((resolve) => setTimeout(resolve, 700));
    const rest = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "after-bad-start", { v: "1" })]) });
    expect(rest.code, rest.stdout).not.toBe(0);
    const refusedBy = /kubetx: transaction (t-[0-9a-f]+) is rolling back/.exec(rest.stderr)?.[1];
    expect(refusedBy).toBeDefined();
    // Once the apply has gone quiet the transaction resolves, and the user's next apply starts afresh.
    expect((await waitResolved(admin, refusedBy ?? "")).status?.phase).toBe("RolledBack");
    expect(await readOrUndefined(admin, `${cms}/after-bad-start`)).toBeUndefined();
  });

  it("keeps a server-side apply over objects client-side apply wrote one transaction, kubectl's migration writes included", async () => {
    const names = ["ssa-1", "ssa-2", "ssa-3"];
    const clientSide = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(names.map((n) => configMap(ns, n, { v: "1" }))) });
    expect(clientSide.code).toBe(0);
    expect((await waitResolved(admin, joined(clientSide.stderr))).status?.phase).toBe("Committed");
    const lastApplied = async (name: string): Promise<string | undefined> => (await admin.get(`${cms}/${name}`)).metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"];
    const before = await lastApplied("ssa-1");
    const serverSide = (docs: KubeObject[]): ReturnType<typeof kubectl> => kubectl(["apply", "--server-side", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    const transactionsIn = (stderr: string): Set<string> => new Set([...stderr.matchAll(/joined transaction (t-[0-9a-f]+)/g)].map((m) => m[1] ?? ""));

    // Each object's apply patch, then kubectl's two writes that move last-applied-configuration over, all in one transaction: a failure undoes all.
    const failed = await serverSide([configMap(ns, "ssa-1", { v: "2" }), configMap(ns, "ssa-2", { v: "2" }), invalid(ns, "ssa-bad")]);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).not.toContain("failed to migrate");
    expect([...transactionsIn(failed.stderr)]).toHaveLength(1);
    expect((await waitResolved(admin, joined(failed.stderr))).status?.phase).toBe("RolledBack");
    for (const n of ["ssa-1", "ssa-2"]) expect((await admin.get(`${cms}/${n}`)).data).toEqual({ v: "1" });
    expect(await lastApplied("ssa-1")).toBe(before);

    const applied = await serverSide(names.map((n) => configMap(ns, n, { v: "2" })));
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stderr).not.toContain("failed to migrate");
    const ids = [...transactionsIn(applied.stderr)];
    expect(ids).toHaveLength(1);
    const tx = await waitResolved(admin, ids[0] ?? "");
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.status?.memberCount).toBe(3);
    for (const n of names) {
      const live = await admin.get(`${cms}/${n}`);
      expect(live.data).toEqual({ v: "2" });
      expect(JSON.stringify(live.metadata?.managedFields)).toContain('"manager":"kubectl-last-applied"');
    }
  });

  it("lets the user's next command continue her apply on an object the apply holds, instead of meeting its lock (apply && label)", async () => {
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "then-labelled", { v: "1" }), configMap(ns, "then-other", { v: "1" })]) });
    expect(applied.code, applied.stderr).toBe(0);
    // A command of a third tool between them, on another object: a transaction of its own, which the session follows.
    const between = await kubectl(["create", "configmap", "then-between", "-n", ns], { user: "alice" });
    expect(between.code, between.stderr).toBe(0);
    // Another tool (field manager kubectl-label), within the apply's quiet window: before, "locked by transaction … (alice)".
    const labelled = await kubectl(["label", "configmap", "then-labelled", "tier=web", "-n", ns], { user: "alice" });
    expect(labelled.code, labelled.stderr).toBe(0);
    const tx = joined(applied.stderr);
    expect(joined(labelled.stderr)).toBe(tx);
    expect(joined(between.stderr)).not.toBe(tx);
    const resolved = await waitResolved(admin, tx);
    expect(resolved.status?.phase, resolved.status?.failure).toBe("Committed");
    expect(resolved.status?.members?.map((m) => m.name).sort()).toEqual(["then-labelled", "then-other"]);
    expect((await admin.get(`${cms}/then-labelled`)).metadata?.labels).toEqual({ tier: "web" });
    expect((await waitResolved(admin, joined(between.stderr))).status?.phase).toBe("Committed");
  });

  it("does not let a create of an object the open apply wrote continue it: the lock refuses it, and the apply commits", async () => {
    const input = yamlOf([configMap(ns, "created-twice", { v: "1" })]);
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input });
    expect(applied.code, applied.stderr).toBe(0);
    // `… || true` in a script: joined to the apply, its AlreadyExists would roll the apply back.
    const again = await kubectl(["create", "-f", "-"], { user: "alice", input });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`is locked by transaction ${joined(applied.stderr)} (alice)`);
    expect((await waitResolved(admin, joined(applied.stderr))).status?.phase).toBe("Committed");
    expect((await admin.get(`${cms}/created-twice`)).data).toEqual({ v: "1" });
  });

  it("rolls the apply back with the command that continued it when that command fails, and never lets another user continue it", async () => {
    const thirdParty = await startThirdPartyWebhook(ns);
    try {
      const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "cont-a", { v: "1" }), configMap(ns, "cont-b", { v: "1" })]) });
      expect(applied.code, applied.stderr).toBe(0);
      const tx = joined(applied.stderr);
      const bobs = await kubectl(["label", "configmap", "cont-a", "owner=bob", "-n", ns], { user: "bob" });
      expect(bobs.code).not.toBe(0);
      expect(bobs.stderr).toContain(`is locked by transaction ${tx} (alice)`);
      // Hers continues the apply, and the webhook beside kubetx refuses it once kubetx has admitted it.
      const hers = await kubectl(["label", "configmap", "cont-a", "third-party=deny", "-n", ns], { user: "alice" });
      expect(hers.code).not.toBe(0);
      expect(hers.stderr).toContain("third-party=deny");
      expect(joined(hers.stderr)).toBe(tx);
      expect((await waitResolved(admin, tx)).status?.phase).toBe("RolledBack");
    } finally {
      await thirdParty.close();
    }
    expect(await readOrUndefined(admin, `${cms}/cont-a`)).toBeUndefined();
    expect(await readOrUndefined(admin, `${cms}/cont-b`)).toBeUndefined();
  });

  it("gives the valid object its old data back when the other object of an update is invalid", async () => {
    await admin.create(cms, configMap(ns, "keep", { v: "old" }));
    await admin.create(cms, configMap(ns, "break", { v: "old" }));
    const docs = [configMap(ns, "keep", { v: "new" }), { ...configMap(ns, "break", {}), data: { "bad key": "x" } }];
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    expect(applied.code).not.toBe(0);
    const tx = await waitResolved(admin, joined(applied.stderr));
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.members?.map((m) => `${m.name}:${m.operation}:${m.outcome}`)).toEqual(["keep:UPDATE:Restored"]);
    expect((await admin.get(`${cms}/keep`)).data).toEqual({ v: "old" });
    expect((await admin.get(`${cms}/break`)).data).toEqual({ v: "old" });
  });

  it("lets one of alice and bob win when they apply overlapping manifests at the same moment", async () => {
    const alice = [configMap(ns, "only-alice", { by: "alice" }), configMap(ns, "both", { by: "alice" })];
    const bob = [configMap(ns, "both", { by: "bob" }), configMap(ns, "only-bob", { by: "bob" })];
    const [ra, rb] = await Promise.all([
      kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(alice) }),
      kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf(bob) }),
    ]);
    const results = [{ user: "alice", run: ra, only: "only-alice" }, { user: "bob", run: rb, only: "only-bob" }];
    const outcomes = await Promise.all(results.map(async (r) => ({ ...r, tx: await waitResolved(admin, joined(r.run.stderr)) })));
    const winner = outcomes.find((o) => o.tx.status?.phase === "Committed");
    const loser = outcomes.find((o) => o.tx.status?.phase === "RolledBack");
    expect(winner).toBeDefined();
    expect(loser).toBeDefined();
    expect(loser?.run.code).not.toBe(0);
    expect(loser?.run.stderr).toMatch(/kubetx: configmaps .*\/both is locked by transaction t-[0-9a-f]+ \((alice|bob)\)/);
    expect(await readOrUndefined(admin, `${cms}/${loser?.only ?? ""}`)).toBeUndefined();
    expect((await admin.get(`${cms}/both`)).data).toEqual({ by: winner?.user });
    expect((await admin.get(`${cms}/${winner?.only ?? ""}`)).data).toEqual({ by: winner?.user });
  });

  it("re-creates an object deleted in a transaction that fails afterwards", async () => {
    await admin.create(cms, configMap(ns, "doomed", { v: "precious" }, { labels: { keep: "me" } }));
    const deleted = await kubectl(["-n", ns, "delete", "configmap", "doomed"], { user: "alice" });
    expect(deleted.code).toBe(0);
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([invalid(ns, "after-delete")]) });
    expect(applied.code).not.toBe(0);
    const tx = await waitResolved(admin, joined(deleted.stderr));
    expect(tx.status?.phase, JSON.stringify(tx.status)).toBe("RolledBack");
    const back = await admin.get(`${cms}/doomed`);
    expect(back.data).toEqual({ v: "precious" });
    expect(back.metadata?.labels).toEqual({ keep: "me" });
  });

  it("refuses to delete an object with finalizers inside a transaction and says how to do it outside one", async () => {
    await admin.create(cms, configMap(ns, "guarded", { v: "1" }, {}));
    await admin.mergePatch(`${cms}/guarded`, { metadata: { finalizers: ["example.com/hold"] } });
    const refused = await kubectl(["-n", ns, "delete", "configmap", "guarded", "--wait=false"], { user: "alice" });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("cannot be undone: it has finalizers (example.com/hold)");
    expect(refused.stderr).toContain("kubectl annotate configmaps guarded kubetx.io/transaction=none");
    expect((await admin.get(`${cms}/guarded`)).metadata?.deletionTimestamp).toBeUndefined();
    const annotated = await kubectl(["-n", ns, "annotate", "configmap", "guarded", "kubetx.io/transaction=none"], { user: "alice" });
    expect(annotated.code).toBe(0);
    const deleted = await kubectl(["-n", ns, "delete", "configmap", "guarded", "--wait=false"], { user: "alice" });
    expect(deleted.code).toBe(0);
    expect((await admin.get(`${cms}/guarded`)).metadata?.deletionTimestamp).toBeDefined();
    await admin.mergePatch(`${cms}/guarded`, { metadata: { finalizers: null } });
  });
});

describe("transparent mode without the audit sink, where a replica finds a rejected write only a grace and a resolver period after /observe saw it", () => {
  const ns = uniqueName("plain-nosink");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  // The slowest finding the settings allow: the sweep runs once a second, a second after the write was observed.
  const fixture = useEngine(ns, undefined, { auditSink: false, quietWindowMs: 2_000, intentGraceMs: 1_000, resolverPeriodMs: 1_000, lockTtlSeconds: 3 });

  it("keeps the transaction open until that finding can have come, so the apply's last, invalid write still rolls back the rest (chaos F13)", async () => {
    const admin = fixture.admin();
    const docs = [configMap(ns, "kept-out-1", { v: "1" }), configMap(ns, "kept-out-2", { v: "2" }), invalid(ns, "rejected-last")];
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    expect(applied.code).not.toBe(0);
    const tx = await waitResolved(admin, joined(applied.stderr));
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.failure).toContain("rejected the create of configmaps");
    expect(await readOrUndefined(admin, `${cms}/kept-out-1`)).toBeUndefined();
    expect(await readOrUndefined(admin, `${cms}/kept-out-2`)).toBeUndefined();
  });

  it("keeps refusing the apply's next writes for a quiet window after a refusal noted as the rollback ended, then starts afresh (chaos F16)", async () => {
    const admin = fixture.admin();
    const failed = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([configMap(ns, "bob-first", { v: "1" }), invalid(ns, "bob-invalid")]) });
    expect(failed.code).not.toBe(0);
    const id = joined(failed.stderr);
    expect((await waitResolved(admin, id)).status?.phase).toBe("RolledBack");
    // As a write refused while the rollback ran notes it when the rollback has just ended (the resolver never saw it).
    await admin.mergePatch(`${transactionPath(id)}/status`, { status: { refusedAt: new Date().toISOString() } });
    const next = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([configMap(ns, "bob-next", { v: "1" })]) });
    expect(next.code, next.stdout).not.toBe(0);
    expect(next.stderr).toContain(`transaction ${id} rolled back (MemberFailed); the rest of this apply is refused`);
    expect(await readOrUndefined(admin, `${cms}/bob-next`)).toBeUndefined();
    // Quiet for longer than the window (2 s, and 2 s for the sweep's finding) since that refusal: the next apply is a transaction of its own.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const fresh = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([configMap(ns, "bob-next", { v: "1" })]) });
    expect(fresh.code, fresh.stderr).toBe(0);
    const second = joined(fresh.stderr);
    expect(second).not.toBe(id);
    expect((await waitResolved(admin, second)).status?.phase).toBe("Committed");
  });

});

describe("a namespace without the opt-in label", () => {
  it("keeps kubectl's usual apply-as-much-as-possible behaviour", async () => {
    const admin = await client("admin");
    const ns = uniqueName("plain-off");
    await createNamespace(ns);
    const engine = await startEngine();
    try {
      const docs = [configMap(ns, "a", { v: "1" }), invalid(ns, "broken"), configMap(ns, "b", { v: "2" })];
      const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
      expect(applied.code).not.toBe(0);
      expect(applied.stderr).not.toContain("kubetx:");
      expect((await admin.get(`/api/v1/namespaces/${ns}/configmaps/a`)).data).toEqual({ v: "1" });
      expect((await admin.get(`/api/v1/namespaces/${ns}/configmaps/b`)).data).toEqual({ v: "2" });
    } finally {
      await unregister();
      await engine.close();
      admin.close();
    }
  });
});
