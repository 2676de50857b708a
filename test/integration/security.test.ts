/**
 * Secure operation: only the apiserver may call kubetx, a review that never
 * came from it cannot make kubetx write, users own their transactions and
 * nothing else of kubetx's, Secret data never reaches a log, Event, record
 * or kubectl tx describe, and kubetx's own writes are never held up by its
 * locks.
 */
import { Writable } from "node:stream";
import { readFile } from "node:fs/promises";
import https from "node:https";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { flagPolicies, loadConfig } from "../../src/config/config.ts";
import { ensureClientCertificate } from "../../src/devcluster/certs.ts";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { startWebhookServer } from "../../src/main.ts";
import { createLogger } from "../../src/telemetry/logger.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { FAST, register, unregister, untilWebhooksInStep } from "../support/engine.ts";
import { configMap, inTransaction, leftovers, leftoversSettled, phaseOf, waitResolved, yamlOf } from "../support/objects.ts";
import { installPlugin } from "../support/plugin.ts";
import { webhookCertificate } from "../support/webhook.ts";

describe("secure operation", () => {
  let engine: WebhookServer;
  let admin: KubeClient;
  let logs = "";
  const ns = uniqueName("secure");

  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns, { "kubetx.io/enabled": "true" });
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => ((logs += chunk.toString()), done()) });
    const config = loadConfig(FAST);
    engine = await startWebhookServer({
      kubeconfig: cluster().kubeconfigs.kubetx, tls: await webhookCertificate(), host: "127.0.0.1", port: 0,
      logger: createLogger({ level: "debug", destination: sink }), config, apiserverClients: cluster().apiserverClient,
    });
    await register(engine.port, flagPolicies(config));
    await untilWebhooksInStep(engine);
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    admin?.close();
  });

  it("lets only alice close, edit or delete alice's transaction", async () => {
    const id = "t-owned001";
    await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "owned", { v: "1" }), id, 2)]) });
    const closeAsBob = await kubectl(["patch", "transaction", id, "--type=merge", "-p", '{"spec":{"clientState":"Applied"}}'], { user: "bob" });
    expect(closeAsBob.code).not.toBe(0);
    expect(closeAsBob.stderr).toContain(`kubetx: transaction ${id} belongs to alice; you may only change your own transactions`);
    const deleteAsBob = await kubectl(["delete", "transaction", id], { user: "bob" });
    expect(deleteAsBob.stderr).toContain("belongs to alice");
    const claimAsBob = await kubectl(["apply", "-f", "-"], {
      user: "bob", input: JSON.stringify({ apiVersion: "kubetx.io/v1alpha1", kind: "Transaction", metadata: { name: "t-forged01" }, spec: { user: "alice", mode: "plugin" } }),
    });
    expect(claimAsBob.stderr).toContain("spec.user of a new transaction must be your own user name 'bob'");
    const closeAsAlice = await kubectl(["patch", "transaction", id, "--type=merge", "-p", '{"spec":{"clientState":"Applied"}}'], { user: "alice" });
    expect(closeAsAlice.code).toBe(0);
    expect((await waitResolved(admin, id)).status?.phase).toBe("Committed");
  });

  it("keeps the outcome of a transaction out of users' hands", async () => {
    const write = await kubectl(["patch", "transaction", "t-owned001", "--subresource=status", "--type=merge", "-p", '{"status":{"phase":"RolledBack"}}'], { user: "alice" });
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/forbidden/i);
  });

  it("denies users every read of kubetx's locks and journals", async () => {
    for (const resource of ["secrets", "leases"]) {
      const read = await kubectl(["-n", "kubetx-system", "get", resource], { user: "alice" });
      expect(read.code).not.toBe(0);
      expect(read.stderr).toContain(`User "alice" cannot list resource "${resource}"`);
    }
  });

  it("never writes Secret data or journal contents into its logs, Events, records or kubectl tx describe, when a Secret member is restored and when one fails", async () => {
    const secrets = `/api/v1/namespaces/${ns}/secrets`;
    await admin.create(secrets, { apiVersion: "v1", kind: "Secret", metadata: { name: "db" }, stringData: { password: "old-s3cr3t-value" } });
    const docs = [
      { apiVersion: "v1", kind: "Secret", metadata: { name: "db", namespace: ns }, stringData: { password: "new-s3cr3t-value" } },
      // The member that fails is a Secret too: its key is invalid, its value is secret.
      { apiVersion: "v1", kind: "Secret", metadata: { name: "db-broken", namespace: ns }, stringData: { "bad key": "failing-s3cr3t-value" } },
    ];
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    expect(applied.stderr).toContain('Secret "db-broken" is invalid');
    const id = /joined transaction (t-[0-9a-f]+)/.exec(applied.stderr)?.[1] ?? "";
    const record = await waitResolved(admin, id);
    expect(record.status?.phase).toBe("RolledBack");
    const restored = await admin.get<{ data: Record<string, string> }>(`${secrets}/db`);
    expect(Buffer.from(restored.data.password ?? "", "base64").toString()).toBe("old-s3cr3t-value");
    const events = await admin.get<{ items: { reason?: string; message?: string }[] }>(`/api/v1/namespaces/${ns}/events`, { query: { fieldSelector: "involvedObject.name=db" } });
    expect(events.items.map((e) => e.reason)).toContain("TransactionRolledBack");
    const plugin = await installPlugin();
    const described = await Promise.all([plugin.tx(["describe", id]), plugin.tx(["describe", id, "-o", "json"])]).finally(() => plugin.remove());
    expect(described.map((d) => d.code)).toEqual([0, 0]);
    expect(described[0]?.stdout).toMatch(new RegExp(`UPDATE +secrets ${ns}/db +Restored`));
    expect(logs).toContain(id);
    const everywhere = { logs, events: JSON.stringify(events), record: JSON.stringify(record), describe: described.map((d) => d.stdout + d.stderr).join("\n") };
    for (const secret of ["old-s3cr3t-value", "new-s3cr3t-value", "failing-s3cr3t-value"]) {
      for (const [where, text] of Object.entries(everywhere)) {
        expect(text, `${secret} in ${where}`).not.toContain(secret);
        expect(text, `${secret} (base64) in ${where}`).not.toContain(Buffer.from(secret).toString("base64"));
      }
    }
  });

  it("refuses a hand-made AdmissionReview posted straight to its port, and writes nothing for it", async () => {
    await admin.create(`/api/v1/namespaces/${ns}/configmaps`, configMap(ns, "target", { v: "real" }));
    const forged = forgedReview(await admin.get(`/api/v1/namespaces/${ns}/configmaps/target`), "t-forged01");
    const clusterCa = await ensureClientCertificate({ ca: { certFile: cluster().caFile, keyFile: cluster().caKeyFile }, outDir: path.join(cluster().dir, "pki"), name: "forger", commonName: "kube-apiserver" });
    for (const path of ["/validate", "/observe"]) {
      expect(await post(engine.port, path, forged)).toMatchObject({ status: 401, body: expect.stringContaining("client certificate is required") as unknown });
      expect((await post(engine.port, path, forged, clusterCa)).status).toBe(401);
    }
    expect(await phaseOf(admin, "t-forged01")).toBeUndefined();
    expect(await leftovers(admin, "t-forged01")).toEqual([]);
    expect((await admin.get(`/api/v1/namespaces/${ns}/configmaps/target`)).data).toEqual({ v: "real" });
  });

  it("never writes back a forged review's invented pre-image, even if one gets in: the transaction ends Failed and says why", async () => {
    const target = await admin.create(`/api/v1/namespaces/${ns}/configmaps`, configMap(ns, "forged-target", { v: "real" }));
    // As if the apiserver's client key had leaked: the forged review is admitted.
    const admitted = await post(engine.port, "/validate", forgedReview(target, "t-forged02", 2), cluster().apiserverClientCertificate);
    expect(admitted.status).toBe(200);
    expect(admitted.body).toContain("kubetx: joined transaction t-forged02 (1 member)");
    // One member of two arrives: it times out and rolls back.
    const tx = await waitResolved(admin, "t-forged02");
    expect(tx.status?.phase).toBe("Failed");
    expect(tx.status?.members?.map((m) => `${m.name}:${m.outcome}`)).toEqual(["forged-target:Failed"]);
    expect(tx.status?.message).toContain("kubetx could not confirm that the apiserver made this write");
    const after = await admin.get(`/api/v1/namespaces/${ns}/configmaps/forged-target`);
    expect(after.data).toEqual({ v: "real" });
    expect(after.metadata?.resourceVersion).toBe(target.metadata?.resourceVersion);
    const events = await admin.get<{ items: { reason?: string }[] }>(`/api/v1/namespaces/${ns}/events`, { query: { fieldSelector: "involvedObject.name=forged-target" } });
    expect(events.items.map((e) => e.reason)).toContain("TransactionRestoreFailed");
    // An admin resolves it: deleting the record frees the lock.
    await admin.delete("/apis/kubetx.io/v1alpha1/transactions/t-forged02");
    expect(await leftoversSettled(admin, "t-forged02", 10_000)).toEqual([]);
  });

  it("lets kubetx's own identity write an object another transaction holds", async () => {
    const id = "t-heldlock1";
    await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "held", { v: "alice" }), id, 2)]) });
    const bob = await kubectl(["-n", ns, "label", "configmap", "held", "x=bob"], { user: "bob" });
    expect(bob.stderr).toContain(`is locked by transaction ${id} (alice)`);
    const own = await kubectl(["-n", ns, "label", "configmap", "held", "x=kubetx"], { user: "kubetx" });
    expect(own.code).toBe(0);
    expect(own.stderr).not.toContain("kubetx:");
  });

  it("speaks TLS 1.2 or later only", async () => {
    const ca = await readFile(cluster().caFile);
    const handshake = (version: tls.SecureVersion): Promise<string> => new Promise((resolve) => {
      const socket = tls.connect({ host: "127.0.0.1", port: engine.port, ca, minVersion: version, maxVersion: version }, () => {
        resolve(socket.getProtocol() ?? "");
        socket.end();
      });
      socket.on("error", (error: Error) => resolve(`error: ${error.message}`));
    });
    expect(await handshake("TLSv1.2")).toBe("TLSv1.2");
    expect(await handshake("TLSv1.3")).toBe("TLSv1.3");
    expect(await handshake("TLSv1.1")).toMatch(/^error/);
  });
});

