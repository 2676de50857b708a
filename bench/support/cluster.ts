/**
 * The benchmark's own control plane (etcd, kube-apiserver, controller
 * manager, scheduler) in a temp dir, set up the way
 * test/support/global-setup.ts sets up the tests' one (kubetx identity,
 * CRDs, the user role, the editor binder), without vitest's inject.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { bootstrapKubetxIdentity, editorsBound, runEditorBinder } from "../../src/devcluster/bootstrap.ts";
import { ensureServingCertificate } from "../../src/devcluster/certs.ts";
import type { ControlPlane } from "../../src/devcluster/controlplane.ts";
import { startControlPlane } from "../../src/devcluster/controlplane.ts";
import { installCrds, installUserRole } from "../../src/devcluster/install.ts";
import type { Binaries } from "../../src/devcluster/toolchain.ts";
import { defaultCacheDir, ensureBinaries } from "../../src/devcluster/toolchain.ts";
import type { KubeClient } from "../../src/kube/index.ts";
import { createKubeClient } from "../../src/kube/index.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import type { Cleanup } from "./cleanup.ts";
import { filesystemName, inMemory } from "./filesystems.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
/** Where the fsync mode puts the control plane when the temp dir is in memory: on the repo's disk, git-ignored. */
const DISK_FALLBACK = path.join(REPO, ".kubetx", "bench");

export interface BenchClusterOptions {
  /** etcd syncs its writes to disk (no --unsafe-no-fsync), its data dir never on tmpfs. */
  readonly fsync: boolean;
}

/** Where etcd keeps its data and whether it syncs it: for the results. */
export interface EtcdStorage {
  readonly fsync: boolean;
  readonly dataDir: string;
  /** The data dir's filesystem type (statfs), e.g. ext4 or tmpfs. */
  readonly filesystem: string;
}

export interface BenchCluster {
  readonly dir: string;
  readonly controlPlane: ControlPlane;
  readonly binaries: Binaries;
  readonly admin: KubeClient;
  readonly alice: KubeClient;
  readonly webhookTls: { certFile: string; keyFile: string };
  readonly etcd: EtcdStorage;
  /** kubectl's discovery and HTTP cache, shared by every kubectl the bench runs. */
  readonly kubectlCacheDir: string;
  /** Runs the real kubectl as alice (or admin), with `input` on stdin; resolves with the exit code and output, never rejects. */
  kubectl(args: readonly string[], user?: "alice" | "admin", input?: string): Promise<CommandResult>;
  /** Creates a namespace and waits until alice may edit in it. */
  createNamespace(name: string, labels?: Record<string, string>): Promise<void>;
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts everything; every step registers its undo on `cleanup` before the next one starts. */
export async function startBenchCluster(cleanup: Cleanup, progress: (line: string) => void, options: BenchClusterOptions = { fsync: false }): Promise<BenchCluster> {
  const binaries = await ensureBinaries({ moduleDir: path.join(REPO, "controlplane"), cacheDir: defaultCacheDir(process.env), onProgress: progress });
  const dir = await mkdtemp(path.join(await parentDir(options.fsync), "kubetx-bench-"));
  cleanup.push("remove temp dir", () => rm(dir, { recursive: true, force: true }));
  // kubetx's reads logged too: the scenarios count every request kubetx makes per member from the audit log.
  const controlPlane = await startControlPlane({ dir, binaries, etcdFsync: options.fsync, auditKubetxReads: true });
  cleanup.push("stop control plane", () => controlPlane.stop());
  // etcdArgs keeps etcd's data in DIR/etcd.
  const etcd: EtcdStorage = { fsync: options.fsync, dataDir: path.join(dir, "etcd"), filesystem: filesystemName((await statfs(dir)).type) };
  progress(`control plane up at ${controlPlane.server} (Kubernetes ${binaries.version}), dir ${dir}, etcd fsync ${etcd.fsync ? "on" : "off"} on ${etcd.filesystem}`);
  const admin = await createKubeClient(controlPlane.kubeconfigs.admin);
  cleanup.push("close admin client", () => admin.close());
  const alice = await createKubeClient(controlPlane.kubeconfigs.alice);
  cleanup.push("close alice client", () => alice.close());
  await bootstrapKubetxIdentity(admin);
  await installCrds(admin, path.join(REPO, "manifests", "crds"));
  await installUserRole(admin);
  const binder = new AbortController();
  const binding = runEditorBinder(admin, silentLogger(), binder.signal);
  cleanup.push("stop editor binder", async () => {
    binder.abort();
    await binding;
  });
  const webhookTls = await ensureServingCertificate({
    ca: controlPlane.ca, outDir: path.join(dir, "pki"), name: "bench-webhook",
    commonName: "kubetx-bench-webhook", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"],
  });
  const kubectlCache = path.join(dir, "kubectl-cache");
  return {
    dir, controlPlane, binaries, admin, alice, webhookTls, etcd, kubectlCacheDir: kubectlCache,
    kubectl: (args, user = "alice", input) => run(binaries.kubectl, ["--kubeconfig", controlPlane.kubeconfigs[user], "--cache-dir", kubectlCache, ...args], { input }),
    createNamespace: (name, labels = {}) => createNamespace(admin, name, labels),
  };
}

/**
 * The temp dir, or with fsync on a directory on disk if the temp dir is in
 * memory: fsync on tmpfs costs nothing, and would measure nothing.
 */
async function parentDir(fsync: boolean): Promise<string> {
  if (!fsync || !inMemory((await statfs(tmpdir())).type)) return tmpdir();
  await mkdir(DISK_FALLBACK, { recursive: true });
  return DISK_FALLBACK;
}

/** Runs a command (`env` in place of this process's environment); resolves with the exit code and output, never rejects. */
export function run(command: string, args: readonly string[], options: { input?: string | undefined; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { maxBuffer: 64 * 1024 * 1024, ...(options.env ? { env: options.env } : {}) }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

async function createNamespace(admin: KubeClient, name: string, labels: Record<string, string>): Promise<void> {
  await admin.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
  if (!(await editorsBound(admin, name))) throw new Error(`bench: alice was never bound as editor in namespace ${name}`);
}
