/**
 * Starts one real control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler) for the whole test run and stops
 * it afterwards, also when tests fail. If the run itself is killed, the
 * processes die with it (see src/devcluster/processes.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { bootstrapKubetxIdentity, runEditorBinder } from "../../src/devcluster/bootstrap.ts";
import { startControlPlane } from "../../src/devcluster/controlplane.ts";
import { freePort } from "../../src/devcluster/ports.ts";
import { AUDIT_PATH } from "../../src/server/app.ts";
import { AUTHORIZE_PATH } from "../../src/admission/record-access.ts";
import { installCrds, installUserRole } from "../../src/devcluster/install.ts";
import { defaultCacheDir, ensureBinaries } from "../../src/devcluster/toolchain.ts";
import { createKubeClient } from "../../src/kube/index.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import type { ClusterInfo } from "./cluster.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const repo = path.resolve(import.meta.dirname, "../..");
  const binaries = await ensureBinaries({
    moduleDir: path.join(repo, "controlplane"),
    cacheDir: defaultCacheDir(process.env),
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  const dir = await mkdtemp(path.join(tmpdir(), "kubetx-test-"));
  // The apiserver's audit webhook backend reports to whichever test engine listens on this port (useEngine's).
  const sinkPort = await freePort();
  // The same port answers the apiserver's authorization webhook (users listing their own transactions).
  const controlPlane = await startControlPlane({
    dir, binaries, restartApiserver: true,
    auditSinkUrl: `https://127.0.0.1:${sinkPort}${AUDIT_PATH}`, authorizationWebhookUrl: `https://127.0.0.1:${sinkPort}${AUTHORIZE_PATH}`,
  });
  const admin = await createKubeClient(controlPlane.kubeconfigs.admin);
  const binder = new AbortController();
  try {
    await bootstrapKubetxIdentity(admin);
    await installCrds(admin, path.join(repo, "manifests", "crds"));
    await installUserRole(admin);
    void runEditorBinder(admin, silentLogger(), binder.signal);
  } catch (error) {
    await controlPlane.stop();
    throw error;
  }
  const info: ClusterInfo = {
    dir,
    server: controlPlane.server,
    caData: controlPlane.caData,
    caFile: controlPlane.ca.certFile,
    caKeyFile: controlPlane.ca.keyFile,
    kubeconfigs: controlPlane.kubeconfigs,
    auditLog: controlPlane.auditLog,
    kubectl: binaries.kubectl,
    binariesDir: path.dirname(binaries.kubectl),
    auditSinkPort: sinkPort,
    apiserverClient: controlPlane.apiserverClient,
    apiserverClientCertificate: controlPlane.apiserverClientCertificate,
  };
  project.provide("cluster", info);
  return async () => {
    binder.abort();
    admin.close();
    await controlPlane.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