/**
 * The forged review: alice "updating" an object she can read, with
 * the object as it is (so the write looks persisted) and an invented
 * oldObject, naming an explicit transaction.
 */
function forgedReview(live: KubeObject, id: string, expected = 1): string {
  const annotations = { "kubetx.io/transaction": id, "kubetx.io/expected-members": String(expected) };
  const object = { ...live, metadata: { ...live.metadata, annotations } };
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
    request: {
      uid: `forged-${id}`, operation: "UPDATE", kind: { group: "", version: "v1", kind: "ConfigMap" }, resource: { group: "", version: "v1", resource: "configmaps" },
      namespace: live.metadata?.namespace, name: live.metadata?.name, userInfo: { username: "alice", groups: ["system:authenticated"] },
      object, oldObject: { ...live, data: { v: "invented by the forger" } },
    },
  });
}

/** POSTs a review to a kubetx port, with the client certificate given (or none, as curl would). */
async function post(port: number, to: string, body: string, identity?: { certFile: string; keyFile: string }): Promise<{ status: number; body: string }> {
  const ca = await readFile(cluster().caFile);
  const credentials = identity ? { cert: await readFile(identity.certFile), key: await readFile(identity.keyFile) } : {};
  return new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port, path: to, method: "POST", ca, headers: { "content-type": "application/json" }, ...credentials }, (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}
