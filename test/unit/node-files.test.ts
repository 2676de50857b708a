/**
 * What `kubetx certs` writes for a real cluster's control-plane nodes: the
 * apiserver's client certificate and the configuration naming it, with the
 * paths the files will have on the node. The dev and test control planes
 * run the apiserver with the same renderers (src/devcluster/apiserver-config.ts).
 */
import { X509Certificate } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ensureCertificateAuthority } from "../../src/devcluster/certs.ts";
import type { NodeFiles } from "../../src/devcluster/node-files.ts";
import { writeNodeFiles } from "../../src/devcluster/node-files.ts";

type Kubeconfig = { users: { name: string; user: Record<string, string> }[]; clusters?: { cluster: Record<string, string> }[] };

describe("the control-plane files kubetx certs writes", () => {
  let out: string;
  let files: NodeFiles;
  const read = async <T,>(name: string): Promise<T> => parse(await readFile(path.join(files.dir, name), "utf8")) as T;

  beforeAll(async () => {
    out = await mkdtemp(path.join(tmpdir(), "kubetx-node-files-"));
    const servingCa = await ensureCertificateAuthority(out, "kubetx-webhook-ca");
    files = await writeNodeFiles({ out, servingCa, service: "kubetx", namespace: "kubetx-system", serviceIp: "10.96.0.42" });
  });
  afterAll(() => rm(out, { recursive: true, force: true }));

  it("makes the apiserver's client certificate, named kube-apiserver, from a CA of kubetx's own", async () => {
    const cert = new X509Certificate(await readFile(files.client.certFile));
    const ca = new X509Certificate(await readFile(files.clientCa.certFile));
    expect(cert.subject).toBe("CN=kube-apiserver");
    expect(cert.checkIssued(ca)).toBe(true);
    expect(ca.subject).toBe("CN=kubetx-apiserver-client-ca");
  });

  it("presents it to the kubetx Service's host through the admission configuration", async () => {
    const admission = await read<{ kind: string; plugins: { name: string; configuration: { kind: string; kubeConfigFile: string } }[] }>("admission-control.yaml");
    expect(admission.kind).toBe("AdmissionConfiguration");
    expect(admission.plugins.map((p) => [p.name, p.configuration.kind, p.configuration.kubeConfigFile])).toEqual([
      ["ValidatingAdmissionWebhook", "WebhookAdmissionConfiguration", "/etc/kubernetes/kubetx/webhook-clients.kubeconfig"],
      ["MutatingAdmissionWebhook", "WebhookAdmissionConfiguration", "/etc/kubernetes/kubetx/webhook-clients.kubeconfig"],
    ]);
    const clients = await read<Kubeconfig>("webhook-clients.kubeconfig");
    expect(clients.users).toEqual([{
      name: "kubetx.kubetx-system.svc:443",
      user: { "client-certificate": "/etc/kubernetes/kubetx/apiserver-client.crt", "client-key": "/etc/kubernetes/kubetx/apiserver-client.key" },
    }]);
  });

  it("calls the audit sink and the authorization webhook at the Service's ClusterIP, checking the certificate for its DNS name", async () => {
    for (const [file, webhookPath] of [["audit-webhook.kubeconfig", "/audit"], ["authorization-webhook.kubeconfig", "/authorize"]] as const) {
      const kubeconfig = await read<Kubeconfig>(file);
      expect(kubeconfig.clusters?.[0]?.cluster).toEqual({
        server: `https://10.96.0.42:443${webhookPath}`, "certificate-authority": "/etc/kubernetes/kubetx/kubetx-ca.crt", "tls-server-name": "kubetx.kubetx-system.svc",
      });
    }
    const authorization = await read<{ authorizers: { type: string; webhook?: { failurePolicy: string; matchConditions: { expression: string }[] } }[] }>("authorization.yaml");
    expect(authorization.authorizers.map((a) => a.type)).toEqual(["Node", "RBAC", "Webhook"]);
    expect(authorization.authorizers[2]?.webhook?.failurePolicy).toBe("NoOpinion");
    expect(authorization.authorizers[2]?.webhook?.matchConditions[0]?.expression).toContain("'transactions'");
  });

  it("puts every file the node needs in one directory", async () => {
    expect((await readdir(files.dir)).sort()).toEqual([
      "admission-control.yaml", "apiserver-client.crt", "apiserver-client.key", "audit-webhook.kubeconfig", "authorization-webhook.kubeconfig",
      "authorization.yaml", "kubetx-ca.crt", "webhook-clients.kubeconfig",
    ]);
  });
});
