/**
 * The campaign's cluster: the dev control plane (src/devcluster), kubetx
 * installed from manifests/ with its webhooks behind the Service, 2 or 3
 * `kubetx serve` replicas each behind its own EndpointSlice, the audit
 * relay, and the third-party webhook; and the users the clients act as.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { ensureCertificateAuthority, ensureClientCertificate, ensureServingCertificate, serviceDnsNames } from "../src/devcluster/certs.ts";
import type { CertificateAuthority } from "../src/devcluster/certs.ts";
import type { ControlPlane } from "../src/devcluster/controlplane.ts";
import { startControlPlane } from "../src/devcluster/controlplane.ts";
import { freePort } from "../src/devcluster/ports.ts";
import { defaultCacheDir, ensureBinaries } from "../src/devcluster/toolchain.ts";
import type { User } from "./history.ts";
import { USERS } from "./history.ts";
import { Http } from "./checker/http.ts";
import { PROBE_NAMESPACE, createOrReplace, createWorkloadNamespace, installKubetx, installPolicy, setEndpoint, waitForKubetx, waitForPolicy } from "./install.ts";
import { AuditRelay } from "./relay.ts";
import { Replica, SERVICE_HOST } from "./replicas.ts";
import { ThirdPartyWebhook } from "./thirdparty.ts";

/** A restarted apiserver on a busy 2-core machine is ready within half a minute; this leaves room. */
const APISERVER_READY_TIMEOUT_MS = 120_000;
const APISERVER_POLL_MS = 250;
/** The users that authenticate with client certificates (alice and bob have the dev cluster's tokens). */
const CERTIFICATE_USERS = ["carol", "dave"] as const;
const THIRD_PARTY_CONFIGURATIONS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";

export interface ClusterOptions {
  readonly repo: string;
  readonly replicas: number;
  readonly say: (line: string) => void;
  /** Deterministic denials from the third-party webhook. */
  readonly random: () => number;
  /** Keep the cluster's directory (logs, certificates, etcd data) after stopping, to look into a failure. */
  readonly keep?: boolean;
}

export interface ChaosCluster {
  readonly dir: string;
  readonly controlPlane: ControlPlane;
  readonly http: Http;
  /** alice's: a user whose writes kubetx's webhooks receive (the admin is exempt, and the webhooks skip exempt users). */
  readonly userHttp: Http;
  readonly kubectl: string;
  readonly kubeconfigs: Readonly<Record<User, string>>;
  readonly caBundle: string;
  readonly replicas: readonly Replica[];
  readonly relay: AuditRelay;
  readonly thirdParty: ThirdPartyWebhook;
  readonly host: string;
  setEndpointReady(replica: Replica, ready: boolean): Promise<void>;
  apiserverPid(): number | undefined;
  waitApiserverReady(): Promise<void>;
  /** Restarts the replicas when they run with the other audit sink setting. */
  useSink(sink: boolean): Promise<void>;
  stop(): Promise<void>;
}

/**
 * An address of this machine that an EndpointSlice may hold: the apiserver
 * refuses loopback ones, and checks the serving certificate for the
 * Service's DNS name, not this address.
 */
export function machineAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const found = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (found) return found.address;
  }
  throw new Error("chaos: this machine has no non-loopback IPv4 address for the replicas' EndpointSlices");
}

export async function startChaosCluster(options: ClusterOptions): Promise<ChaosCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), "kubetx-chaos-"));
  const cleanups: (() => Promise<void>)[] = options.keep ? [] : [() => rm(dir, { recursive: true, force: true })];
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    return await assemble(dir, options, cleanups, stop);
  } catch (error) {
    await stop();
    throw error;
  }
}

interface Assembly {
  readonly dir: string;
  readonly pki: string;
  readonly ca: CertificateAuthority;
  readonly caPem: string;
  readonly host: string;
  readonly options: ClusterOptions;
  readonly cleanups: (() => Promise<void>)[];
}

