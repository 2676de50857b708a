/**
 * Builds the helm command from the project's Go module (tools/helm/), the
 * same way the control plane is built: once, into the cache outside the
 * repository, keyed by the pinned Helm version and the module's go.sum.
 * The chart's tests run it (lint, template, install, upgrade, uninstall).
 */
import path from "node:path";
import type { BuildOptions, GoBuildSpec } from "./gobuild.ts";
import { ensureGoBuild, requiredVersion } from "./gobuild.ts";

export const HELM_MODULE = "helm.sh/helm/v4";

export interface HelmBinary {
  readonly version: string;
  readonly helm: string;
}

/** The Helm version go.mod pins, e.g. `v4.3.2`. */
export function pinnedHelmVersion(moduleDir: string): Promise<string> {
  return requiredVersion(moduleDir, HELM_MODULE);
}

/** Returns the cached helm, building it first if it is missing. */
export async function ensureHelm(options: BuildOptions): Promise<HelmBinary> {
  const version = await pinnedHelmVersion(options.moduleDir);
  const spec: GoBuildSpec = {
    kind: "helm",
    title: "helm",
    detail: `Helm ${version}`,
    version,
    targets: [{ pkg: `${HELM_MODULE}/cmd/helm`, built: "helm", out: "helm" }],
    // `helm version` says what Helm's own release build would say.
    ldflags: `-s -w -X ${HELM_MODULE}/internal/version.version=${version} -X ${HELM_MODULE}/internal/version.gitTreeState=clean`,
  };
  return { version, helm: path.join(await ensureGoBuild(spec, options), "helm") };
}
