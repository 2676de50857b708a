/**
 * Builds helm (tools/helm/) once, like the control plane, and hands its
 * path to the chart's tests. `npm test` has built it already; then this
 * only finds it in the cache.
 */
import path from "node:path";
import type { TestProject } from "vitest/node";
import { ensureHelm } from "../../src/devcluster/helm.ts";
import { defaultCacheDir } from "../../src/devcluster/toolchain.ts";

declare module "vitest" {
  export interface ProvidedContext {
    helm: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const repo = path.resolve(import.meta.dirname, "../..");
  const built = await ensureHelm({
    moduleDir: path.join(repo, "tools", "helm"),
    cacheDir: defaultCacheDir(process.env),
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  project.provide("helm", built.helm);
}
