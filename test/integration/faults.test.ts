/**
 * The ways to end in a wrong state that a review of the protocol found,
 * each shown on the real cluster: an object deleted and re-created in one
 * transaction, a Failed transaction's locks, a user who may only create, a
 * garbled lock, a slow third-party webhook holding a write kubetx allowed,
 * a takeover while kubectl may still be writing, a stepped wall clock, and
 * state that must not grow.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/devcluster/ports.ts";
import type { KubeClient, KubeObject, RequestOptions } from "../../src/kube/index.ts";
import { KUBETX_USERNAME } from "../../src/kube/names.ts";
import { LockStore } from "../../src/locks/store.ts";
import { CLOSING_ROLE, closingLease, lockName } from "../../src/locks/record.ts";
import { createLogger } from "../../src/telemetry/logger.ts";
import { newTransaction, transactionPath } from "../../src/transactions/model.ts";
import type { Transaction } from "../../src/transactions/model.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { register, startEngine, startServeProcess, unregister, useEngine } from "../support/engine.ts";
import { configMap, inTransaction, leftovers, phaseOf, readOrUndefined, until, waitResolved, yamlOf } from "../support/objects.ts";
import { HoldingClient } from "../support/holding-client.ts";
import { startThirdPartyWebhook } from "../support/third-party.ts";

const ENABLED = { "kubetx.io/enabled": "true" };
const LEASES = "/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases";

function joined(stderr: string): string {
  const match = /kubetx: joined transaction (t-[a-z0-9-]+)/.exec(stderr);
  if (!match?.[1]) throw new Error(`kubectl printed no kubetx warning:\n${stderr}`);
  return match[1];
}

/** The real client, except that it never deletes a session Lease (the garbage collector's). */
class SessionKeepingClient extends HoldingClient {
  constructor(inner: KubeClient) {
    super(inner, { role: "none", ms: 0, when: "before" });
  }

  override delete<T = KubeObject>(path: string, options?: RequestOptions): Promise<T> {
    if (path.includes("/leases/ss-")) return Promise.resolve({} as T);
    return super.delete<T>(path, options);
  }
}

const invalid = (ns: string, name: string): KubeObject => configMap(ns, name, { "bad key": "ConfigMap keys may not contain spaces" });

