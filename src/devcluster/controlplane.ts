/**
 * Starts a real cluster minus the kubelet on free loopback ports: etcd,
 * kube-apiserver (generated certificates, static-token users, RBAC, the
 * audit log), kube-controller-manager and kube-scheduler; and stops every
 * process it started.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { caBundle, ensureCertificateAuthority, ensureClientCertificate, ensureServiceAccountKeys, ensureServingCertificate } from "./certs.ts";
import type { CertificateAuthority, ServingCertificate } from "./certs.ts";
import { admissionConfiguration, authorizationConfiguration, webhookClientsKubeconfig, webhookKubeconfig } from "./apiserver-config.ts";
import type { ControlPlaneFiles, ControlPlanePorts } from "./flags.ts";
import { apiserverArgs, controllerManagerArgs, etcdArgs, schedulerArgs } from "./flags.ts";
import type { HealthCheck } from "./health.ts";
import { waitHealthy } from "./health.ts";
import type { Identity, Tokens } from "./identities.ts";
import { IDENTITIES, ensureTokenFile, renderKubeconfig } from "./identities.ts";
import { freePort } from "./ports.ts";
import type { ManagedProcess } from "./processes.ts";
import { reapStaleProcesses, startProcess, writePidFile } from "./processes.ts";
import type { Binaries } from "./toolchain.ts";

export { ControlPlaneError } from "./health.ts";

/** A cold apiserver on 2 cores needs 10-20 s; this leaves room for a loaded CI machine. */
const APISERVER_READY_TIMEOUT_MS = 120_000;
/** Both serve /healthz a few seconds after they start; room again for a loaded machine. */
const CONTROLLERS_READY_TIMEOUT_MS = 60_000;

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
  /**
   * Where the apiserver's audit webhook backend sends its events (kubetx's
   * /audit, e.g. https://127.0.0.1:9443/audit), beside the audit log. The
   * apiserver authenticates with a client certificate from the dev CA whose
   * name is APISERVER_CLIENT_NAME.
   */
  readonly auditSinkUrl?: string;
  /**
   * The webhook hosts the apiserver presents its client certificate to
   * (names of users in the WebhookAdmission kubeconfig): `host:port`, as a
   * webhook's `url` names it, `name.namespace.svc:443` for a `service`, or
   * `*` for every webhook (the tests start engines on random ports).
   */
  readonly webhookClientHosts?: readonly string[];
  /**
   * Where kubetx answers the apiserver's authorization webhook (its
   * /authorize, e.g. https://127.0.0.1:9443/authorize): after RBAC, for
   * lists and watches of Transaction records only, so users may list
   * their own. Absent: RBAC alone.
   */
  readonly authorizationWebhookUrl?: string;
  /** etcd with fsync on (benchmarks); off when absent, see etcdArgs. */
  readonly etcdFsync?: boolean;
  /** Log kubetx's own reads too (benchmarks count every request kubetx makes); left out when absent. */
  readonly auditKubetxReads?: boolean;
}

/** The name in the client certificate the apiserver presents to kubetx (its audit sink, and the admission webhooks). */
export const APISERVER_CLIENT_NAME = "kube-apiserver";
/** Every webhook the apiserver calls gets the certificate (only its public half travels; the key never leaves the apiserver). */
export const ALL_WEBHOOKS = "*";

/**
 * The audit webhook backend, measured for kubetx: batches waited for at
 * most a quarter second (the default is 30 s, far longer than a
 * transaction's quiet window), and a failed send retried after a quarter
 * second (the default 10 s would hold failures back past the window).
 * `blocking` mode was measured too: see README "Audit sink".
 */
export const AUDIT_WEBHOOK_FLAGS = [
  "--audit-webhook-mode=batch",
  "--audit-webhook-batch-max-wait=250ms",
  "--audit-webhook-initial-backoff=250ms",
] as const;

export interface ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly ca: CertificateAuthority;
  readonly caData: string;
  readonly tokens: Tokens;
  /** Kubeconfig path for each identity. */
  readonly kubeconfigs: Readonly<Record<Identity["id"], string>>;
  readonly auditLog: string;
  /** The client certificate the apiserver presents to webhooks and the audit sink: the CA that signed it and its name. */
  readonly apiserverClient: { readonly caFile: string; readonly names: readonly string[] };
  /** That certificate and its key, for tools that must speak to kubetx as the apiserver does (fuzzing, tests). */
  readonly apiserverClientCertificate: ServingCertificate;
  readonly processes: readonly ManagedProcess[];
  stop(): Promise<void>;
}

