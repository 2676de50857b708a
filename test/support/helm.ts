/** Runs the helm that test/support/helm-setup.ts built, and renders the chart and the kustomization. */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { inject } from "vitest";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../src/kube/index.ts";
import type { CommandResult } from "./cluster.ts";
import { cluster, run } from "./cluster.ts";
import "./helm-setup.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const CHART = path.join(REPO, "charts", "kubetx");
export const RELEASE = "kubetx";
export const NAMESPACE = "kubetx-system";

let helmHome: Promise<string> | undefined;

/** helm as the cluster's admin, with its own config, cache and data directories (never the user's). */
export async function helm(args: readonly string[]): Promise<CommandResult> {
  helmHome ??= mkdtemp(path.join(tmpdir(), "kubetx-helm-"));
  const home = await helmHome;
  const env = {
    ...process.env,
    KUBECONFIG: cluster().kubeconfigs.admin,
    HELM_CACHE_HOME: path.join(home, "cache"),
    HELM_CONFIG_HOME: path.join(home, "config"),
    HELM_DATA_HOME: path.join(home, "data"),
  };
  const result = await run(inject("helm"), args, { env });
  return { ...result, stderr: withoutWatchCancelNotes(result.stderr) };
}

/**
 * client-go's informational line when helm cancels its own watch at the
 * end of a wait (`I1202 16:00:29.663145 6237 reflector.go:664] "Warning:
 * watch ended with error" ... context canceled`): timing noise of helm's,
 * not a warning about the release. Every other line stays, so an empty
 * stderr still means helm said nothing.
 */
function withoutWatchCancelNotes(stderr: string): string {
  const note = /^I\d{4} [\d:.]+\s+\d+ reflector\.go:\d+\] "Warning: watch ended with error" .*context canceled.*$/;
  return stderr.split("\n").filter((line) => !note.test(line)).join("\n");
}

export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as KubeObject | null).filter((o): o is KubeObject => o !== null);
}

/** `helm template` of the chart in kubetx-system, with `--set` pairs. */
export async function renderChart(set: Readonly<Record<string, string>> = {}, extra: readonly string[] = []): Promise<KubeObject[]> {
  const sets = Object.entries(set).flatMap(([key, value]) => ["--set", `${key}=${value}`]);
  const result = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, ...sets, ...extra]);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseObjects(result.stdout);
}

/** certmanager-check (tools/certmanager-check/) on YAML documents: strict decoding into cert-manager's own API types. */
export function certManagerCheck(yaml: string): Promise<CommandResult> {
  return run(inject("certManagerCheck"), [], { input: yaml });
}

/** `kubectl kustomize DIR` with the kubectl built from the pinned Kubernetes version. */
export async function kustomize(dir: string): Promise<KubeObject[]> {
  const result = await run(cluster().kubectl, ["kustomize", dir]);
  if (result.code !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr}`);
  return parseObjects(result.stdout);
}

export function objectKey(o: KubeObject): string {
  return `${o.kind ?? ""}/${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
}
