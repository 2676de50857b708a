/**
 * What a real cluster's control-plane nodes need so the apiserver proves
 * itself to kubetx (`kubetx certs`, webhook-certs/install.sh): the
 * apiserver's client certificate from a CA of kubetx's own, and the
 * apiserver configuration files naming it, written into OUT/control-plane/
 * with the paths they will have on the node (NODE_DIR, by default
 * /etc/kubernetes/kubetx). manifests/README.md says where each goes.
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { admissionConfiguration, authorizationConfiguration, webhookClientsKubeconfig, webhookKubeconfig } from "./apiserver-config.ts";
import type { CertificateAuthority, ServingCertificate } from "./certs.ts";
import { ensureCertificateAuthority, ensureClientCertificate } from "./certs.ts";

/** Where kubeadm-style nodes keep the files; the apiserver's static pod mounts it. */
export const DEFAULT_NODE_DIR = "/etc/kubernetes/kubetx";
/** The name kubetx serve expects by default (--apiserver-client). */
export const APISERVER_CLIENT_COMMON_NAME = "kube-apiserver";

export interface NodeFilesRequest {
  readonly out: string;
  /** The CA of kubetx's serving certificate (the webhooks' caBundle). */
  readonly servingCa: CertificateAuthority;
  readonly service: string;
  readonly namespace: string;
  /** The Service's ClusterIP: the audit and authorization webhooks are called by URL, and the apiserver cannot resolve cluster DNS. */
  readonly serviceIp?: string;
  readonly nodeDir?: string;
}

export interface NodeFiles {
  /** The CA kubetx checks the apiserver's certificate against: the ConfigMap kubetx-apiserver-client-ca. */
  readonly clientCa: CertificateAuthority;
  readonly client: ServingCertificate;
  readonly dir: string;
  readonly written: readonly string[];
}

export async function writeNodeFiles(request: NodeFilesRequest): Promise<NodeFiles> {
  const clientCa = await ensureCertificateAuthority(path.join(request.out, "apiserver-client-ca"), "kubetx-apiserver-client-ca");
  const client = await ensureClientCertificate({ ca: clientCa, outDir: request.out, name: "apiserver-client", commonName: APISERVER_CLIENT_COMMON_NAME });
  const dir = path.join(request.out, "control-plane");
  await mkdir(dir, { recursive: true });
  const node = request.nodeDir ?? DEFAULT_NODE_DIR;
  const onNode = { certFile: path.join(node, "apiserver-client.crt"), keyFile: path.join(node, "apiserver-client.key") };
  const caOnNode = path.join(node, "kubetx-ca.crt");
  const files: Record<string, string> = {
    "webhook-clients.kubeconfig": webhookClientsKubeconfig([`${request.service}.${request.namespace}.svc:443`], onNode),
    "admission-control.yaml": admissionConfiguration(path.join(node, "webhook-clients.kubeconfig")),
  };
  if (request.serviceIp) {
    const base = `https://${request.serviceIp}:443`;
    // The serving certificate carries the Service's DNS names, not its ClusterIP.
    const serverName = `${request.service}.${request.namespace}.svc`;
    files["audit-webhook.kubeconfig"] = webhookKubeconfig(`${base}/audit`, caOnNode, onNode, serverName);
    files["authorization-webhook.kubeconfig"] = webhookKubeconfig(`${base}/authorize`, caOnNode, onNode, serverName);
    files["authorization.yaml"] = authorizationConfiguration(path.join(node, "authorization-webhook.kubeconfig"), ["Node", "RBAC"]);
  }
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text, { mode: 0o600 });
  await copyFile(client.certFile, path.join(dir, "apiserver-client.crt"));
  await copyFile(client.keyFile, path.join(dir, "apiserver-client.key"));
  await copyFile(request.servingCa.certFile, path.join(dir, "kubetx-ca.crt"));
  return { clientCa, client, dir, written: [...Object.keys(files), "apiserver-client.crt", "apiserver-client.key", "kubetx-ca.crt"] };
}
