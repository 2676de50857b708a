/**
 * The transaction engine against the real apiserver, driven with the real
 * kubectl: commit, rollback, isolation, crash recovery, dry run and bad input.
 */
import https from "node:https";
import { readFile } from "node:fs/promises";
import { beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { freePort } from "../../src/devcluster/ports.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { register, startServeProcess, unregister, useEngine } from "../support/engine.ts";
import { configMap, inTransaction, leftoversSettled, phaseOf, readOrUndefined, until, waitResolved, yamlOf } from "../support/objects.ts";

const ENABLED = { "kubetx.io/enabled": "true" };
/** What rolling back two members may take on a loaded 2-core machine, on top of the takeover bound. */
const ROLLBACK_ALLOWANCE_MS = 1_500;

/** Waits until the transaction's heartbeat Lease has been written `count` more times (each write a new resourceVersion). */
async function heartbeatRenewals(admin: KubeClient, id: string, count: number): Promise<void> {
  const seen = new Set<string>();
  const first = await admin.get(`/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases/hb-${id}`);
  seen.add(first.metadata?.resourceVersion ?? "");
  await until(`${count} renewals of hb-${id}`, async () => {
    const lease = await admin.get(`/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases/hb-${id}`);
    seen.add(lease.metadata?.resourceVersion ?? "");
    return seen.size > count ? true : undefined;
  }, 20_000);
}

describe("explicit transactions", () => {
  const ns = uniqueName("engine");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  const fixture = useEngine(ns);
  let admin: KubeClient;
  beforeAll(() => {
    admin = fixture.admin();
  });

  it("commits a three-object transaction once every member has persisted", async () => {
    const id = "t-commit01";
    const docs = ["a", "b", "c"].map((n) => inTransaction(configMap(ns, `commit-${n}`, { v: n }), id, 3));
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    expect(applied.code).toBe(0);
    expect(applied.stderr).toContain(`kubetx: joined transaction ${id} (3 members)`);
    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.spec.user).toBe("alice");
    expect(tx.status?.members?.map((m) => `${m.name}:${m.operation}:${m.outcome}`)).toEqual([
      "commit-a:CREATE:Committed", "commit-b:CREATE:Committed", "commit-c:CREATE:Committed",
    ]);
    expect(await leftoversSettled(admin, id)).toEqual([]);
    expect((await admin.get(`${cms}/commit-b`)).metadata?.annotations?.["kubetx.io/transaction"]).toBe(id);
  });

  it("restores the other four members when the apiserver rejects the fifth", async () => {
    await admin.create(cms, configMap(ns, "existing", { v: "old" }, { labels: { app: "old" }, annotations: { note: "old" } }));
    await admin.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: "v1", kind: "Secret", metadata: { name: "creds" }, stringData: { password: "old" } });
    const id = "t-reject01";
    const docs: KubeObject[] = [
      configMap(ns, "existing", { v: "new", extra: "x" }, { labels: { app: "new", tier: "web" }, annotations: { note: "new" } }),
      { apiVersion: "v1", kind: "Secret", metadata: { name: "creds", namespace: ns }, stringData: { password: "new" } },
      configMap(ns, "created", { v: "1" }),
      deployment(ns, "web"),
      configMap(ns, "invalid", { "bad key": "spaces are not allowed in ConfigMap keys" }),
    ].map((o) => inTransaction(o, id, 5));
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    expect(applied.code).not.toBe(0);
    expect(applied.stderr).toMatch(/invalid.*bad key|bad key.*invalid/is);

    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.reason).toBe("Timeout");
    expect(tx.status?.message).toContain("only 4 of 5 expected members arrived");
    expect(tx.status?.members?.map((m) => `${m.name}:${m.outcome}`).sort()).toEqual(["created:Restored", "creds:Restored", "existing:Restored", "web:Restored"]);

    expect(await readOrUndefined(admin, `${cms}/created`)).toBeUndefined();
    expect(await readOrUndefined(admin, `/apis/apps/v1/namespaces/${ns}/deployments/web`)).toBeUndefined();
    const existing = await admin.get(`${cms}/existing`);
    expect(existing.data).toEqual({ v: "old" });
    expect(existing.metadata?.labels).toEqual({ app: "old" });
    expect(existing.metadata?.annotations).toEqual({ note: "old" });
    const secret = await admin.get<KubeObject & { data: Record<string, string> }>(`/api/v1/namespaces/${ns}/secrets/creds`);
    expect(Buffer.from(secret.data.password ?? "", "base64").toString()).toBe("old");
    expect(await leftoversSettled(admin, id)).toEqual([]);

    const events = await admin.get<{ items: (KubeObject & { reason?: string; message?: string })[] }>(`/api/v1/namespaces/${ns}/events`, {
      query: { fieldSelector: "involvedObject.name=existing" },
    });
    expect(events.items.some((e) => e.reason === "TransactionRolledBack" && e.message?.includes(id))).toBe(true);
  });

  it("lets exactly one of two racing transactions commit; the other is denied and leaves nothing", async () => {
    const a = "t-racealic", b = "t-racebobb";
    // Each expects three members but sends two at first, so both are open
    // at the same time while they race for race-shared.
    const alice = [configMap(ns, "race-x", { by: "alice" }), configMap(ns, "race-shared", { by: "alice" })].map((o) => inTransaction(o, a, 3));
    const bob = [configMap(ns, "race-shared", { by: "bob" }), configMap(ns, "race-z", { by: "bob" })].map((o) => inTransaction(o, b, 3));
    const [ra, rb] = await Promise.all([
      kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(alice) }),
      kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf(bob) }),
    ]);
    await Promise.all([
      kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "race-x2", { by: "alice" }), a, 3)]) }),
      kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([inTransaction(configMap(ns, "race-z2", { by: "bob" }), b, 3)]) }),
    ]);
    const [ta, tb] = await Promise.all([waitResolved(admin, a), waitResolved(admin, b)]);
    const phases = [ta.status?.phase, tb.status?.phase].sort();
    expect(phases).toEqual(["Committed", "RolledBack"]);
    const [winner, loser, loserRun, loserOnly] = ta.status?.phase === "Committed" ? ["alice", tb, rb, "race-z2"] : ["bob", ta, ra, "race-x2"];
    expect(loserRun.stderr).toMatch(/kubetx: configmaps .*race-shared is locked by transaction t-race/);
    expect(loser.status?.reason).toBe("MemberFailed");
    expect(await readOrUndefined(admin, `${cms}/${loserOnly}`)).toBeUndefined();
    expect((await admin.get(`${cms}/race-shared`)).data).toEqual({ by: winner });
    expect(await leftoversSettled(admin, a)).toEqual([]);
    expect(await leftoversSettled(admin, b)).toEqual([]);
  });

  it("judges a server-side dry run like a real write but writes nothing", async () => {
    const holder = "t-dryhold1";
    await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "dry-held", { v: "1" }), holder, 2)]) });
    const clean = await kubectl(["apply", "--dry-run=server", "-f", "-"], { user: "bob", input: yamlOf([inTransaction(configMap(ns, "dry-free", { v: "1" }), "t-dryrun01", 1)]) });
    expect(clean.code).toBe(0);
    // t-dryrun01 does not exist, and a dry run does not create it: nothing may send bob looking for it.
    expect(clean.stderr).toContain("kubetx: dry run: would start a new transaction");
    expect(clean.stderr).not.toContain("t-dryrun01");
    const conflict = await kubectl(["apply", "--dry-run=server", "-f", "-"], { user: "bob", input: yamlOf([inTransaction(configMap(ns, "dry-held", { v: "2" }), "t-dryrun02", 1)]) });
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain(`is locked by transaction ${holder} (alice)`);
    // kubetx's own words (kubectl echoes the patch, annotation and all, before them).
    const denial = /kubetx: .*/.exec(conflict.stderr)?.[0] ?? "";
    expect(denial).not.toContain("t-dryrun02");
    expect(denial).not.toContain("will roll back");
    for (const id of ["t-dryrun01", "t-dryrun02"]) {
      expect(await phaseOf(admin, id)).toBeUndefined();
      expect(await leftoversSettled(admin, id)).toEqual([]);
    }
    expect(await readOrUndefined(admin, `${cms}/dry-free`)).toBeUndefined();
    expect((await waitResolved(admin, holder)).status?.phase).toBe("RolledBack");
  });

  it("answers malformed AdmissionReviews with 4xx and keeps serving", async () => {
    const ca = await readFile(cluster().caFile);
    // Sent as the apiserver (its client certificate), the only caller kubetx reads a body from.
    const { certFile, keyFile } = cluster().apiserverClientCertificate;
    const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    const post = (body: string, type = "application/json"): Promise<number> => new Promise((resolve, reject) => {
      const req = https.request({ host: "127.0.0.1", port: fixture.engine().port, path: "/validate", method: "POST", ca, cert, key, headers: { "content-type": type } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end(body);
    });
    expect(await post("")).toBe(400);
    expect(await post("{not json")).toBe(400);
    expect(await post(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }))).toBe(400);
    expect(await post(JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: {} }))).toBe(400);
    expect(await post("{}", "text/plain")).toBe(415);
    expect(await post("x".repeat(8 * 1024 * 1024))).toBe(413);
    const after = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "after-junk", { v: "1" }), "t-afterjnk", 1)]) });
    expect(after.stderr).toContain("kubetx: joined transaction t-afterjnk (1 member)");
    expect((await waitResolved(admin, "t-afterjnk")).status?.phase).toBe("Committed");
  });
});