async function assemble(dir: string, options: ClusterOptions, cleanups: (() => Promise<void>)[], stop: () => Promise<void>): Promise<ChaosCluster> {
  const pki = path.join(dir, "pki");
  await mkdir(path.join(dir, "logs"), { recursive: true });
  const ca = await ensureCertificateAuthority(pki, "kubetx-dev-ca");
  const a: Assembly = { dir, pki, ca, caPem: await readFile(ca.certFile, "utf8"), host: machineAddress(), options, cleanups };
  const replicas: Replica[] = [];
  const relay = await startRelay({ ...a, replicas: () => replicas });
  cleanups.push(() => relay.close());
  const binaries = await ensureBinaries({ moduleDir: path.join(options.repo, "controlplane"), cacheDir: defaultCacheDir(process.env), onProgress: options.say });
  options.say(`chaos: starting the control plane ${binaries.version} in ${dir}`);
  // The audit webhook backend posts to the relay, which stands where a Service's load balancer would.
  // The apiserver presents its client certificate to kubetx's Service (its WebhookAdmission kubeconfig
  // names that host, as `kubetx certs` writes it for a real control plane) and to the relay's /audit.
  const controlPlane = await startControlPlane({
    dir, binaries, restartApiserver: true, extraApiserverFlags: EXTRA_APISERVER_FLAGS, auditSinkUrl: `https://127.0.0.1:${relay.port}/audit`,
    webhookClientHosts: [`${SERVICE_HOST}:443`],
  });
  cleanups.push(() => controlPlane.stop());
  const apiserverClient = controlPlane.apiserverClientCertificate;
  relay.client = { cert: await readFile(apiserverClient.certFile, "utf8"), key: await readFile(apiserverClient.keyFile, "utf8") };
  const http = new Http({ server: controlPlane.server, ca: a.caPem, token: controlPlane.tokens.admin });
  const userHttp = new Http({ server: controlPlane.server, ca: a.caPem, token: controlPlane.tokens.alice });
  cleanups.push(() => Promise.resolve(http.close()), () => Promise.resolve(userHttp.close()));
  await installKubetx({ http, kubectl: binaries.kubectl, kubeconfig: controlPlane.kubeconfigs.admin, repo: options.repo, caBundle: controlPlane.caData });
  replicas.push(...(await startReplicas(a, http, controlPlane)));
  await waitForKubetx(http);
  await installPolicy(http);
  await createWorkloadNamespace(http, PROBE_NAMESPACE, USERS);
  await waitForPolicy(http, binaries.kubectl, controlPlane.kubeconfigs.alice);
  const thirdParty = await startThirdParty(a, http, controlPlane.caData);
  const kubeconfigs = await userKubeconfigs({ dir, pki, ca, controlPlane });
  return {
    dir, controlPlane, http, userHttp, kubectl: binaries.kubectl, kubeconfigs, caBundle: controlPlane.caData, replicas, relay, thirdParty, host: a.host,
    setEndpointReady: (r, ready) => setEndpoint(http, { replica: r.name, host: a.host, port: r.port, ready }),
    apiserverPid: () => controlPlane.processes.find((p) => p.name === "kube-apiserver")?.pid,
    waitApiserverReady: () => waitApiserverReady(http),
    useSink: (sink) => useSink(replicas, relay, sink),
    stop,
  };
}

/** The replicas, each serving the Service's name on its own port of this machine, and their EndpointSlices. */
async function startReplicas(a: Assembly, http: Http, controlPlane: ControlPlane): Promise<Replica[]> {
  const tls = await ensureServingCertificate({ ca: a.ca, outDir: a.pki, name: "kubetx-replicas", commonName: "kubetx.kubetx-system.svc", dnsNames: serviceDnsNames("kubetx", "kubetx-system"), ipAddresses: [a.host, "127.0.0.1"] });
  const config = {
    repo: a.options.repo, kubeconfig: controlPlane.kubeconfigs.kubetx, tls, clientCaFile: controlPlane.apiserverClient.caFile, ca: a.caPem, host: a.host,
    logDir: path.join(a.dir, "logs"),
  };
  const replicas: Replica[] = [];
  for (let i = 1; i <= a.options.replicas; i += 1) replicas.push(new Replica(i, { webhook: await freePort(), metrics: await freePort() }, config));
  a.cleanups.push(async () => void (await Promise.all(replicas.map((r) => r.stop()))));
  await Promise.all(replicas.map((r) => r.start(false)));
  for (const r of replicas) await setEndpoint(http, { replica: r.name, host: a.host, port: r.port, ready: true });
  return replicas;
}

