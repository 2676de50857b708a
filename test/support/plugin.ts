/** Runs `kubectl tx` through kubectl's own plugin lookup: a `kubectl-tx` wrapper first on PATH, running the plugin's bundle as `kubetx dev` does. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildPluginBundle, pluginWrapper } from "../../src/devcluster/plugin-bundle.ts";
import type { CommandResult, User } from "./cluster.ts";
import { cluster, run } from "./cluster.ts";

const REPO = path.resolve(import.meta.dirname, "../..");

export interface Plugin {
  /** `kubectl tx ARGS` as `user` (through KUBECONFIG). */
  tx(args: readonly string[], user?: User): Promise<CommandResult>;
  remove(): Promise<void>;
}

export async function installPlugin(): Promise<Plugin> {
  const bin = await mkdtemp(path.join(tmpdir(), "kubectl-tx-bin-"));
  await writeFile(path.join(bin, "kubectl-tx"), pluginWrapper(path.join(REPO, "node_modules", ".bin", "node"), await buildPluginBundle(REPO)), { mode: 0o755 });
  const { KUBECTL: _ignored, ...rest } = process.env;
  const base = { ...rest, PATH: [bin, cluster().binariesDir, process.env.PATH].join(path.delimiter) };
  return {
    tx: (args, user = "alice") => run(cluster().kubectl, ["tx", ...args], { env: { ...base, KUBECONFIG: cluster().kubeconfigs[user] } }),
    remove: () => rm(bin, { recursive: true, force: true }),
  };
}
