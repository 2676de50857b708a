/**
 * Secure operation: users own their transactions and nothing else of
 * kubetx's, Secret data never reaches a log, and kubetx's own writes are
 * never held up by its locks.
 */
import { Writable } from "node:stream";
import { readFile } from "node:fs/promises";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.ts";
import type { KubeClient } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { startWebhookServer } from "../../src/main.ts";
import { createLogger } from "../../src/telemetry/logger.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { FAST, register, unregister } from "../support/engine.ts";
import { configMap, inTransaction, waitResolved, yamlOf } from "../support/objects.ts";
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
    engine = await startWebhookServer({
      kubeconfig: cluster().kubeconfigs.kubetx, tls: await webhookCertificate(), host: "127.0.0.1", port: 0,
      logger: createLogger({ level: "debug", destination: sink }), config: loadConfig(FAST), apiserverClients: cluster().apiserverClient,
    });
    await register(engine.port);
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

  it("never writes Secret data or journal contents into its logs", async () => {
    const secrets = `/api/v1/namespaces/${ns}/secrets`;
    await admin.create(secrets, { apiVersion: "v1", kind: "Secret", metadata: { name: "db" }, stringData: { password: "old-s3cr3t-value" } });
    const docs = [
      { apiVersion: "v1", kind: "Secret", metadata: { name: "db", namespace: ns }, stringData: { password: "new-s3cr3t-value" } },
      configMap(ns, "broken", { "bad key": "x" }),
    ];
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    const id = /joined transaction (t-[0-9a-f]+)/.exec(applied.stderr)?.[1] ?? "";
    expect((await waitResolved(admin, id)).status?.phase).toBe("RolledBack");
    const restored = await admin.get<{ data: Record<string, string> }>(`${secrets}/db`);
    expect(Buffer.from(restored.data.password ?? "", "base64").toString()).toBe("old-s3cr3t-value");
    expect(logs).toContain(id);
    for (const secret of ["old-s3cr3t-value", "new-s3cr3t-value"]) {
      expect(logs).not.toContain(secret);
      expect(logs).not.toContain(Buffer.from(secret).toString("base64"));
    }
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
