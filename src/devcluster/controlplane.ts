/**
 * Starts a real etcd and kube-apiserver on free loopback ports, with
 * generated certificates, static-token users, RBAC and the audit log, and
 * stops every process it started.
 */
import https from "node:https";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { caBundle, ensureCertificateAuthority, ensureServiceAccountKeys, ensureServingCertificate } from "./certs.ts";
import type { CertificateAuthority } from "./certs.ts";
import type { Identity, Tokens } from "./identities.ts";
import { IDENTITIES, ensureTokenFile, renderKubeconfig } from "./identities.ts";
import { freePort } from "./ports.ts";
import type { ManagedProcess } from "./processes.ts";
import { reapStaleProcesses, startProcess, writePidFile } from "./processes.ts";
import type { Binaries } from "./toolchain.ts";

/** A cold apiserver on 2 cores needs 10-20 s; this leaves room for a loaded CI machine. */
const READY_TIMEOUT_MS = 120_000;
const READY_POLL_MS = 250;
/** Lines of a process log quoted when it dies during start. */
const LOG_TAIL_LINES = 20;

export interface ControlPlaneOptions {
  /** Holds certificates, tokens, etcd data, logs and kubeconfigs. */
  readonly dir: string;
  readonly binaries: Binaries;
  /** The apiserver's port; a free one when absent. */
  readonly apiserverPort?: number;
  /** Extra kube-apiserver flags (`--name=value`). */
  readonly extraApiserverFlags?: readonly string[];
  /**
   * Start the apiserver again whenever it exits while the control plane is
   * up, as a kubelet restarts a static pod: lets tests kill it mid-transaction.
   */
  readonly restartApiserver?: boolean;
}

export interface ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly ca: CertificateAuthority;
  readonly caData: string;
  readonly tokens: Tokens;
  /** Kubeconfig path for each identity. */
  readonly kubeconfigs: Readonly<Record<Identity["id"], string>>;
  readonly auditLog: string;
  readonly processes: readonly ManagedProcess[];
  stop(): Promise<void>;
}