/** The audit policy's rule that leaves kubetx's reads out. */
const KUBETX_READS_RULE = `  # kubetx's own reads (the resolver's polling): most of what is left, and
  # none of the story. Its writes (rollbacks) stay.
  - level: None
    users: ["system:serviceaccount:kubetx-system:kubetx"]
    verbs: ["get", "list", "watch"]
`;

/** What the apiserver logs; `kubetxReads` keeps kubetx's reads too (the bench counts every call kubetx makes). */
export function auditPolicy(kubetxReads: boolean): string {
  return `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  # The apiserver talking to itself, and health probes: noise for an auditor.
  - level: None
    users: ["system:apiserver"]
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version", "/openapi*", "/api", "/apis", "/api/*", "/apis/*"]
  # The controller manager's and scheduler's reads (their informers' watches
  # and the controllers' token requests' lookups): most of the log, none of
  # the story. Their writes stay.
  - level: None
    users: ["system:kube-controller-manager", "system:kube-scheduler"]
    verbs: ["get", "list", "watch"]
  - level: None
    userGroups: ["system:serviceaccounts:kube-system"]
    verbs: ["get", "list", "watch"]
${kubetxReads ? "" : KUBETX_READS_RULE}  # The control plane's and kubetx's own writes: when they end is enough.
  - level: Metadata
    omitStages: [RequestReceived]
    users: ["system:kube-controller-manager", "system:kube-scheduler", "system:serviceaccount:kubetx-system:kubetx"]
  - level: Metadata
    omitStages: [RequestReceived]
    userGroups: ["system:serviceaccounts:kube-system", "system:nodes"]
  # Everyone else's writes also when they arrive: the audit sink keeps a
  # transparent transaction open while a write of its requester is in flight.
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  # Everything else at Metadata: who did what to which object, the response
  # code and the webhooks' audit annotations, never object bodies (which
  # can hold Secret data).
  - level: Metadata
    omitStages: [RequestReceived]
`;
}

/** Files made once per directory and reused on every start. */
interface Material extends ControlPlaneFiles {
  readonly tokens: Tokens;
  /** How the apiserver proves itself to kubetx: a CA of its own and the certificate it signs. */
  readonly webhookClient: { readonly ca: CertificateAuthority; readonly cert: ServingCertificate };
}

