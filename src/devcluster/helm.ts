/**
 * Builds the chart's test tools from the project's own Go modules, the same
 * way the control plane is built: once, into the cache outside the
 * repository, keyed by the pinned version and the module's go.sum.
 * - helm (tools/helm/): lint, template, install, upgrade, uninstall.
 * - certmanager-check (tools/certmanager-check/): decodes the cert-manager
 *   objects kubetx ships strictly into cert-manager's own API types, since
 *   cert-manager does not run in the test cluster.
 */
import path from "node:path";
import type { BuildOptions, GoBuildSpec } from "./gobuild.ts";
import { ensureGoBuild, requiredVersion } from "./gobuild.ts";

export const HELM_MODULE = "helm.sh/helm/v4";
const CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager";

export interface ChartTools {
  readonly helmVersion: string;
  readonly helm: string;
  readonly certManagerVersion: string;
  readonly certManagerCheck: string;
}

export interface ChartToolsOptions extends Omit<BuildOptions, "moduleDir"> {
  /** tools/helm/ */
  readonly helmModuleDir: string;
  /** tools/certmanager-check/ */
  readonly certManagerModuleDir: string;
}

/** The Helm version go.mod pins, e.g. `v4.3.2`. */
export function pinnedHelmVersion(moduleDir: string): Promise<string> {
  return requiredVersion(moduleDir, HELM_MODULE);
}

async function helmSpec(moduleDir: string): Promise<GoBuildSpec> {
  const version = await pinnedHelmVersion(moduleDir);
  return {
    kind: "helm",
    title: "helm",
    detail: `Helm ${version}`,
    version,
    targets: [{ pkg: `${HELM_MODULE}/cmd/helm`, built: "helm", out: "helm" }],
    // `helm version` says what Helm's own release build would say.
    ldflags: `-s -w -X ${HELM_MODULE}/internal/version.version=${version} -X ${HELM_MODULE}/internal/version.gitTreeState=clean`,
  };
}

async function certManagerCheckSpec(moduleDir: string): Promise<GoBuildSpec> {
  const version = await requiredVersion(moduleDir, CERT_MANAGER_MODULE);
  return {
    kind: "certmanager-check",
    title: "certmanager-check",
    detail: `cert-manager ${version} API types`,
    version,
    targets: [{ pkg: "kubetx.io/tools/certmanager-check", built: "certmanager-check", out: "certmanager-check" }],
    ldflags: "-s -w",
  };
}

/** Returns the cached tools, building each first if it is missing. */
export async function ensureChartTools(options: ChartToolsOptions): Promise<ChartTools> {
  const { helmModuleDir, certManagerModuleDir, ...common } = options;
  const helm = await helmSpec(helmModuleDir);
  const certManager = await certManagerCheckSpec(certManagerModuleDir);
  return {
    helmVersion: helm.version,
    helm: path.join(await ensureGoBuild(helm, { ...common, moduleDir: helmModuleDir }), "helm"),
    certManagerVersion: certManager.version,
    certManagerCheck: path.join(await ensureGoBuild(certManager, { ...common, moduleDir: certManagerModuleDir }), "certmanager-check"),
  };
}