describe("a kubetx process killed mid-transaction", () => {
  it("is rolled back by another process within lock TTL plus a resolver period", async () => {
    const admin = await client("admin");
    const ns = uniqueName("crash");
    await createNamespace(ns, ENABLED);
    const first = await startServeProcess(await freePort(), "replica-1");
    let second: Awaited<ReturnType<typeof startServeProcess>> | undefined;
    try {
      await register(first.port);
      const id = "t-crash001";
      const docs = [configMap(ns, "one", { v: "1" }), configMap(ns, "two", { v: "2" })].map((o) => inTransaction(o, id, 3));
      const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
      expect(applied.code).toBe(0);
      expect(await phaseOf(admin, id)).toBe("Open");
      await first.kill("SIGKILL");

      second = await startServeProcess(await freePort(), "replica-2");
      // Its resolver runs from here: it sees the heartbeat unchanged for a lock TTL, takes over, and rolls back.
      const started = Date.now();
      await register(second.port);
      const tx = await waitResolved(admin, id, 20_000);
      const tookMs = Date.now() - started;
      expect(tx.status?.phase).toBe("RolledBack");
      expect(tx.status?.reason).toBe("CoordinatorLost");
      expect(second.output()).toContain("took over transaction");
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/one`)).toBeUndefined();
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/two`)).toBeUndefined();
      expect(await leftoversSettled(admin, id)).toEqual([]);
      // Lock TTL (3 s) + a resolver period (0.1 s), plus what the rollback itself takes on a loaded machine.
      expect(tookMs).toBeLessThanOrEqual(3_000 + 100 + ROLLBACK_ALLOWANCE_MS);
      expect(tookMs).toBeGreaterThanOrEqual(3_000);
    } finally {
      await first.kill("SIGKILL");
      await second?.kill("SIGTERM");
      await unregister();
      admin.close();
    }
  });
});

