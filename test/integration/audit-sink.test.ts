/**
 * The audit sink: the apiserver reports every request's outcome to kubetx,
 * so a plain kubectl apply rolls back when one of its writes fails anywhere:
 * while decoding (a misspelt field, a wrong type), in another webhook, or in
 * storage.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import https from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { performance } from "node:perf_hooks";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { Conflict } from "../../src/kube/index.ts";
import type { Transaction } from "../../src/transactions/model.ts";
import { transactionPath } from "../../src/transactions/model.ts";
import { ensureClientCertificate } from "../../src/devcluster/certs.ts";
import { AUDIT_PATH } from "../../src/server/app.ts";
import { cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister, useEngine } from "../support/engine.ts";
import { configMap, phaseOf, readOrUndefined, until, waitResolved, yamlOf } from "../support/objects.ts";
import { installPlugin } from "../support/plugin.ts";
import { startThirdPartyWebhook } from "../support/third-party.ts";

function joined(stderr: string): string {
  const match = /kubetx: joined transaction (t-[a-z0-9-]+)/.exec(stderr);
  if (!match?.[1]) throw new Error(`kubectl printed no kubetx warning:\n${stderr}`);
  return match[1];
}

const service = (ns: string, name: string): KubeObject => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: ns }, spec: { selector: { app: name }, ports: [{ port: 80 }] } });

/** A Deployment as YAML with `replica: 2` where `replicas` was meant: kubectl's strict field validation refuses it while decoding. */
function misspeltDeployment(ns: string, name: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replica: 2
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
`;
}

/** POSTs to the sink port as the apiserver would, optionally with a client certificate. */
function postToSink(body: string, identity?: { cert: Buffer; key: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1", port: cluster().auditSinkPort, path: AUDIT_PATH, method: "POST", rejectUnauthorized: false,
      headers: { "content-type": "application/json" }, ...(identity ?? {}),
    }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** kubetx's lock Lease on a configmap, once it exists. */
async function lockOf(admin: KubeClient, ns: string, name: string): Promise<KubeObject | undefined> {
  const leases = await admin.get<{ items: KubeObject[] }>("/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases", { query: { labelSelector: "kubetx.io/transaction" } });
  return leases.items.find((l) => {
    const member = JSON.parse(l.metadata?.annotations?.["kubetx.io/member"] ?? "{}") as { ref?: { namespace?: string; name?: string } };
    return member.ref?.namespace === ns && member.ref.name === name;
  });
}

/** The names of alice's transparent transactions: one that appears around a kubectl tx apply is a stray. */
async function alicesTransparent(admin: KubeClient): Promise<Set<string>> {
  const records = await admin.get<{ items: Transaction[] }>(transactionPath());
  return new Set(records.items.filter((t) => t.spec.mode === "transparent" && t.spec.user === "alice").map((t) => t.metadata?.name ?? ""));
}

/** What appeared in `after` that was not in `before`. */
function added(before: ReadonlySet<string>, after: ReadonlySet<string>): string[] {
  return [...after].filter((name) => !before.has(name));
}

describe("the audit sink", () => {
  const ns = uniqueName("sink");
  const fixture = useEngine(ns);
  let admin: KubeClient;
  beforeAll(() => {
    admin = fixture.admin();
  });

  it("rolls back the valid objects of a plain apply when one has a misspelt field, with kubectl's error in the record", async () => {
    const input = `${yamlOf([configMap(ns, "typo-config", { v: "1" }), service(ns, "typo-svc")])}---\n${misspeltDeployment(ns, "typo-web")}`;
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input });
    expect(applied.code).not.toBe(0);
    expect(applied.stderr).toContain('unknown field "spec.replica"');
    const tx = await waitResolved(admin, joined(applied.stderr));
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.failure).toContain('unknown field "spec.replica"');
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/typo-config`)).toBeUndefined();
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/services/typo-svc`)).toBeUndefined();
    const plugin = await installPlugin();
    try {
      const described = await plugin.tx(["describe", tx.metadata?.name ?? ""]);
      expect(described.code).toBe(0);
      expect(described.stdout).toMatch(/Failure: .*rejected the create of apps\/deployments in sink-[0-9a-f]+ before it reached kubetx/);
      expect(described.stdout).toContain('unknown field "spec.replica"');
    } finally {
      await plugin.remove();
    }
  });

  it("fails a kubectl tx apply whose prepared create the apiserver rejected, and opens no transparent transaction for that write", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sink-named-"));
    const plugin = await installPlugin();
    try {
      const file = path.join(dir, "app.yaml");
      await writeFile(file, yamlOf([configMap(ns, "named-ok", { v: "1" }), configMap(ns, "named-bad", { "bad key": "x" })]));
      const before = await alicesTransparent(admin);
      const applied = await plugin.tx(["apply", "-f", file, "-n", ns]);
      expect(applied.code, `${applied.stdout}\n${applied.stderr}`).toBe(1);
      expect(applied.stdout).toMatch(/transaction t-[0-9a-f]{8} rolled back/);
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/named-ok`)).toBeUndefined();
      // The sink hears of the rejected create within its delay and a batch; before, it opened alice a transparent transaction to fail.
      await sleep(3_000);
      expect(added(before, await alicesTransparent(admin))).toEqual([]);
    } finally {
      await plugin.remove();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("knows a kubectl tx apply's rejected update by kubectl's User-Agent: no transparent transaction for it, and the user's next plain apply commits", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sink-agent-"));
    const plugin = await installPlugin();
    try {
      const file = path.join(dir, "app.yaml");
      await writeFile(file, yamlOf([configMap(ns, "agent-a", { v: "1" }), configMap(ns, "agent-b", { v: "1" })]));
      expect((await plugin.tx(["apply", "-f", file, "-n", ns])).code).toBe(0);
      // Updates lock on their own request path; this one is refused before it reaches kubetx, so no lock names its transaction.
      await writeFile(file, yamlOf([configMap(ns, "agent-a", { v: "2" }), configMap(ns, "agent-b", { "bad key": "x" })]));
      const before = await alicesTransparent(admin);
      const failed = await plugin.tx(["apply", "-f", file, "-n", ns]);
      expect(failed.code, `${failed.stdout}\n${failed.stderr}`).toBe(1);
      expect(failed.stdout).toMatch(/transaction t-[0-9a-f]{8} rolled back/);
      expect((await admin.get<KubeObject & { data?: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/agent-a`)).data).toEqual({ v: "1" });
      // The sink hears of the rejected update within its delay and a batch, after kubectl tx resolved; before, it opened alice a transparent transaction to fail.
      await sleep(3_000);
      expect(added(before, await alicesTransparent(admin))).toEqual([]);
      const plain = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "agent-a", { v: "3" })]) });
      expect(plain.code, plain.stderr).toBe(0);
      expect((await waitResolved(admin, joined(plain.stderr))).status?.phase).toBe("Committed");
    } finally {
      await plugin.remove();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("rolls back an apply when one object has a value of the wrong type", async () => {
    const input = `${yamlOf([configMap(ns, "typed-ok", { v: "1" })])}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: typed-bad, namespace: ${ns}}\ndata: {count: [1, 2]}\n`;
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input });
    expect(applied.code).not.toBe(0);
    const tx = await waitResolved(admin, joined(applied.stderr));
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.failure).toMatch(/rejected the create of configmaps in sink-[0-9a-f]+ before it reached kubetx .*cannot unmarshal array/);
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/typed-ok`)).toBeUndefined();
  });

  it("commits a plain apply followed at once by deletes of objects that are not there (404 changes nothing)", async () => {
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "kept", { v: "1" }), configMap(ns, "dropped", { v: "1" })]) });
    expect(applied.code, applied.stderr).toBe(0);
    // A cleanup step of a script: exits 0, though its DELETE was answered 404 (before, that rolled back the apply above).
    const ignored = await kubectl(["delete", "configmap", "never-was", "-n", ns, "--ignore-not-found"], { user: "alice" });
    expect(ignored.code, ignored.stderr).toBe(0);
    // One object there, one not: kubectl deletes the first and reports the second.
    const mixed = await kubectl(["delete", "configmap", "dropped", "also-never-was", "-n", ns], { user: "alice" });
    expect(mixed.code).not.toBe(0);
    expect(mixed.stderr).toContain('configmaps "also-never-was" not found');
    const tx = await waitResolved(admin, joined(applied.stderr));
    expect(tx.status?.phase, tx.status?.failure).toBe("Committed");
    expect((await admin.get(`/api/v1/namespaces/${ns}/configmaps/kept`)).data).toEqual({ v: "1" });
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/dropped`)).toBeUndefined();
  });

  it("rolls back a server-side apply when one object's apply meets another field manager's fields (409, which kubectl does not retry)", async () => {
    await admin.create(`/api/v1/namespaces/${ns}/configmaps`, configMap(ns, "ssa-owned", { v: "1" }), { query: { fieldManager: "other-tool" } });
    const input = yamlOf([configMap(ns, "ssa-first", { v: "1" }), configMap(ns, "ssa-owned", { v: "2" }), configMap(ns, "ssa-last", { v: "1" })]);
    const applied = await kubectl(["apply", "--server-side", "-f", "-"], { user: "alice", input });
    expect(applied.code).not.toBe(0);
    expect(applied.stderr).toContain('conflict with "other-tool"');
    const tx = await waitResolved(admin, joined(applied.stderr));
    // Before, the 409 was taken for a resourceVersion conflict kubectl would retry, and the other two committed.
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.failure).toContain("Apply failed with 1 conflict");
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/ssa-first`)).toBeUndefined();
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/ssa-last`)).toBeUndefined();
    expect((await admin.get(`/api/v1/namespaces/${ns}/configmaps/ssa-owned`)).data).toEqual({ v: "1" });
  });

  it("commits an update that first hit a resourceVersion conflict and then went through, as kubectl retries it", async () => {
    await admin.create(`/api/v1/namespaces/${ns}/configmaps`, configMap(ns, "retried", { v: "0" }));
    const alice = await (await import("../support/cluster.ts")).client("alice");
    try {
      const current = await alice.get(`/api/v1/namespaces/${ns}/configmaps/retried`);
      const stale = { ...current, metadata: { ...current.metadata, resourceVersion: "1" }, data: { v: "stale" } };
      await expect(alice.replace(`/api/v1/namespaces/${ns}/configmaps/retried`, stale)).rejects.toBeInstanceOf(Conflict);
      await alice.replace(`/api/v1/namespaces/${ns}/configmaps/retried`, { ...current, data: { v: "1" } });
    } finally {
      alice.close();
    }
    const tx = await until("alice's transaction", async () => {
      const list = await admin.get<{ items: { metadata?: { name?: string }; spec: { user: string }; status?: { members?: { namespace?: string; name: string }[] } }[] }>("/apis/kubetx.io/v1alpha1/transactions");
      // This namespace's: other test files' transactions stay in the cluster's records.
      return list.items.find((t) => t.spec.user === "alice" && t.status?.members?.some((m) => m.namespace === ns && m.name === "retried"))?.metadata?.name;
    });
    expect((await waitResolved(admin, tx)).status?.phase).toBe("Committed");
    expect((await admin.get(`/api/v1/namespaces/${ns}/configmaps/retried`)).data).toEqual({ v: "1" });
  });

  it("judges a member that kubetx allowed and another webhook then denied as failed, from its own audit event", async () => {
    const thirdParty = await startThirdPartyWebhook(ns);
    try {
      const input = yamlOf([configMap(ns, "fine", { v: "1" }), configMap(ns, "refused", { v: "1" }, { labels: { "third-party": "deny" } })]);
      const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input });
      expect(applied.code).not.toBe(0);
      expect(applied.stderr).toContain("third-party=deny");
      const tx = await waitResolved(admin, joined(applied.stderr));
      expect(tx.status?.phase).toBe("RolledBack");
      expect(tx.status?.failure).toContain("refused the create of configmaps");
      expect(tx.status?.failure).toContain("deny.third-party.example.com");
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/fine`)).toBeUndefined();
    } finally {
      await thirdParty.close();
    }
  });

  it("does not re-create an object whose delete kubetx allowed but which someone else deleted first (the delete answered 404)", async () => {
    await admin.create(`/api/v1/namespaces/${ns}/configmaps`, configMap(ns, "gone", { v: "1" }, { labels: { "third-party": "slow" } }));
    const thirdParty = await startThirdPartyWebhook(ns);
    try {
      thirdParty.delayMs = 3_000;
      // alice's delete: kubetx locks and journals the object, then the slow webhook holds the request.
      const deleting = kubectl(["delete", "configmap", "-n", ns, "gone", "--wait=false"], { user: "alice" });
      const lock = await until("kubetx to lock alice's delete of gone", () => lockOf(admin, ns, "gone"));
      const id = lock.metadata?.labels?.["kubetx.io/transaction"];
      if (!id) throw new Error("kubetx's lock names no transaction");
      // Meanwhile someone kubetx does not cover (admin here; the garbage collector, say) deletes it.
      await admin.delete(`/api/v1/namespaces/${ns}/configmaps/gone`);
      const alice = await deleting;
      expect(alice.code).not.toBe(0);
      expect(alice.stderr).toContain("NotFound");
      const tx = await waitResolved(admin, id);
      expect(tx.status?.phase).toBe("RolledBack");
      expect(tx.status?.persisted).toBeUndefined();
      expect(tx.status?.members?.map((m) => [m.name, m.outcome])).toEqual([["gone", "NotPersisted"]]);
      expect(tx.status?.members?.[0]?.message).toContain("never persisted (the apiserver answered 404)");
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/gone`)).toBeUndefined();
    } finally {
      await thirdParty.close();
    }
  });

  it("refuses an unauthenticated, a foreign or a malformed EventList, and none of them changes anything", async () => {
    const victim = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "victim", { v: "1" })]) });
    const id = joined(victim.stderr);
    const forged = JSON.stringify({
      apiVersion: "audit.k8s.io/v1", kind: "EventList",
      items: [{ stage: "ResponseComplete", verb: "create", auditID: randomBytes(4).toString("hex"), user: { username: "alice", uid: "uid-alice", groups: ["developers", "system:authenticated"] },
        objectRef: { resource: "configmaps", namespace: ns, name: "x" }, responseStatus: { code: 422, message: "forged" },
        requestReceivedTimestamp: new Date().toISOString(), stageTimestamp: new Date().toISOString() }],
    });
    expect(await postToSink(forged)).toBe(401);
    const pki = path.join(cluster().dir, "pki");
    const apiserver = { cert: await readFile(cluster().apiserverClientCertificate.certFile), key: await readFile(cluster().apiserverClientCertificate.keyFile) };
    // The cluster CA signs approved CertificateSigningRequests: a certificate
    // it signed with the apiserver's name is still not the apiserver's.
    const other = await ensureClientCertificate({ ca: { certFile: cluster().caFile, keyFile: cluster().caKeyFile }, outDir: pki, name: "not-the-apiserver", commonName: "kube-apiserver" });
    const someoneElse = { cert: await readFile(other.certFile), key: await readFile(other.keyFile) };
    expect(await postToSink(forged, someoneElse)).toBe(401);
    expect(await postToSink("{not json", apiserver)).toBe(400);
    expect(await postToSink(JSON.stringify({ apiVersion: "audit.k8s.io/v1", kind: "EventList", items: "many" }), apiserver)).toBe(400);
    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("Committed");
  });
});

describe("the audit sink and a write held before kubetx sees it", () => {
  const ns = uniqueName("held");
  // A quiet window long enough for a second kubectl to start on a loaded machine; a write may be in flight 9 s before it stops holding its transaction open.
  const fixture = useEngine(ns, undefined, { quietWindowMs: 3_000, lateWriteMs: 9_000, maxOpenSeconds: 30 });

  it("keeps a transparent transaction open while the apply's next write is held by a slow mutating webhook, so both commit as one", async () => {
    const admin = fixture.admin();
    const thirdParty = await startThirdPartyWebhook(ns, { kind: "mutating" });
    try {
      thirdParty.delayMs = 6_000;
      const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "first", { v: "1" })]) });
      const id = joined(first.stderr);
      // Held 6 s, longer than the quiet window plus the sink's delay: without the mark the transaction would commit alone.
      const held = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "held", { v: "1" }, { labels: { "third-party": "slow" } })]) });
      expect(held.code, held.stderr).toBe(0);
      expect(held.stderr).toContain(`kubetx: joined transaction ${id} (2 members)`);
      const tx = await waitResolved(admin, id);
      expect(tx.status?.phase).toBe("Committed");
      expect(tx.status?.members?.map((m) => m.name).sort()).toEqual(["first", "held"]);
      expect(tx.status?.inFlight ?? {}).toEqual({});
    } finally {
      await thirdParty.close();
    }
  });

  it("clears a write's in-flight mark when it finishes after the user's next command moved her session to another transaction", async () => {
    const admin = fixture.admin();
    const thirdParty = await startThirdPartyWebhook(ns);
    try {
      thirdParty.delayMs = 2_000;
      // kubetx admits "moved-slow" at once; the webhook beside it holds the request 2 s, so its start and its end reach the sink in different batches.
      const slow = kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "moved-a", { v: "1" }), configMap(ns, "moved-slow", { v: "1" }, { labels: { "third-party": "slow" } })]) });
      await sleep(1_000);
      // Another tool meanwhile: a transaction of its own, which the session now names.
      const other = await kubectl(["create", "configmap", "moved-other", "-n", ns], { user: "alice" });
      expect(other.code, other.stderr).toBe(0);
      const applied = await slow;
      expect(applied.code, applied.stderr).toBe(0);
      const tx = await waitResolved(admin, joined(applied.stderr));
      expect(tx.status?.phase).toBe("Committed");
      // Before, the mark was looked for on the session's transaction only, stayed, and held this one open for the late-write window.
      expect(tx.status?.inFlight ?? {}).toEqual({});
    } finally {
      await thirdParty.close();
    }
  });

  it("commits a plain apply whose first write a rate-limiting webhook refused with 429: kubectl sent it again, and the transaction waited for it", async () => {
    const admin = fixture.admin();
    const thirdParty = await startThirdPartyWebhook(ns, { kind: "mutating" });
    try {
      const input = yamlOf([configMap(ns, "throttled", { v: "1" }, { labels: { "third-party": "throttle-once" } }), configMap(ns, "after-throttled", { v: "1" })]);
      const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input });
      expect(applied.code, applied.stderr).toBe(0);
      const tx = await waitResolved(admin, joined(applied.stderr));
      expect(tx.status?.phase, tx.status?.failure).toBe("Committed");
      expect(tx.status?.members?.map((m) => m.name).sort()).toEqual(["after-throttled", "throttled"]);
      // The sink heard of the 429 and noted it instead of failing the apply; before, this apply was rolled back after kubectl reported success.
      expect(Object.values(tx.status?.retrying ?? {}).map((w) => w.reason)).toEqual([expect.stringContaining("try again in a second")]);
    } finally {
      await thirdParty.close();
    }
  });

  it("commits a plain apply whose write kubetx admitted and a rate-limiting webhook beside it refused with 429: the transaction waited for kubectl's retry", async () => {
    const admin = fixture.admin();
    const thirdParty = await startThirdPartyWebhook(ns);
    try {
      const input = yamlOf([configMap(ns, "member-throttled", { v: "1" }, { labels: { "third-party": "throttle-once" } }), configMap(ns, "member-after", { v: "1" })]);
      const applied = await kubectl(["apply", "-f", "-"], { user: "bob", input });
      expect(applied.code, applied.stderr).toBe(0);
      const tx = await waitResolved(admin, joined(applied.stderr));
      expect(tx.status?.phase, tx.status?.failure).toBe("Committed");
      expect(tx.status?.members?.map((m) => m.name).sort()).toEqual(["member-after", "member-throttled"]);
      expect(Object.values(tx.status?.retrying ?? {})).toEqual([expect.objectContaining({ admitted: true })]);
    } finally {
      await thirdParty.close();
    }
  });

  it("commits a kubectl tx apply whose write a rate-limiting webhook refused once with 429: kubectl's exit decides", async () => {
    const admin = fixture.admin();
    const thirdParty = await startThirdPartyWebhook(ns, { kind: "mutating" });
    const plugin = await installPlugin();
    const dir = await mkdtemp(path.join(tmpdir(), "sink-throttled-"));
    try {
      const file = path.join(dir, "app.yaml");
      await writeFile(file, yamlOf([configMap(ns, "tx-plain", { v: "1" }), configMap(ns, "tx-throttled", { v: "1" }, { labels: { "third-party": "throttle-once" } })]));
      const applied = await plugin.tx(["apply", "-f", file, "-n", ns]);
      expect(applied.code, `${applied.stdout}\n${applied.stderr}`).toBe(0);
      expect(applied.stdout).toMatch(/transaction t-[0-9a-f]{8} committed: 2 members/);
      // The sink hears of the 429 after the verdict: it must not fail anything then either.
      await sleep(2_000);
      expect((await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/tx-throttled`))?.metadata?.name).toBe("tx-throttled");
    } finally {
      await plugin.remove();
      await thirdParty.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("commits a kubectl tx apply whose update kubetx admitted and a rate-limiting webhook beside it refused once with 429, and keeps the retried write", async () => {
    const admin = fixture.admin();
    const plugin = await installPlugin();
    const dir = await mkdtemp(path.join(tmpdir(), "sink-member-throttled-"));
    try {
      const file = path.join(dir, "app.yaml");
      await writeFile(file, yamlOf([configMap(ns, "tx-member", { v: "1" })]));
      expect((await plugin.tx(["apply", "-f", file, "-n", ns])).code).toBe(0);
      const thirdParty = await startThirdPartyWebhook(ns);
      try {
        await writeFile(file, yamlOf([configMap(ns, "tx-member", { v: "2" }, { labels: { "third-party": "throttle-once" } })]));
        const applied = await plugin.tx(["apply", "-f", file, "-n", ns]);
        // Before: kubectl's retry went through, kubetx verified before the sink reported it, rolled back, and took the 429 for the
        // member's last word, so it restored nothing: v 2 stayed under a RolledBack record (chaos seed 7750, trial 14).
        expect(applied.code, `${applied.stdout}\n${applied.stderr}`).toBe(0);
        expect(applied.stdout).toMatch(/transaction t-[0-9a-f]{8} committed: 1 member/);
      } finally {
        await thirdParty.close();
      }
      expect((await admin.get<KubeObject & { data?: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/tx-member`)).data).toEqual({ v: "2" });
    } finally {
      await plugin.remove();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("starts the quiet window again when the apply writes an object the transaction already holds", async () => {
    const admin = fixture.admin();
    const started = performance.now();
    const at = async (ms: number): Promise<void> => sleep(Math.max(0, started + ms - performance.now()));
    const first = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([configMap(ns, "again", { v: "1" })]) });
    const id = joined(first.stderr);
    // The window is 4 s (3 s quiet, 1 s sink delay): the same object again at 2.5 s, then another at 5.5 s, 3 s later.
    await at(2_500);
    expect((await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([configMap(ns, "again", { v: "2" })]) })).stderr).toContain(`joined transaction ${id}`);
    await at(5_500);
    const other = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([configMap(ns, "after-again", { v: "1" })]) });
    expect(other.stderr).toContain(`kubetx: joined transaction ${id} (2 members)`);
    expect((await waitResolved(admin, id)).status?.phase).toBe("Committed");
  });
});

describe("without the audit sink", () => {
  const ns = uniqueName("nosink");
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await (await import("../support/cluster.ts")).client("admin");
    await createNamespace(ns, { "kubetx.io/enabled": "true" });
  });

  it("keeps today's behaviour: a misspelt field is invisible, so the valid objects around it commit", async () => {
    const engine = await startEngine({ auditSink: false });
    try {
      const input = `${yamlOf([configMap(ns, "kept", { v: "1" })])}---\n${misspeltDeployment(ns, "web")}`;
      const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input });
      expect(applied.code).not.toBe(0);
      const id = joined(applied.stderr);
      expect((await waitResolved(admin, id)).status?.phase).toBe("Committed");
      expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/kept`)).toBeDefined();
      expect(await phaseOf(admin, id)).toBe("Committed");
    } finally {
      await unregister();
      await engine.close();
      admin.close();
    }
  });
});