describe("faults in one engine's transactions", () => {
  const ns = uniqueName("faults");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  const fixture = useEngine(ns, ENABLED, { quietWindowMs: 3_000 });
  let admin: KubeClient;
  beforeAll(() => {
    admin = fixture.admin();
  });

  it("gives an object deleted and re-created in one transaction (replace --force) its original back on rollback", async () => {
    await admin.create(cms, configMap(ns, "forced", { v: "original" }));
    const before = await admin.get(`${cms}/forced`);
    const replaced = await kubectl(["replace", "--force", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "forced", { v: "replacement" })]) });
    expect(replaced.code, replaced.stderr).toBe(0);
    const id = joined(replaced.stderr);
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([invalid(ns, "breaks-forced")]) })).code).not.toBe(0);
    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("RolledBack");
    const after = await admin.get(`${cms}/forced`);
    expect(after.data).toEqual({ v: "original" });
    expect(after.metadata?.uid).not.toBe(before.metadata?.uid);
  });

  it("gives an object back when the transaction deleted it and another webhook refused the create that followed (chaos F15)", async () => {
    await admin.create(cms, configMap(ns, "deleted-then-refused", { v: "original" }));
    const thirdParty = await startThirdPartyWebhook(ns);
    try {
      const deleted = await kubectl(["delete", "configmap", "deleted-then-refused", "-n", ns], { user: "alice" });
      expect(deleted.code, deleted.stderr).toBe(0);
      const id = joined(deleted.stderr);
      const refused = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "deleted-then-refused", { v: "new" }, { labels: { "third-party": "deny" } })]) });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("third-party=deny");
      const tx = await waitResolved(admin, id);
      expect(tx.status?.phase).toBe("RolledBack");
      expect((await admin.get(`${cms}/deleted-then-refused`)).data).toEqual({ v: "original" });
    } finally {
      await thirdParty.close();
    }
  });

  it("keeps rolling back while another webhook fails kubetx's restore for a while, then restores, instead of ending Failed (chaos seed 6020 trial 7)", async () => {
    await admin.create(cms, configMap(ns, "flaky-restore", { v: "original" }));
    // The other team's webhook fails (an error, not a denial: the apiserver answers 500) kubetx's restore while `failing`.
    const state = { failing: false, failed: 0 };
    const thirdParty = await startThirdPartyWebhook(ns, {
      meanwhile: (request) => {
        if (!state.failing || request.userInfo.username !== KUBETX_USERNAME || request.name !== "flaky-restore") return Promise.resolve();
        state.failed += 1;
        return Promise.reject(new Error("the other team's webhook is restarting"));
      },
    });
    try {
      const updated = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "flaky-restore", { v: "alice" })]) });
      expect(updated.code, updated.stderr).toBe(0);
      const id = joined(updated.stderr);
      state.failing = true;
      expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([invalid(ns, "breaks-flaky-restore")]) })).code).not.toBe(0);
      await until("the restore to meet the failing webhook twice", () => Promise.resolve(state.failed >= 2 ? true : undefined));
      expect(await phaseOf(admin, id)).toBe("RollingBack");
      state.failing = false;
      const tx = await waitResolved(admin, id, 60_000);
      expect(tx.status?.phase, JSON.stringify(tx.status)).toBe("RolledBack");
      expect((await admin.get(`${cms}/flaky-restore`)).data).toEqual({ v: "original" });
    } finally {
      state.failing = false;
      await thirdParty.close();
    }
  });

  it("rolls back an update the apiserver admitted twice after a storage conflict, keeping the other writer's change (chaos F21)", async () => {
    await admin.create(cms, configMap(ns, "admitted-twice", { v: "original" }));
    // Between the apiserver's read of the object and kubetx's lock, an exempt writer (admin) labels it: the storage
    // update then conflicts, and the apiserver runs admission again for the same patch, from the labelled object.
    let labelled = false;
    const thirdParty = await startThirdPartyWebhook(ns, {
      kind: "mutating",
      meanwhile: async (request) => {
        if (labelled || request.name !== "admitted-twice" || request.operation !== "UPDATE") return;
        labelled = true;
        await admin.mergePatch(`${cms}/admitted-twice`, { metadata: { labels: { team: "payments" } } });
      },
    });
    try {
      const updated = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "admitted-twice", { v: "alice" })]) });
      expect(updated.code, updated.stderr).toBe(0);
      expect(labelled).toBe(true);
      const id = joined(updated.stderr);
      expect((await admin.get(`${cms}/admitted-twice`)).data).toEqual({ v: "alice" });
      expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([invalid(ns, "breaks-admitted-twice")]) })).code).not.toBe(0);
      const tx = await waitResolved(admin, id);
      expect(tx.status?.reason).not.toBe("RestoreImpossible");
      expect(tx.status?.phase).toBe("RolledBack");
      const after = await admin.get(`${cms}/admitted-twice`);
      expect(after.data).toEqual({ v: "original" });
      expect(after.metadata?.labels?.team).toBe("payments");
    } finally {
      await thirdParty.close();
    }
  });

  it("gives an object back when the transaction updated it and another webhook refused a later write of it (chaos F17)", async () => {
    await admin.create(cms, configMap(ns, "updated-then-refused", { v: "original" }));
    const thirdParty = await startThirdPartyWebhook(ns);
    try {
      const updated = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "updated-then-refused", { v: "first" })]) });
      expect(updated.code, updated.stderr).toBe(0);
      const id = joined(updated.stderr);
      const refused = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "updated-then-refused", { v: "second" }, { labels: { "third-party": "deny" } })]) });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("third-party=deny");
      const tx = await waitResolved(admin, id);
      expect(tx.status?.phase).toBe("RolledBack");
      expect(tx.status?.members?.[0]).toMatchObject({ outcome: "Restored" });
      const after = await admin.get(`${cms}/updated-then-refused`);
      expect(after.data).toEqual({ v: "original" });
      expect(after.metadata?.labels?.["third-party"]).toBeUndefined();
    } finally {
      await thirdParty.close();
    }
  });

  it("never takes over the lock of a Failed transaction: its locks stay until an admin resolves it", async () => {
    const kubetx = await client("kubetx");
    try {
      const failed = "t-failed001";
      const bob = await client("bob");
      await bob.create(transactionPath(), newTransaction(failed, { user: "bob", mode: "explicit" })).finally(() => bob.close());
      await kubetx.replace(`${transactionPath(failed)}/status`, { ...(await kubetx.get(transactionPath(failed))), status: { phase: "Failed", reason: "RestoreImpossible", message: "could not restore" } });
      const ref = { group: "", version: "v1", resource: "configmaps", namespace: ns, name: "kept" };
      await new LockStore({ client: kubetx, namespace: "kubetx-system", ttlSeconds: () => 3 }).acquire({ transaction: failed, ref, kind: "ConfigMap", operation: "CREATE", user: "bob", requestUid: "x", admittedAt: Date.now() });
      const refused = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "kept", { v: "alice" })]) });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("is locked by transaction t-failed001");
      expect((await kubetx.get(`${LEASES}/${lockName(ref)}`)).metadata?.labels?.["kubetx.io/transaction"]).toBe(failed);
      // The admin resolves it: deleting the record releases what it kept.
      await admin.delete(transactionPath(failed));
      await fixture.engine().resolver.collectGarbage();
      await until("the Failed transaction's lock removed", async () => ((await fixture.engine().resolver.collectGarbage()) >= 0 && (await leftovers(admin, failed)).length === 0 ? true : undefined), 15_000);
    } finally {
      kubetx.close();
    }
  });

  it("does not let a user who may only create lock an object that already exists", async () => {
    await admin.create(cms, configMap(ns, "existing-one", { v: "1" }));
    await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "create-only" },
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["create"] }],
    });
    await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "carol-create-only" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "create-only" },
      subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "carol" }],
    });
    const create = (): ReturnType<typeof kubectl> => kubectl(["--as", "carol", "create", "-f", "-"], { input: yamlOf([configMap(ns, "existing-one", { v: "carol" })]) });
    const refused = await until("RBAC to let carol create", async () => {
      const attempt = await create();
      return attempt.stderr.includes("cannot create resource") ? undefined : attempt;
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("already exists and you may not update it, so your create cannot lock it");
    expect(await readOrUndefined(admin, `${LEASES}/${lockName({ group: "", version: "v1", resource: "configmaps", namespace: ns, name: "existing-one" })}`)).toBeUndefined();
    // carol's create of a new object is an ordinary member.
    const fresh = await kubectl(["--as", "carol", "create", "-f", "-"], { input: yamlOf([configMap(ns, "carols-own", { v: "1" })]) });
    expect(fresh.code, fresh.stderr).toBe(0);
    expect((await waitResolved(admin, joined(fresh.stderr))).status?.phase).toBe("Committed");
  });

  it("fails a transaction whose lock Lease was garbled, keeps its locks, and says which lock", async () => {
    const id = "t-garbled1";
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "garbled", { v: "1" }), id, 2)]) })).code).toBe(0);
    const name = lockName({ group: "", version: "v1", resource: "configmaps", namespace: ns, name: "garbled" });
    await admin.mergePatch(`${LEASES}/${name}`, { metadata: { annotations: { "kubetx.io/member": "{not json" } } });
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "garbled-2", { v: "1" }), id, 2)]) })).code).toBe(0);
    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("Failed");
    expect(tx.status?.message).toContain(`lock ${name}: its Lease cannot be read`);
    expect(await readOrUndefined(admin, `${LEASES}/${name}`)).toBeDefined();
    await admin.delete(`${LEASES}/${name}`);
    await admin.delete(transactionPath(id));
  });

  it("removes a resolved transaction's session Lease, so sessions do not pile up", async () => {
    const applied = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([configMap(ns, "bobs", { v: "1" })]) });
    const id = joined(applied.stderr);
    expect((await waitResolved(admin, id)).status?.phase).toBe("Committed");
    const sessionsOf = async (): Promise<KubeObject[]> => (await admin.get<{ items: KubeObject[] }>(LEASES, { query: { labelSelector: "kubetx.io/role=session" } })).items
      .filter((lease) => (lease.spec as { holderIdentity?: string } | undefined)?.holderIdentity === id);
    expect(await sessionsOf()).toHaveLength(1);
    await fixture.engine().resolver.collectGarbage();
    expect(await sessionsOf()).toEqual([]);
  });
});