describe("two kubetx replicas running side by side", () => {
  it("leave a live coordinator's transaction alone, and take it over only once it dies", async () => {
    const admin = await client("admin");
    const ns = uniqueName("replicas");
    await createNamespace(ns, ENABLED);
    const a = await startServeProcess(await freePort(), "replica-a");
    const b = await startServeProcess(await freePort(), "replica-b");
    try {
      await register(a.port);
      const id = "t-replica1";
      const docs = [configMap(ns, "held", { v: "1" })].map((o) => inTransaction(o, id, 2));
      expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) })).code).toBe(0);
      // Both resolvers run while the coordinator renews the heartbeat (every TTL/3 = 1 s): four renewals
      // span more than a lock TTL, in which the other would have taken over a heartbeat it saw unchanged.
      await heartbeatRenewals(admin, id, 4);
      // Usually a, whose admission created the heartbeat; b when b's resolver saw the record first
      // and its election created the heartbeat (a's create then found it there): either coordinates.
      const holder = (await admin.get<{ spec: { holderIdentity: string } }>(`/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases/hb-${id}`)).spec.holderIdentity;
      const [coordinator, other] = holder === "replica-a" ? [a, b] : [b, a];
      expect([a, b].map((r) => r.output()).join("\n")).not.toContain("took over transaction");
      expect(holder).toMatch(/^replica-[ab]$/);
      expect(await phaseOf(admin, id)).toBe("Open");
      await coordinator.kill("SIGKILL");
      await register(other.port);
      const tx = await waitResolved(admin, id, 20_000);
      expect(tx.status?.reason).toBe("CoordinatorLost");
      expect(other.output()).toContain("took over transaction");
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/held`)).toBeUndefined();
    } finally {
      await a.kill("SIGKILL");
      await b.kill("SIGTERM");
      await unregister();
      admin.close();
    }
  });
});

function deployment(namespace: string, name: string): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "web", image: "nginx:1.27" }] } },
    },
  };
}
