/**
 * `kubectl tx` as a user runs it, as test/support/plugin.ts sets it up: the
 * real kubectl finds a `kubectl-tx` wrapper first on PATH, the wrapper runs
 * the plugin's bundle (src/devcluster/plugin-bundle.ts) with this node, and the plugin runs the same kubectl,
 * found on PATH, with the bench's kubectl cache.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { buildPluginBundle, pluginWrapper } from "../../src/devcluster/plugin-bundle.ts";
import type { BenchCluster, CommandResult } from "./cluster.ts";
import { REPO, run } from "./cluster.ts";

export interface BenchPlugin {
  /** `kubectl tx apply -f FILE` as alice. */
  apply(file: string): Promise<CommandResult>;
}

/** Writes the wrapper into the cluster's temp dir (removed with it). */
export async function installPlugin(cluster: BenchCluster): Promise<BenchPlugin> {
  const bin = path.join(cluster.dir, "plugin-bin");
  await mkdir(bin, { recursive: true });
  // process.execPath: the project's node, which runs this bench.
  await writeFile(path.join(bin, "kubectl-tx"), pluginWrapper(process.execPath, await buildPluginBundle(REPO)), { mode: 0o755 });
  const { KUBECTL: _ignored, ...rest } = process.env;
  const env: NodeJS.ProcessEnv = {
    ...rest,
    PATH: [bin, path.dirname(cluster.binaries.kubectl), process.env.PATH].join(path.delimiter),
    // A plugin is found only when its name comes before any flag, so the
    // kubeconfig and cache dir go through the environment, for both kubectls.
    KUBECONFIG: cluster.controlPlane.kubeconfigs.alice,
    KUBECACHEDIR: cluster.kubectlCacheDir,
  };
  return { apply: (file) => run(cluster.binaries.kubectl, ["tx", "apply", "-f", file], { env }) };
}

/** The id kubectl tx announced on stderr (`applying N objects as transaction t-xxxxxxxx`). */
export function announcedTransaction(stderr: string): string | undefined {
  return /as transaction (t-[0-9a-f]{8})/.exec(stderr)?.[1];
}