describe("a write held by a slow third-party webhook after kubetx allowed it", () => {
  const ns = uniqueName("slowhook");
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns, ENABLED);
  });
  afterAll(() => admin.close());

  /** alice creates `fast` and, through the slow webhook, `slow`; returns the transaction and when `slow` landed. */
  async function applyWithSlowMember(delayMs: number): Promise<{ id: string; slowLandedAt: number }> {
    const thirdParty = await startThirdPartyWebhook(ns);
    thirdParty.delayMs = delayMs;
    try {
      const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "fast", { v: "1" }), configMap(ns, "slow", { v: "1" }, { labels: { "third-party": "slow" } })]) });
      expect(applied.code, applied.stderr).toBe(0);
      return { id: joined(applied.stderr), slowLandedAt: performance.now() };
    } finally {
      await thirdParty.close();
    }
  }

  it("with the audit sink: waits for the held request's own outcome, then commits both", async () => {
    const engine = await startEngine({ auditSink: true, quietWindowMs: 1_000, auditSinkDelayMs: 1_000 }, { port: cluster().auditSinkPort });
    try {
      const { id } = await applyWithSlowMember(3_000);
      const tx = await waitResolved(admin, id, 30_000);
      expect(tx.status?.phase).toBe("Committed");
      expect(tx.status?.members?.map((m) => m.name).sort()).toEqual(["fast", "slow"]);
    } finally {
      await unregister();
      await engine.close();
      await admin.delete(`/api/v1/namespaces/${ns}/configmaps`).catch(() => undefined);
    }
  });

  it("without the sink: rolls back, holds the locks while the write may still land, and undoes it when it does (no orphan)", async () => {
    const engine = await startEngine({ quietWindowMs: 1_000, persistGraceMs: 500, lateWriteMs: 6_000 });
    try {
      const { id, slowLandedAt } = await applyWithSlowMember(4_000);
      const tx = await waitResolved(admin, id, 30_000);
      expect(tx.status?.phase).toBe("RolledBack");
      expect(performance.now()).toBeGreaterThan(slowLandedAt);
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/slow`)).toBeUndefined();
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/fast`)).toBeUndefined();
    } finally {
      await unregister();
      await engine.close();
    }
  });
});

