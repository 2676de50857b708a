/**
 * `kubetx dev`: a local control plane with kubetx running in it, in the
 * foreground, until SIGINT or SIGTERM.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { AdmissionRequest } from "../admission/review.ts";
import type { KubeClient } from "../kube/index.ts";
import { createKubeClient, createOrReplace } from "../kube/index.ts";
import { startWebhookServer } from "../main.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { EngineConfig } from "../config/config.ts";
import { EDITORS_BOUND_TIMEOUT_MS, bootstrapKubetxIdentity, editorsBound, runEditorBinder } from "./bootstrap.ts";
import { installCrds, installDefaultPolicy, installUserRole } from "./install.ts";
import { ensureServingCertificate, serviceDnsNames } from "./certs.ts";
import type { ControlPlane } from "./controlplane.ts";
import { startControlPlane } from "./controlplane.ts";
import { KUBETX_NAMESPACE, KUBETX_SERVICE_ACCOUNT } from "./identities.ts";
import { portInUse } from "./ports.ts";
import { CONFIGURATION_PATHS, WEBHOOK_NAME, urlClientConfig, webhookConfigurations } from "../webhooks/configurations.ts";
import type { Binaries } from "./toolchain.ts";
import { AUDIT_PATH } from "../server/app.ts";
import { AUTHORIZE_PATH } from "../admission/record-access.ts";
import { buildPluginBundle, pluginWrapper } from "./plugin-bundle.ts";

/** A namespace dev creates, opted in, so there is somewhere to try kubetx at once. */
export const DEMO_NAMESPACE = "kubetx-demo";
/** The apiserver picks up a new webhook configuration within a second or two. */
const READY_PROBE_TIMEOUT_MS = 60_000;
const READY_PROBE_INTERVAL_MS = 250;
const READY_PROBE_PREFIX = "kubetx-dev-ready-";

export interface DevOptions {
  readonly dir: string;
  readonly apiserverPort: number;
  readonly webhookPort: number;
  readonly metricsPort: number;
  readonly binaries: () => Promise<Binaries>;
  readonly logger: Logger;
  readonly config: EngineConfig;
  /** The repository root: manifests/ and the kubectl-tx entry point live there. */
  readonly repoRoot: string;
  /** Where the user-facing lines go (stdout). */
  readonly say: (line: string) => void;
}

export interface DevCluster {
  readonly controlPlane: ControlPlane;
  /** Holds `kubectl` and `kubectl-tx`: put it first on PATH. */
  readonly binDir: string;
  readonly webhookPort: number;
  readonly metricsPort: number;
  stop(): Promise<void>;
}

export class DevError extends Error {
  override readonly name = "DevError";
}

export async function checkPortsFree(ports: { apiserverPort: number; webhookPort: number; metricsPort?: number }): Promise<void> {
  const flags = [["--port", ports.apiserverPort], ["--webhook-port", ports.webhookPort], ...(ports.metricsPort ? [["--metrics-port", ports.metricsPort] as const] : [])] as const;
  for (const [flag, port] of flags) {
    if (await portInUse(port)) {
      throw new DevError(`kubetx dev: port ${port} on 127.0.0.1 is in use; stop what listens there (is another kubetx dev running?) or pass ${flag} with a free port`);
    }
  }
}

/** Starts everything and returns once a write to an opted-in namespace went through the webhook. */
async function startControlPlaneIn(options: DevOptions): Promise<{ binaries: Binaries; controlPlane: ControlPlane }> {
  const binaries = await options.binaries();
  options.say(`starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler ${binaries.version} in ${options.dir}`);
  const sink = options.config.auditSinkDelayMs !== undefined ? { auditSinkUrl: `https://127.0.0.1:${options.webhookPort}${AUDIT_PATH}` } : {};
  // The apiserver presents its client certificate to kubetx's webhook address only.
  const webhookClientHosts = [`127.0.0.1:${options.webhookPort}`];
  // Users list their own transactions through kubetx's authorization webhook.
  const authorizationWebhookUrl = `https://127.0.0.1:${options.webhookPort}${AUTHORIZE_PATH}`;
  return { binaries, controlPlane: await startControlPlane({ dir: options.dir, binaries, apiserverPort: options.apiserverPort, webhookClientHosts, authorizationWebhookUrl, ...sink }) };
}

/**
 * One kubetx dev per directory: a second one would stop the first one's
 * control plane (a start clears what a crashed run left behind).
 */