interface RelayInputs {
  readonly pki: string;
  readonly ca: CertificateAuthority;
  readonly caPem: string;
  readonly host: string;
  readonly replicas: () => readonly Replica[];
}

async function startRelay(inputs: RelayInputs): Promise<AuditRelay> {
  const serving = await ensureServingCertificate({ ca: inputs.ca, outDir: inputs.pki, name: "chaos-relay", commonName: "chaos-audit-relay", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  return AuditRelay.start({
    serving: { cert: await readFile(serving.certFile, "utf8"), key: await readFile(serving.keyFile, "utf8") },
    ca: inputs.caPem, host: inputs.host, port: await freePort(), replicas: inputs.replicas,
  });
}

/** Rotation would move the log under the checker's reader: 1 GiB is more than a long campaign writes. */
const AUDIT_LOG_MAX_MB = 1024;

/**
 * No watch cache for the workload's kinds, so the recorder's watches
 * resume from etcd after an apiserver restart without a gap; and no log
 * rotation within a campaign.
 */
const EXTRA_APISERVER_FLAGS = [
  `--audit-log-maxsize=${AUDIT_LOG_MAX_MB}`,
  "--watch-cache-sizes=configmaps#0,deployments.apps#0",
];

async function startThirdParty(a: Assembly, http: Http, caBundle: string): Promise<ThirdPartyWebhook> {
  const serving = await ensureServingCertificate({ ca: a.ca, outDir: a.pki, name: "chaos-third-party", commonName: "chaos-third-party", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const webhook = await ThirdPartyWebhook.start({ cert: await readFile(serving.certFile, "utf8"), key: await readFile(serving.keyFile, "utf8") }, a.options.random);
  a.cleanups.push(() => webhook.close());
  await createOrReplace(http, THIRD_PARTY_CONFIGURATIONS, webhook.configuration(caBundle));
  return webhook;
}

/** alice and bob from the dev cluster's tokens; carol and dave with client certificates signed by its CA. */
async function userKubeconfigs(inputs: { dir: string; pki: string; ca: CertificateAuthority; controlPlane: ControlPlane }): Promise<Record<User, string>> {
  const { controlPlane } = inputs;
  const files: Record<User, string> = { carol: "", dave: "", alice: controlPlane.kubeconfigs.alice, bob: controlPlane.kubeconfigs.bob };
  for (const user of CERTIFICATE_USERS) {
    const cert = await ensureClientCertificate({ ca: inputs.ca, outDir: inputs.pki, name: `user-${user}`, commonName: user });
    const file = path.join(inputs.dir, `${user}.kubeconfig`);
    await writeFile(file, stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "chaos", cluster: { server: controlPlane.server, "certificate-authority-data": controlPlane.caData } }],
      users: [{ name: user, user: { "client-certificate": cert.certFile, "client-key": cert.keyFile } }],
      contexts: [{ name: user, context: { cluster: "chaos", user } }],
      "current-context": user,
    }), { mode: 0o600 });
    files[user] = file;
  }
  return files;
}

async function waitApiserverReady(http: Http): Promise<void> {
  const deadline = Date.now() + APISERVER_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if ((await http.status("/readyz")) === 200) return;
    await sleep(APISERVER_POLL_MS);
  }
  throw new Error(`chaos: the apiserver was not ready within ${APISERVER_READY_TIMEOUT_MS / 1000} s`);
}

async function useSink(replicas: readonly Replica[], relay: AuditRelay, sink: boolean): Promise<void> {
  relay.enabled = sink;
  const stale = replicas.filter((r) => r.sink !== sink || r.state !== "running");
  await Promise.all(stale.map(async (r) => {
    await r.stop();
    await r.start(sink);
  }));
}