describe("the last member of a transaction that closes by count", () => {
  const ns = uniqueName("bycount");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns, ENABLED);
  });
  afterAll(() => admin.close());

  it("is admitted when the resolver closes the transaction between its lock and its admission's check (chaos F22)", async () => {
    // The second of two expected members takes its lock; its admission learns so only a second and a half later,
    // while the resolver (every 100 ms) sees both locks and closes the transaction: its closing mark is newer than the lock.
    const id = "t-bycount01";
    let holding: HoldingClient | undefined;
    const engine = await startEngine({ auditSink: true }, {
      port: cluster().auditSinkPort,
      wrapClient: (real) => (holding = new HoldingClient(real, { transaction: id, ms: 1_500, when: "after", skip: 1 })),
    });
    try {
      const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "first", { v: "1" }), id, 2)]) });
      expect(first.code, first.stderr).toBe(0);
      const last = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "last", { v: "1" }), id, 2)]) });
      expect(holding?.held).toBeGreaterThanOrEqual(1);
      expect(last.code, last.stderr).toBe(0);
      const tx = await waitResolved(admin, id);
      expect(tx.status).toMatchObject({ phase: "Committed", reason: "AllMembersArrived" });
      expect(tx.status?.countedAt).toMatch(/^\d+$/);
      expect(tx.status?.members?.map((m) => m.name).sort()).toEqual(["first", "last"]);
      expect((await admin.get(`${cms}/last`)).data).toEqual({ v: "1" });
    } finally {
      await unregister();
      await engine.close();
    }
  });
});

