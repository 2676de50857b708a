/**
 * The command lines of the control plane's processes: pure functions of
 * the files and ports they use, so what each process is started with is
 * tested without starting it.
 */
import path from "node:path";
import type { CertificateAuthority, ServingCertificate } from "./certs.ts";

/** The files the processes read, all under `dir`; made once per directory. */
export interface ControlPlaneFiles {
  readonly dir: string;
  readonly ca: CertificateAuthority;
  readonly serving: { readonly apiserver: ServingCertificate; readonly controllerManager: ServingCertificate; readonly scheduler: ServingCertificate };
  /** The key pair the apiserver signs and checks service-account tokens with. */
  readonly saKeys: { readonly publicKeyFile: string; readonly privateKeyFile: string };
  readonly tokenFile: string;
  readonly auditPolicy: string;
  readonly auditLog: string;
  /** An AuthorizationConfiguration (RBAC, then kubetx's webhook) in place of --authorization-mode=RBAC. */
  readonly authorizationConfig?: string;
}

export interface ControlPlanePorts {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  readonly controllerManager: number;
  readonly scheduler: number;
}

/** The range Services get their cluster IPs from; 10.0.0.1 (the `kubernetes` Service) is in the apiserver's certificate. */
export const SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24";

/**
 * `fsync: true` makes etcd sync its writes to disk, as a production etcd
 * does: for measurements on a store whose writes cost what they would in a
 * real cluster. Off by default.
 */
export interface EtcdOptions {
  readonly fsync?: boolean;
}

export function etcdArgs(dir: string, ports: ControlPlanePorts, options: EtcdOptions = {}): string[] {
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    "--name=kubetx-dev",
    `--data-dir=${path.join(dir, "etcd")}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=kubetx-dev=${peer}`,
    "--log-level=warn",
    // A throwaway local store: skipping fsync makes the apiserver several
    // times faster on slow disks, and a crash loses nothing anyone needs.
    ...(options.fsync ? [] : ["--unsafe-no-fsync"]),
  ];
}

export function apiserverArgs(files: ControlPlaneFiles, ports: ControlPlanePorts): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    `--secure-port=${ports.apiserver}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--cert-dir=${path.join(files.dir, "pki")}`,
    `--tls-cert-file=${files.serving.apiserver.certFile}`,
    `--tls-private-key-file=${files.serving.apiserver.keyFile}`,
    `--client-ca-file=${files.ca.certFile}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    files.authorizationConfig ? `--authorization-config=${files.authorizationConfig}` : "--authorization-mode=RBAC",
    "--allow-privileged=true",
    // Pods never run here (no kubelet), so nothing needs the token volume
    // this admission plugin would add to each of them.
    "--disable-admission-plugins=ServiceAccount",
    "--service-account-issuer=https://kubernetes.default.svc",
    `--service-account-key-file=${files.saKeys.publicKeyFile}`,
    `--service-account-signing-key-file=${files.saKeys.privateKeyFile}`,
    `--token-auth-file=${files.tokenFile}`,
    `--audit-policy-file=${files.auditPolicy}`,
    `--audit-log-path=${files.auditLog}`,
    "--audit-log-format=json",
    // Lets a webhook's `service` client config reach a Service through its
    // EndpointSlices, so manifests/ can be tested without a kubelet.
    "--enable-aggregator-routing=true",
    "--profiling=false",
    // The default reconciler publishes the advertise address as the
    // `kubernetes` Service endpoint and refuses a loopback one.
    "--endpoint-reconciler-type=none",
  ];
}

/**
 * Serving and delegated authentication/authorization, the same for the
 * controller manager and the scheduler: loopback only, a certificate from
 * the dev CA (so a health probe can verify whom it reached), and the
 * component's own kubeconfig for TokenReviews and SubjectAccessReviews.
 * `/healthz` needs no credentials: anonymous requests are on by default
 * and `/healthz`, `/readyz` and `/livez` are always-allow paths.
 */
function servingArgs(serving: ServingCertificate, port: number, kubeconfig: string): string[] {
  return [
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    `--tls-cert-file=${serving.certFile}`,
    `--tls-private-key-file=${serving.keyFile}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    // Callers authenticate with tokens (TokenReview) or not at all; without
    // this each process reads the apiserver's client-certificate settings
    // from kube-system and logs, forever, that there is no front-proxy CA.
    "--authentication-skip-lookup=true",
    // One of each, on loopback: there is no other instance to elect against.
    "--leader-elect=false",
    "--profiling=false",
  ];
}

/**
 * As kubeadm runs it: every default controller, each acting as its own
 * service account in kube-system (`--kubeconfig` only bootstraps those).
 */
export function controllerManagerArgs(files: ControlPlaneFiles, ports: ControlPlanePorts, kubeconfig: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    ...servingArgs(files.serving.controllerManager, ports.controllerManager, kubeconfig),
    "--controllers=*",
    "--use-service-account-credentials=true",
    // Signs the tokens of legacy service-account token Secrets with the key the apiserver checks.
    `--service-account-private-key-file=${files.saKeys.privateKeyFile}`,
    // Published in every namespace as the `kube-root-ca.crt` ConfigMap.
    `--root-ca-file=${files.ca.certFile}`,
    // Without these the CSR signing controller is skipped, the one default
    // controller that would be; kubeadm signs with the cluster CA too.
    `--cluster-signing-cert-file=${files.ca.certFile}`,
    `--cluster-signing-key-file=${files.ca.keyFile}`,
    // It creates this directory if missing: keep it out of /usr/libexec.
    `--flex-volume-plugin-dir=${path.join(files.dir, "flexvolume")}`,
  ];
}

/** `--kubeconfig` is deprecated in favour of a config file, but kubeadm still passes it, and it still works. */
export function schedulerArgs(files: ControlPlaneFiles, ports: ControlPlanePorts, kubeconfig: string): string[] {
  return [`--kubeconfig=${kubeconfig}`, ...servingArgs(files.serving.scheduler, ports.scheduler, kubeconfig)];
}