async function claimDirectory(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, "kubetx-dev.pid");
  const owner = Number((await readFile(file, "utf8").catch(() => "")).trim());
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid) {
    const cmdline = await readFile(`/proc/${owner}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes("kubetx")) {
      throw new DevError(`kubetx dev: ${dir} is in use by another kubetx dev (pid ${owner}); stop it (Ctrl-C there, or kill ${owner}) or pass --dir with another directory`);
    }
  }
  await mkdir(dir, { recursive: true });
  await writeFile(file, `${process.pid}\n`);
  return () => rm(file, { force: true });
}

export async function startDev(options: DevOptions): Promise<DevCluster> {
  await checkPortsFree(options);
  const release = await claimDirectory(options.dir);
  const { binaries, controlPlane } = await startControlPlaneIn(options).catch(async (error: unknown) => {
    await release();
    throw error;
  });
  const cleanups: (() => Promise<void>)[] = [release, () => controlPlane.stop()];
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const admin = await createKubeClient(controlPlane.kubeconfigs.admin);
    cleanups.push(() => Promise.resolve(admin.close()));
    await installKubetx(admin, options.repoRoot);
    const binDir = await writeCommandWrappers(controlPlane.dir, binaries, options.repoRoot);
    const binder = new AbortController();
    cleanups.push(() => Promise.resolve(binder.abort()));
    void runEditorBinder(admin, options.logger, binder.signal);

    const seen = new Set<string>();
    const webhook = await startWebhookServer({
      kubeconfig: controlPlane.kubeconfigs.kubetx,
      tls: await ensureServingCertificate({
        ca: controlPlane.ca, outDir: path.join(controlPlane.dir, "pki"), name: "webhook", commonName: "kubetx-webhook",
        dnsNames: serviceDnsNames(KUBETX_SERVICE_ACCOUNT, KUBETX_NAMESPACE), ipAddresses: ["127.0.0.1"],
      }),
      host: "127.0.0.1",
      port: options.webhookPort,
      metricsPort: options.metricsPort,
      logger: options.logger,
      config: options.config,
      apiserverClients: controlPlane.apiserverClient,
      onReview: (_path, request: AdmissionRequest) => {
        // Only the readiness probes: dev runs for hours and sees every write.
        if (request.name?.startsWith(READY_PROBE_PREFIX)) seen.add(request.name);
      },
    });
    cleanups.push(() => webhook.close());
    for (const configuration of webhookConfigurations((p) => urlClientConfig(`https://127.0.0.1:${webhook.port}`, p, controlPlane.caData))) {
      await createOrReplace(admin, CONFIGURATION_PATHS[configuration.kind as keyof typeof CONFIGURATION_PATHS], configuration);
    }
    await proveWebhookServes(admin, seen);
    // Ready promises that alice's and bob's kubeconfigs work in the demo namespace.
    if (!(await editorsBound(admin, DEMO_NAMESPACE))) {
      throw new DevError(`kubetx dev: alice and bob could not edit namespace ${DEMO_NAMESPACE} within ${EDITORS_BOUND_TIMEOUT_MS / 1000} s; see logs/kube-controller-manager.log in the dev directory`);
    }
    return { controlPlane, binDir, webhookPort: webhook.port, metricsPort: webhook.metricsPort ?? options.metricsPort, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** What a cluster admin's `kubectl apply -k manifests/` would install, minus the Deployment. */
async function installKubetx(admin: KubeClient, repoRoot: string): Promise<void> {
  await bootstrapKubetxIdentity(admin);
  // A previous run's registration points at a webhook that is not listening
  // yet; with failurePolicy Fail it would refuse the installs below.
  for (const path of Object.values(CONFIGURATION_PATHS)) await admin.delete(`${path}/${WEBHOOK_NAME}`).catch(() => undefined);
  await installCrds(admin, path.join(repoRoot, "manifests", "crds"));
  await installUserRole(admin);
  await installDefaultPolicy(admin, path.join(repoRoot, "manifests", "policy"));
}

/**
 * DIR/bin/kubectl (the pinned version) and DIR/bin/kubectl-tx (this
 * checkout's plugin, bundled afresh, run on the project's Node 24), so that
 * `export PATH=DIR/bin:$PATH` gives a shell everything `kubectl tx` needs.
 * kubectl is a symbolic link, not a script: the name kubectl tx runs it
 * under (its argv[0]) must reach kubectl's User-Agent.
 */
async function writeCommandWrappers(dir: string, binaries: Binaries, repoRoot: string): Promise<string> {
  const binDir = path.join(dir, "bin");
  await mkdir(binDir, { recursive: true });
  const node = path.join(repoRoot, "node_modules", ".bin", "node");
  const kubectl = path.join(binDir, "kubectl");
  await rm(kubectl, { force: true });
  await symlink(binaries.kubectl, kubectl);
  await writeFile(path.join(binDir, "kubectl-tx"), pluginWrapper(node, await buildPluginBundle(repoRoot)), { mode: 0o755 });
  return binDir;
}

/** Writes a ConfigMap into the demo namespace until the webhook has seen the write. */
async function proveWebhookServes(admin: KubeClient, seen: ReadonlySet<string>): Promise<void> {
  await createOrReplace(admin, "/api/v1/namespaces", {
    apiVersion: "v1", kind: "Namespace", metadata: { name: DEMO_NAMESPACE, labels: { "kubetx.io/enabled": "true" } },
  });
  const deadline = Date.now() + READY_PROBE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    // A server-side dry run: judged by the webhook like a real write, but it
    // leaves no object, lock or transaction behind.
    const name = `${READY_PROBE_PREFIX}${randomBytes(4).toString("hex")}`;
    const collection = `/api/v1/namespaces/${DEMO_NAMESPACE}/configmaps`;
    await admin.create(collection, { apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { purpose: "kubetx dev readiness probe" } }, { query: { dryRun: "All" } });
    if (seen.has(name)) return;
    await sleep(READY_PROBE_INTERVAL_MS);
  }
  throw new DevError(`kubetx dev: writes to namespace ${DEMO_NAMESPACE} did not reach the webhook within ${READY_PROBE_TIMEOUT_MS / 1000} s; see logs/kube-apiserver.log in the dev directory`);
}