/** A serving certificate for the controller manager or the scheduler, which listen on 127.0.0.1 only. */
function loopbackServing(ca: CertificateAuthority, pki: string, name: string): Promise<ServingCertificate> {
  return ensureServingCertificate({ ca, outDir: pki, name, commonName: name, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
}

async function prepareMaterial(dir: string, auditKubetxReads: boolean): Promise<Material> {
  const pki = path.join(dir, "pki");
  await mkdir(path.join(dir, "logs"), { recursive: true });
  const ca = await ensureCertificateAuthority(pki, "kubetx-dev-ca");
  const serving = {
    apiserver: await ensureServingCertificate({
      ca, outDir: pki, name: "apiserver", commonName: "kube-apiserver",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"], ipAddresses: ["127.0.0.1", "10.0.0.1"],
    }),
    controllerManager: await loopbackServing(ca, pki, "kube-controller-manager"),
    scheduler: await loopbackServing(ca, pki, "kube-scheduler"),
  };
  const saKeys = await ensureServiceAccountKeys(pki);
  const tokenFile = path.join(dir, "tokens.csv");
  const tokens = await ensureTokenFile(tokenFile);
  const auditPolicyFile = path.join(dir, "audit-policy.yaml");
  await writeFile(auditPolicyFile, auditPolicy(auditKubetxReads));
  return { dir, ca, serving, saKeys, tokenFile, tokens, auditPolicy: auditPolicyFile, auditLog: path.join(dir, "audit.log"), webhookClient: await webhookClientMaterial(pki) };
}

/**
 * The apiserver's client certificate for kubetx, from a CA of its own
 * rather than the cluster CA: the cluster CA also signs approved
 * CertificateSigningRequests (the controller manager's signer), so anyone
 * whose request an approver passed could otherwise present the name
 * kubetx trusts.
 */
async function webhookClientMaterial(pki: string): Promise<Material["webhookClient"]> {
  const ca = await ensureCertificateAuthority(path.join(pki, "apiserver-client-ca"), "kubetx-apiserver-client-ca");
  const cert = await ensureClientCertificate({ ca, outDir: pki, name: "apiserver-webhook-client", commonName: APISERVER_CLIENT_NAME });
  return { ca, cert };
}

async function choosePorts(apiserverPort: number | undefined): Promise<ControlPlanePorts> {
  return {
    etcdClient: await freePort(),
    etcdPeer: await freePort(),
    apiserver: apiserverPort ?? (await freePort()),
    controllerManager: await freePort(),
    scheduler: await freePort(),
  };
}

/**
 * The processes of one control plane, in start order (etcd first), and how
 * they stop: in reverse, so nothing loses what it depends on while it
 * shuts down.
 */
class ProcessSet {
  readonly list: ManagedProcess[] = [];
  stopping = false;
  private readonly dir: string;
  private readonly pidFile: string;

  constructor(dir: string, pidFile: string) {
    this.dir = dir;
    this.pidFile = pidFile;
  }

  /** Starts a process; one `replacing` an exited one takes its place in the start (and stop) order. */
  start(name: string, command: string, args: readonly string[], replacing?: ManagedProcess): ManagedProcess {
    const started = startProcess({ name, command, args, logFile: this.logFile(name) });
    const at = replacing ? this.list.indexOf(replacing) : -1;
    if (at >= 0) this.list[at] = started;
    else this.list.push(started);
    return started;
  }

  logFile(name: string): string {
    return path.join(this.dir, "logs", `${name}.log`);
  }

  /** Records every pid, so a start after a crash can stop what this run left behind. */
  record(): Promise<void> {
    return writePidFile(this.pidFile, this.list.map((p) => p.pid));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const p of [...this.list].reverse()) await p.stop();
  }
}

/** What every start step needs. */
interface StartContext {
  readonly options: ControlPlaneOptions;
  readonly processes: ProcessSet;
  readonly material: Material;
  readonly ports: ControlPlanePorts;
  /** The dev CA (PEM), which signed every server's certificate. */
  readonly ca: Buffer;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const dir = path.resolve(options.dir);
  const pidFile = path.join(dir, "controlplane.pids");
  await mkdir(dir, { recursive: true });
  await reapStaleProcesses(pidFile, dir);
  const material = await prepareMaterial(dir, options.auditKubetxReads ?? false);
  const processes = new ProcessSet(dir, pidFile);
  const context: StartContext = { options, processes, material, ports: await choosePorts(options.apiserverPort), ca: await readFile(material.ca.certFile) };
  const stop = (): Promise<void> => processes.stop();
  try {
    const server = `https://127.0.0.1:${context.ports.apiserver}`;
    processes.start("etcd", options.binaries.etcd, etcdArgs(dir, context.ports, { fsync: options.etcdFsync }));
    const restart = await startApiserver(context);
    await processes.record();
    await waitHealthy({
      checks: [healthCheck(processes, "kube-apiserver", `${server}/readyz`, material.tokens.admin)],
      ca: context.ca, watched: processes.list, timeoutMs: APISERVER_READY_TIMEOUT_MS,
    });
    const caData = await caBundle(material.ca);
    const kubeconfigs = await writeKubeconfigs(dir, server, caData, material.tokens);
    await startControllers(context, kubeconfigs);
    restart.enable();
    const apiserverClient = { caFile: material.webhookClient.ca.certFile, names: [APISERVER_CLIENT_NAME] };
    return {
      dir, server, ca: material.ca, caData, tokens: material.tokens, kubeconfigs, auditLog: material.auditLog,
      apiserverClient, apiserverClientCertificate: material.webhookClient.cert, processes: processes.list, stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function healthCheck(processes: ProcessSet, name: string, url: string, token?: string): HealthCheck {
  return { name, url, logFile: processes.logFile(name), ...(token ? { token } : {}) };
}

/**
 * Starts the apiserver; once `enable()` is called (the control plane is
 * up), starts it again whenever it exits, as a kubelet restarts a static
 * pod, if the options ask for that. Never before: an apiserver that cannot
 * start would loop.
 */
async function startApiserver({ options, processes, material, ports }: StartContext): Promise<{ enable(): void }> {
  const sink = options.auditSinkUrl ? await auditWebhookFlags(material, options.auditSinkUrl) : [];
  const admission = await admissionControlFlags(material, options.webhookClientHosts ?? [ALL_WEBHOOKS]);
  const authorizationConfig = options.authorizationWebhookUrl ? await authorizationConfigFile(material, options.authorizationWebhookUrl) : undefined;
  const files = authorizationConfig ? { ...material, authorizationConfig } : material;
  const args = [...apiserverArgs(files, ports), ...admission, ...sink, ...(options.extraApiserverFlags ?? [])];
  let enabled = false;
  const start = (previous?: ManagedProcess): void => {
    const apiserver = processes.start("kube-apiserver", options.binaries.kubeApiserver, args, previous);
    void apiserver.exited.then(async () => {
      if (processes.stopping || !enabled || !options.restartApiserver) return;
      start(apiserver);
      await processes.record();
    });
  };
  start();
  return { enable: () => (enabled = true) };
}

/**
 * The audit webhook backend's kubeconfig: kubetx's sink URL, the CA that
 * signed kubetx's serving certificate, and the apiserver's client
 * certificate, by which kubetx knows the batches come from the apiserver.
 */
async function auditWebhookFlags(material: Material, url: string): Promise<string[]> {
  const file = path.join(material.dir, "audit-webhook.kubeconfig");
  await writeFile(file, webhookKubeconfig(url, material.ca.certFile, material.webhookClient.cert), { mode: 0o600 });
  return [`--audit-webhook-config-file=${file}`, ...AUDIT_WEBHOOK_FLAGS];
}

/** RBAC, then kubetx's authorization webhook at `url` (src/devcluster/apiserver-config.ts). */
async function authorizationConfigFile(material: Material, url: string): Promise<string> {
  const kubeconfig = path.join(material.dir, "authorization-webhook.kubeconfig");
  await writeFile(kubeconfig, webhookKubeconfig(url, material.ca.certFile, material.webhookClient.cert), { mode: 0o600 });
  const file = path.join(material.dir, "authorization.yaml");
  await writeFile(file, authorizationConfiguration(kubeconfig, ["RBAC"]));
  return file;
}

/** The apiserver's client certificate for admission webhooks, for each of `hosts` (src/devcluster/apiserver-config.ts). */
async function admissionControlFlags(material: Material, hosts: readonly string[]): Promise<string[]> {
  const kubeconfig = path.join(material.dir, "webhook-clients.kubeconfig");
  await writeFile(kubeconfig, webhookClientsKubeconfig(hosts, material.webhookClient.cert), { mode: 0o600 });
  const file = path.join(material.dir, "admission-control.yaml");
  await writeFile(file, admissionConfiguration(kubeconfig));
  return [`--admission-control-config-file=${file}`];
}

/** Starts the controller manager and the scheduler, each as its own user, and waits until both are healthy. */
async function startControllers({ options, processes, material, ports, ca }: StartContext, kubeconfigs: Readonly<Record<Identity["id"], string>>): Promise<void> {
  const { kubeControllerManager, kubeScheduler } = options.binaries;
  processes.start("kube-controller-manager", kubeControllerManager, controllerManagerArgs(material, ports, kubeconfigs["kube-controller-manager"]));
  processes.start("kube-scheduler", kubeScheduler, schedulerArgs(material, ports, kubeconfigs["kube-scheduler"]));
  await processes.record();
  const checks = [
    healthCheck(processes, "kube-controller-manager", `https://127.0.0.1:${ports.controllerManager}/healthz`),
    healthCheck(processes, "kube-scheduler", `https://127.0.0.1:${ports.scheduler}/healthz`),
  ];
  await waitHealthy({ checks, ca, watched: processes.list, timeoutMs: CONTROLLERS_READY_TIMEOUT_MS });
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
