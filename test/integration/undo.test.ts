/**
 * Undo of a committed transaction from its kept journal, refused when an
 * object changed since; and the /metrics endpoint that counts it all.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { newTransaction, transactionPath } from "../../src/transactions/model.ts";
import { client, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister } from "../support/engine.ts";
import { installPlugin } from "../support/plugin.ts";
import { configMap, inTransaction, readOrUndefined, until, waitResolved, yamlOf } from "../support/objects.ts";

describe("undo", () => {
  let engine: WebhookServer;
  let admin: KubeClient;
  let alice: KubeClient;
  const ns = uniqueName("undo");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;

  beforeAll(async () => {
    admin = await client("admin");
    alice = await client("alice");
    await createNamespace(ns, { "kubetx.io/enabled": "true" });
    engine = await startEngine();
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    admin?.close();
    alice?.close();
  });

  async function commit(id: string, docs: ReturnType<typeof configMap>[]): Promise<void> {
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs.map((d) => inTransaction(d, id, docs.length))) });
    expect(applied.code).toBe(0);
    expect((await waitResolved(admin, id)).status?.phase).toBe("Committed");
  }

  async function undo(id: string, as: KubeClient = alice, user = "alice", undoId = `t-undo-${id.slice(-6)}`): Promise<ReturnType<typeof waitResolved>> {
    await as.create(transactionPath(), newTransaction(undoId, { user, mode: "undo", undoOf: id }));
    return waitResolved(admin, undoId);
  }

  it("reverts every member of a committed transaction when none changed since", async () => {
    await admin.create(cms, configMap(ns, "settings", { level: "old" }));
    await commit("t-change01", [configMap(ns, "settings", { level: "new" }), configMap(ns, "added", { v: "1" })]);
    const result = await undo("t-change01");
    expect(result.status?.phase).toBe("Committed");
    expect(result.status?.reason).toBe("Undone");
    expect((await admin.get(`${cms}/settings`)).data).toEqual({ level: "old" });
    expect(await readOrUndefined(admin, `${cms}/added`)).toBeUndefined();
  });

  it("refuses and names the objects that changed since the commit", async () => {
    await commit("t-change02", [configMap(ns, "stable", { v: "1" }), configMap(ns, "touched", { v: "1" })]);
    await admin.mergePatch(`${cms}/touched`, { data: { v: "edited later" } });
    const result = await undo("t-change02");
    expect(result.status?.phase).toBe("RolledBack");
    expect(result.status?.reason).toBe("UndoRefused");
    expect(result.status?.message).toContain(`configmaps ${ns}/touched changed since the commit`);
    expect(result.status?.message).not.toContain("stable");
    expect((await admin.get(`${cms}/stable`)).data).toEqual({ v: "1" });
    expect((await admin.get(`${cms}/touched`)).data).toEqual({ v: "edited later" });
  });

  it("reverts what the transaction wrote although others changed other fields since, and keeps their change", async () => {
    await admin.create(cms, configMap(ns, "shared", { level: "old" }));
    await commit("t-change05", [configMap(ns, "shared", { level: "new" })]);
    // What a controller or a colleague does meanwhile: fields the transaction did not write.
    await admin.mergePatch(`${cms}/shared`, { metadata: { labels: { team: "ops" } }, data: { extra: "kept" } });
    const result = await undo("t-change05");
    expect(result.status?.phase).toBe("Committed");
    expect(result.status?.reason).toBe("Undone");
    const after = await admin.get<KubeObject>(`${cms}/shared`);
    expect(after.data).toEqual({ level: "old", extra: "kept" });
    expect(after.metadata?.labels).toEqual({ team: "ops" });

    // An undo is not undone in turn: it says how to redo instead.
    const redone = await undo(String(result.metadata?.name), alice, "alice", "t-redo-ange05");
    expect(redone.status?.reason).toBe("UndoRefused");
    expect(redone.status?.message).toContain("transaction t-undo-ange05 is itself an undo (of t-change05); to redo that, apply your manifests again");
  });

  it("deletes a Deployment the transaction created after its controller wrote to it, and refuses once someone changed its spec", async () => {
    const deployments = `/apis/apps/v1/namespaces/${ns}/deployments`;
    const deployment = (name: string): KubeObject => ({
      apiVersion: "apps/v1", kind: "Deployment", metadata: { name, namespace: ns },
      spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "web", image: "nginx" }] } } },
    });
    await commit("t-change06", [deployment("rolled-out")]);
    await commit("t-change07", [deployment("rescaled")]);
    // What the deployment controller does all along: its status (as a rollout would report it), not the spec.
    const rolledOut = await admin.get(`${deployments}/rolled-out`);
    await admin.mergePatch(`${deployments}/rolled-out/status`, { status: { observedGeneration: rolledOut.metadata?.generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } });
    await admin.mergePatch(`${deployments}/rescaled`, { spec: { replicas: 3 } });

    const undone = await undo("t-change06");
    expect(undone.status?.phase, JSON.stringify(undone.status)).toBe("Committed");
    expect(await readOrUndefined(admin, `${deployments}/rolled-out`)).toBeUndefined();
    const refused = await undo("t-change07");
    expect(refused.status?.reason).toBe("UndoRefused");
    expect(refused.status?.message).toContain(`apps/deployments ${ns}/rescaled changed since the commit (metadata.generation 1, now 2: its spec changed)`);
    expect(await readOrUndefined(admin, `${deployments}/rescaled`)).toBeDefined();
  });

  it("deletes a ConfigMap the transaction created once a later apply that wrote it was rolled back, and refuses while it differs", async () => {
    await commit("t-change08", [configMap(ns, "kept", { v: "1" }), configMap(ns, "kept-too", { v: "1" })]);
    // Plain kubectl apply (a transparent transaction) changes it, then fails on an object the apiserver rejects: kubetx puts it back.
    const failed = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "kept", { v: "2" }), configMap(ns, "kept-bad", { "bad key": "x" })]) });
    expect(failed.code).not.toBe(0);
    const joined = /joined transaction (t-[0-9a-f]{8})/.exec(failed.stderr)?.[1] ?? "";
    expect((await waitResolved(admin, joined)).status?.phase).toBe("RolledBack");
    expect((await admin.get(`${cms}/kept`)).data).toEqual({ v: "1" });

    await admin.mergePatch(`${cms}/kept-too`, { data: { v: "edited" } });
    const refused = await undo("t-change08", alice, "alice", "t-undo-kept1");
    expect(refused.status?.reason).toBe("UndoRefused");
    expect(refused.status?.message).toContain(`configmaps ${ns}/kept-too changed since the commit`);
    expect(refused.status?.message).not.toContain(`${ns}/kept `);
    await admin.mergePatch(`${cms}/kept-too`, { data: { v: "1" } });
    const undone = await undo("t-change08", alice, "alice", "t-undo-kept2");
    expect(undone.status?.phase, JSON.stringify(undone.status)).toBe("Committed");
    expect(await readOrUndefined(admin, `${cms}/kept`)).toBeUndefined();
    expect(await readOrUndefined(admin, `${cms}/kept-too`)).toBeUndefined();
  });

  it("refuses to undo another user's transaction", async () => {
    await commit("t-change03", [configMap(ns, "alices", { v: "1" })]);
    const bob = await client("bob");
    try {
      const result = await undo("t-change03", bob, "bob");
      expect(result.status?.reason).toBe("UndoRefused");
      expect(result.status?.message).toContain("belongs to alice");
      expect((await admin.get(`${cms}/alices`)).data).toEqual({ v: "1" });
    } finally {
      bob.close();
    }
  });

  it("is what kubectl tx undo does, printing what it restored", async () => {
    const plugin = await installPlugin();
    try {
      await admin.create(cms, configMap(ns, "via-cli", { v: "before" }));
      await commit("t-change04", [configMap(ns, "via-cli", { v: "after" })]);
      const result = await plugin.tx(["undo", "t-change04"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/transaction t-[0-9a-f]+ committed: 1 member/);
      expect(result.stdout).toContain(`UPDATE configmaps ${ns}/via-cli: Restored`);
      expect((await admin.get(`${cms}/via-cli`)).data).toEqual({ v: "before" });
      const again = await plugin.tx(["undo", "t-change04"]);
      expect(again.code).toBe(1);
      expect(again.stdout).toContain(`configmaps ${ns}/via-cli changed since the commit`);
      const usage = await plugin.tx(["undo"]);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain("undo takes exactly one transaction id");
    } finally {
      await plugin.remove();
    }
  });

  it("counts decisions, outcomes and conflicts on /metrics: a conflict and a rollback move their counters", async () => {
    const before = await scrape(engine.metricsPort);
    const held = "t-metric01";
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "contested", { v: "a" }), held, 2)]) })).code).toBe(0);
    const refused = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([inTransaction(configMap(ns, "contested", { v: "b" }), "t-metric02", 2)]) });
    expect(refused.stderr).toContain("is locked by transaction t-metric01");
    expect((await waitResolved(admin, "t-metric02")).status?.phase).toBe("RolledBack");
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "second", { v: "a" }), held, 2)]) })).code).toBe(0);
    expect((await waitResolved(admin, held)).status?.phase).toBe("Committed");
    const after = await until("the counters of both outcomes", async () => {
      const now = await scrape(engine.metricsPort);
      return counter(now, 'kubetx_transactions_total{outcome="Committed"}') > counter(before, 'kubetx_transactions_total{outcome="Committed"}') ? now : undefined;
    });
    // At least one each: the apiserver may call admission again for the same request when its first denial rested on the watch
    // cache, and the counters are the whole engine's, which an earlier story's transaction may still move (seen in CI).
    expect(counter(after, "kubetx_lock_conflicts_total") - counter(before, "kubetx_lock_conflicts_total")).toBeGreaterThanOrEqual(1);
    expect(counter(after, 'kubetx_transactions_total{outcome="RolledBack"}') - counter(before, 'kubetx_transactions_total{outcome="RolledBack"}')).toBeGreaterThanOrEqual(1);
    expect(counter(after, "kubetx_rollback_duration_seconds_count") - counter(before, "kubetx_rollback_duration_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(counter(after, 'kubetx_admission_duration_seconds_count{path="/validate",decision="member"}') - counter(before, 'kubetx_admission_duration_seconds_count{path="/validate",decision="member"}')).toBeGreaterThanOrEqual(2);
  });
});

/** /metrics is plain HTTP on a port of its own, apart from the webhooks. */
function scrape(port: number | undefined): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: "/metrics" }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

/** A sample's value, 0 when the series has no sample yet. */
function counter(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
