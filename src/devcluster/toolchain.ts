/**
 * Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
 * kubectl from the project's Go module (controlplane/) into a cache outside
 * the repository, keyed by the pinned Kubernetes version and the module's
 * go.sum, and only when missing (see gobuild.ts).
 */
import path from "node:path";
import type { BuildOptions, GoBuildSpec } from "./gobuild.ts";
import { ensureGoBuild, requiredVersion } from "./gobuild.ts";

export type { BuildOptions } from "./gobuild.ts";
export { ToolchainError, defaultCacheDir } from "./gobuild.ts";

export interface Binaries {
  readonly version: string;
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly kubectl: string;
}

/**
 * The packages the Go module builds: etcd's main package is its module
 * root, so it comes out as `server`.
 */
const TARGETS = [
  { pkg: "go.etcd.io/etcd/server/v3", built: "server", out: "etcd" },
  { pkg: "k8s.io/kubernetes/cmd/kube-apiserver", built: "kube-apiserver", out: "kube-apiserver" },
  { pkg: "k8s.io/kubernetes/cmd/kube-controller-manager", built: "kube-controller-manager", out: "kube-controller-manager" },
  { pkg: "k8s.io/kubernetes/cmd/kube-scheduler", built: "kube-scheduler", out: "kube-scheduler" },
  { pkg: "k8s.io/kubernetes/cmd/kubectl", built: "kubectl", out: "kubectl" },
] as const;

/** The Kubernetes version go.mod pins, e.g. `v1.37.2`. */
export function pinnedVersion(moduleDir: string): Promise<string> {
  return requiredVersion(moduleDir, "k8s.io/kubernetes");
}

/** Returns the cached binaries, building them first if they are missing. */
export async function ensureBinaries(options: BuildOptions): Promise<Binaries> {
  const version = await pinnedVersion(options.moduleDir);
  const spec: GoBuildSpec = { kind: "controlplane", title: "the control plane", detail: `Kubernetes ${version}, etcd`, version, targets: TARGETS, ldflags: versionLdflags(version) };
  const dir = await ensureGoBuild(spec, options);
  return {
    version,
    etcd: path.join(dir, "etcd"),
    kubeApiserver: path.join(dir, "kube-apiserver"),
    kubeControllerManager: path.join(dir, "kube-controller-manager"),
    kubeScheduler: path.join(dir, "kube-scheduler"),
    kubectl: path.join(dir, "kubectl"),
  };
}

/** Stamps the binaries with the version, as Kubernetes' own build does. */
function versionLdflags(version: string): string {
  const [major, minor] = version.slice(1).split(".");
  const stamps = ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"].flatMap((pkg) => [
    `-X ${pkg}.gitVersion=${version}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ]);
  return ["-s", "-w", ...stamps].join(" ");
}