describe("a member whose lock is written after the resolver began to close its transaction", () => {
  it("is refused and gives its lock back, and the transaction commits without it", async () => {
    // An explicit transaction without a member count closes once quiet. Its second member's lock request waits
    // three and a half seconds inside kubetx, so it reaches the apiserver after the closing mark; the Lease cache,
    // once it holds that lock, holds the older mark too, and admission refuses with no read of the record.
    const admin = await client("admin");
    const ns = uniqueName("latelock");
    await createNamespace(ns, ENABLED);
    const id = "t-latelock1";
    let holding: HoldingClient | undefined;
    const engine = await startEngine({ quietWindowMs: 1_000 }, { wrapClient: (real) => (holding = new HoldingClient(real, { transaction: id, ms: 3_500, when: "before", skip: 1 })) });
    try {
      const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "first", { v: "1" }), id)]) });
      expect(first.code, first.stderr).toBe(0);
      const late = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "late", { v: "1" }), id)]) });
      expect(holding?.held).toBe(1);
      expect(late.code).not.toBe(0);
      expect(late.stderr).toContain(`transaction ${id} closed while this write was admitted`);
      const tx = await waitResolved(admin, id);
      expect(tx.status).toMatchObject({ phase: "Committed", reason: "QuietWindowPassed" });
      expect(tx.status?.members?.map((m) => m.name)).toEqual(["first"]);
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/late`)).toBeUndefined();
      const lateLock = lockName({ group: "", version: "v1", resource: "configmaps", namespace: ns, name: "late" });
      expect(await readOrUndefined(admin, `${LEASES}/${lateLock}`)).toBeUndefined();
    } finally {
      await unregister();
      await engine.close();
      admin.close();
    }
  });
});

describe("a write that joins a transparent transaction after the resolver decided to close it (chaos F23)", () => {
  // alice's apply goes quiet and the resolver decides to close its transaction; its closing mark is held back three
  // seconds. alice's next apply writes meanwhile: it joins the transaction the resolver has already decided to close,
  // and nothing tells which apply those writes belong to. Committing would keep them while the rest of that apply,
  // refused once the mark exists, is lost: the transaction rolls back with both applies instead.
  async function joinAsItCloses(next: (ns: string) => KubeObject[]): Promise<void> {
    const admin = await client("admin");
    const ns = uniqueName("asclose");
    await createNamespace(ns, ENABLED);
    let id: string | undefined;
    let holding: HoldingClient | undefined;
    const engine = await startEngine({ quietWindowMs: 1_000 }, {
      wrapClient: (real) => (holding = new HoldingClient(real, { role: CLOSING_ROLE, transaction: () => id, ms: 3_000, when: "before" })),
    });
    try {
      const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "a", { v: "1" }), configMap(ns, "b", { v: "1" })]) });
      expect(first.code, first.stderr).toBe(0);
      id = joined(first.stderr);
      await until("the resolver to decide to close alice's transaction", () => Promise.resolve((holding?.held ?? 0) > 0 ? true : undefined));
      const second = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(next(ns)) });
      expect(second.code, second.stderr).toBe(0);
      expect(joined(second.stderr)).toBe(id);
      const tx = await waitResolved(admin, id);
      expect(tx.status).toMatchObject({ phase: "RolledBack", reason: "JoinedAsItClosed" });
      for (const name of ["a", "b", "c"]) expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/${name}`)).toBeUndefined();
    } finally {
      await unregister();
      await engine.close();
      admin.close();
    }
  }

  it("rolls back when the write changes an object the transaction holds (the record's activity tells)", async () => {
    await joinAsItCloses((ns) => [configMap(ns, "a", { v: "2" }), configMap(ns, "c", { v: "2" })]);
  });

  it("rolls back when the write takes a new lock (a lock newer than the resolver's count tells)", async () => {
    await joinAsItCloses((ns) => [configMap(ns, "c", { v: "2" })]);
  });

  it("refuses the rest of an apply whose first write failed before admission as the last transaction closed, though the failure is known only after its commit", async () => {
    // Without the audit sink, /observe reports a write refused before admission (an invalid object) an intent grace
    // after it: here 2 s. alice's invalid write comes about 5 s after her last one, in her transaction's last quiet
    // window (4 s plus that grace); the transaction commits before the failure is known. The failure is her next
    // apply's, so her next write is refused rather than committed on its own. The garbage collector is kept from
    // removing alice's session meanwhile (it points at the committed transaction when the failure is judged).
    const admin = await client("admin");
    const ns = uniqueName("failnext");
    await createNamespace(ns, ENABLED);
    const quietMs = 4_000 + 2_000 + 100;
    const engine = await startEngine({ quietWindowMs: 4_000, intentGraceMs: 2_000, maxOpenSeconds: 30 }, { wrapClient: (real) => new SessionKeepingClient(real) });
    try {
      const startedAt = Date.now();
      const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "a", { v: "1" })]) });
      expect(first.code, first.stderr).toBe(0);
      const id = joined(first.stderr);
      await sleep(4_700);
      expect(await phaseOf(admin, id)).toBe("Open");
      expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([invalid(ns, "broken")]) })).code).not.toBe(0);
      expect((await waitResolved(admin, id)).status?.phase).toBe("Committed");
      const failed = await until("the failure to open a failed transaction for alice", async () => {
        const all = (await admin.get<{ items: Transaction[] }>(transactionPath())).items;
        // Opened since this test began (creation times have whole seconds).
        return all.find((tx) => tx.metadata?.name !== id && tx.spec.user === "alice" && tx.status?.failure && Date.parse(tx.metadata?.creationTimestamp ?? "") >= startedAt - 1_000);
      }, 10_000);
      const next = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "b", { v: "1" })]) });
      expect(next.code).not.toBe(0);
      expect(next.stderr).toContain(`transaction ${failed.metadata?.name ?? "?"}`);
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/b`)).toBeUndefined();
      expect((await admin.get(`/api/v1/namespaces/${ns}/configmaps/a`)).data).toEqual({ v: "1" });
      // alice's later tests start clean: her failed transaction ends and stops refusing.
      await waitResolved(admin, failed.metadata?.name ?? "");
      await sleep(quietMs);
    } finally {
      await unregister();
      await engine.close();
      admin.close();
    }
  });
});

describe("a closing mark whose move was lost", () => {
  it("is carried out by the next pass, and refuses new members meanwhile", async () => {
    // A transaction waiting for its second expected member would stay open; a closing mark (as a resolver that
    // crashed between the mark and its move leaves it) says roll back: the resolver does, and the member is refused.
    const admin = await client("admin");
    const ns = uniqueName("marked");
    await createNamespace(ns, ENABLED);
    const id = "t-marked001";
    const engine = await startEngine();
    try {
      const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "first", { v: "1" }), id, 2)]) });
      expect(first.code, first.stderr).toBe(0);
      await admin.create(LEASES, closingLease(id, "replica-gone", { next: "RollingBack", reason: "Timeout", message: "closed by a replica that crashed before it moved the record" }));
      const second = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "second", { v: "1" }), id, 2)]) });
      expect(second.code).not.toBe(0);
      const tx = await waitResolved(admin, id);
      expect(tx.status).toMatchObject({ phase: "RolledBack", reason: "Timeout", message: "closed by a replica that crashed before it moved the record" });
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/first`)).toBeUndefined();
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/second`)).toBeUndefined();
    } finally {
      await unregister();
      await engine.close();
      admin.close();
    }
  });
});

describe("a quiet close's mark left by a replica that crashed before its move", () => {
  // The mark says verify because the transaction went quiet, and what that was decided on: the record's activity
  // token and the Lease revision of the lock count. The replica that carries it out checks the mark's basis, not
  // what it reads itself: writes since the decision roll the transaction back (chaos F23).
  async function carried(basis: (lockRevision: string) => { lastActivity: string; countedAt: string }, then?: (ns: string) => Promise<void>): Promise<Transaction> {
    const admin = await client("admin");
    const ns = uniqueName("quietmark");
    await createNamespace(ns, ENABLED);
    // A quiet window long enough that this engine does not decide to close by itself.
    const engine = await startEngine({ quietWindowMs: 6_000, maxOpenSeconds: 30 });
    try {
      const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "first", { v: "1" })]) });
      expect(first.code, first.stderr).toBe(0);
      const id = joined(first.stderr);
      const lock = await admin.get(`${LEASES}/${lockName({ group: "", version: "v1", resource: "configmaps", namespace: ns, name: "first" })}`);
      await then?.(ns);
      await admin.create(LEASES, closingLease(id, "replica-gone", { next: "Verifying", reason: "QuietWindowPassed", basis: basis(lock.metadata?.resourceVersion ?? "") }));
      return await waitResolved(admin, id);
    } finally {
      await unregister();
      await engine.close();
      admin.close();
    }
  }

  it("commits when nothing was written since the decision", async () => {
    const tx = await carried((lock) => ({ lastActivity: "", countedAt: lock }));
    expect(tx.status).toMatchObject({ phase: "Committed", reason: "QuietWindowPassed" });
  });

  it("rolls back when a later write noted activity since", async () => {
    const tx = await carried((lock) => ({ lastActivity: "", countedAt: lock }), async (ns) => {
      const again = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "first", { v: "2" })]) });
      expect(again.code, again.stderr).toBe(0);
    });
    expect(tx.status).toMatchObject({ phase: "RolledBack", reason: "JoinedAsItClosed" });
  });

  it("rolls back when it holds a lock newer than the count", async () => {
    const tx = await carried((lock) => ({ lastActivity: "", countedAt: String(Number(lock) - 1) }));
    expect(tx.status).toMatchObject({ phase: "RolledBack", reason: "JoinedAsItClosed" });
    expect(tx.status?.message).toContain("configmaps");
  });
});

describe("a coordinator that stops while kubectl may still be writing", () => {
  it("lets a transparent transaction it took over wait a quiet window, so a write arriving through the new replica joins it", async () => {
    const admin = await client("admin");
    const ns = uniqueName("takeover");
    await createNamespace(ns, ENABLED);
    const first = await startServeProcess(await freePort(), "replica-1", { quietWindowMs: 2_500 });
    let second: Awaited<ReturnType<typeof startServeProcess>> | undefined;
    try {
      await register(first.port);
      const part1 = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "part-1", { v: "1" })]) });
      const id = joined(part1.stderr);
      await first.kill("SIGKILL");
      second = await startServeProcess(await freePort(), "replica-2", { quietWindowMs: 2_500 });
      await register(second.port);
      const took = second;
      await until("the second replica took over", () => Promise.resolve(took.output().includes("took over transaction") ? true : undefined), 20_000);
      const part2 = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "part-2", { v: "2" })]) });
      expect(joined(part2.stderr)).toBe(id);
      const tx = await waitResolved(admin, id, 20_000);
      expect(tx.status?.phase).toBe("Committed");
      expect(tx.status?.reason).toBe("CoordinatorLost");
      expect(tx.status?.members?.map((m) => m.name)).toEqual(["part-1", "part-2"]);
    } finally {
      await first.kill("SIGKILL");
      await second?.kill("SIGTERM");
      await unregister();
      admin.close();
    }
  });
});

describe("a wall clock stepped on one replica", () => {
  it("does not make it take over a transaction another replica still renews", async () => {
    const admin = await client("admin");
    const ns = uniqueName("clockstep");
    await createNamespace(ns, ENABLED);
    const leader = await startEngine();
    let logs = "";
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => ((logs += chunk.toString()), done()) });
    // An hour ahead on the wall clock; time passes at the normal rate.
    const stepped = await startEngine(undefined, { register: false, clock: { now: () => Date.now() + 3_600_000, monotonic: () => performance.now() }, logger: createLogger({ destination: sink }) });
    try {
      const id = "t-clockst1";
      expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "steady", { v: "1" }), id, 2)]) })).code).toBe(0);
      const seen = new Set<string>();
      await until("four heartbeat renewals", async () => {
        seen.add((await admin.get(`${LEASES}/hb-${id}`)).metadata?.resourceVersion ?? "");
        return seen.size > 4 ? true : undefined;
      }, 20_000);
      expect(logs).not.toContain("took over transaction");
      expect(await phaseOf(admin, id)).toBe("Open");
    } finally {
      await stepped.close();
      await unregister();
      await leader.close();
      admin.close();
    }
  });
});