export class ControlPlaneError extends Error {
  override readonly name = "ControlPlaneError";
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # The apiserver talking to itself, and health probes: noise for an auditor.
  - level: None
    users: ["system:apiserver"]
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version", "/openapi*", "/api", "/apis", "/api/*", "/apis/*"]
  # Everything else at Metadata: who did what to which object, the response
  # code and the webhooks' audit annotations, never object bodies (which
  # can hold Secret data).
  - level: Metadata
`;

/** Files made once per directory and reused on every start. */
interface Material {
  readonly ca: CertificateAuthority;
  readonly serving: { certFile: string; keyFile: string };
  readonly saKeys: { publicKeyFile: string; privateKeyFile: string };
  readonly tokenFile: string;
  readonly tokens: Tokens;
  readonly auditPolicy: string;
  readonly auditLog: string;
}

async function prepareMaterial(dir: string): Promise<Material> {
  const pki = path.join(dir, "pki");
  await mkdir(path.join(dir, "logs"), { recursive: true });
  const ca = await ensureCertificateAuthority(pki, "kubetx-dev-ca");
  const serving = await ensureServingCertificate({
    ca, outDir: pki, name: "apiserver", commonName: "kube-apiserver",
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"], ipAddresses: ["127.0.0.1", "10.0.0.1"],
  });
  const saKeys = await ensureServiceAccountKeys(pki);
  const tokenFile = path.join(dir, "tokens.csv");
  const tokens = await ensureTokenFile(tokenFile);
  const auditPolicy = path.join(dir, "audit-policy.yaml");
  await writeFile(auditPolicy, AUDIT_POLICY);
  return { ca, serving, saKeys, tokenFile, tokens, auditPolicy, auditLog: path.join(dir, "audit.log") };
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const dir = path.resolve(options.dir);
  const pidFile = path.join(dir, "controlplane.pids");
  await mkdir(dir, { recursive: true });
  await reapStaleProcesses(pidFile, dir);
  const material = await prepareMaterial(dir);
  const etcdPorts = { client: await freePort(), peer: await freePort() };
  const apiserverPort = options.apiserverPort ?? (await freePort());
  const processes: ManagedProcess[] = [];
  let stopping = false;
  let up = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    for (const p of [...processes].reverse()) await p.stop();
  };
  const startApiserver = (): ManagedProcess => {
    const apiserver = startProcess({
      name: "kube-apiserver", command: options.binaries.kubeApiserver, logFile: path.join(dir, "logs", "kube-apiserver.log"),
      args: [...apiserverArgs(dir, material, etcdPorts.client, apiserverPort), ...(options.extraApiserverFlags ?? [])],
    });
    void apiserver.exited.then(async () => {
      // Only once it has been ready: an apiserver that cannot start would loop.
      if (stopping || !up || !options.restartApiserver) return;
      processes[1] = startApiserver();
      await writePidFile(pidFile, processes.map((p) => p.pid));
    });
    return apiserver;
  };
  try {
    processes.push(startProcess({
      name: "etcd", command: options.binaries.etcd, logFile: path.join(dir, "logs", "etcd.log"),
      args: etcdArgs(dir, etcdPorts.client, etcdPorts.peer),
    }));
    processes.push(startApiserver());
    await writePidFile(pidFile, processes.map((p) => p.pid));
    const server = `https://127.0.0.1:${apiserverPort}`;
    await waitReady(server, await readFile(material.ca.certFile), material.tokens.admin, processes);
    up = true;
    const caData = await caBundle(material.ca);
    const kubeconfigs = await writeKubeconfigs(dir, server, caData, material.tokens);
    return { dir, server, ca: material.ca, caData, tokens: material.tokens, kubeconfigs, auditLog: material.auditLog, processes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function apiserverArgs(dir: string, m: Material, etcdPort: number, port: number): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    `--secure-port=${port}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--cert-dir=${path.join(dir, "pki")}`,
    `--tls-cert-file=${m.serving.certFile}`,
    `--tls-private-key-file=${m.serving.keyFile}`,
    `--client-ca-file=${m.ca.certFile}`,
    "--service-cluster-ip-range=10.0.0.0/24",
    "--authorization-mode=RBAC",
    "--allow-privileged=true",
    "--disable-admission-plugins=ServiceAccount",
    "--service-account-issuer=https://kubernetes.default.svc",
    `--service-account-key-file=${m.saKeys.publicKeyFile}`,
    `--service-account-signing-key-file=${m.saKeys.privateKeyFile}`,
    `--token-auth-file=${m.tokenFile}`,
    `--audit-policy-file=${m.auditPolicy}`,
    `--audit-log-path=${m.auditLog}`,
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

function etcdArgs(dir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
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
    "--unsafe-no-fsync",
  ];
}

async function writeKubeconfigs(dir: string, server: string, caData: string, tokens: Tokens): Promise<Record<Identity["id"], string>> {
  const files = {} as Record<Identity["id"], string>;
  for (const identity of IDENTITIES) {
    const file = path.join(dir, identity.id === "admin" ? "kubeconfig" : `${identity.id}.kubeconfig`);
    await writeFile(file, renderKubeconfig({ server, caData, user: identity.user, token: tokens[identity.id] }), { mode: 0o600 });
    files[identity.id] = file;
  }
  return files;
}

async function waitReady(server: string, ca: Buffer, token: string, processes: readonly ManagedProcess[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let died: ManagedProcess | undefined;
  for (const p of processes) void p.exited.then(() => (died ??= p));
  while (Date.now() < deadline) {
    if (died) throw new ControlPlaneError(`kubetx: ${died.name} exited during start; its log ends:\n${await logTail(died.logFile)}`);
    if ((await probe(`${server}/readyz`, ca, token)) === 200) return;
    await sleep(READY_POLL_MS);
  }
  throw new ControlPlaneError(`kubetx: the apiserver at ${server} was not ready within ${READY_TIMEOUT_MS / 1000} s; see ${processes.at(-1)?.logFile ?? "its log"}`);
}

function probe(url: string, ca: Buffer, token: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

async function logTail(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trimEnd().split("\n").slice(-LOG_TAIL_LINES).join("\n");
  } catch {
    return "(no log)";
  }
}
