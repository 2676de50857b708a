/**
 * Builds the chart's test tools (helm, certmanager-check) once, like the
 * control plane, and hands their paths to the chart's tests. `npm test`
 * has built them already; then this only finds them in the cache.
 */
import path from "node:path";
import type { TestProject } from "vitest/node";
import { ensureChartTools } from "../../src/devcluster/helm.ts";
import { defaultCacheDir } from "../../src/devcluster/toolchain.ts";

declare module "vitest" {
  export interface ProvidedContext {
    helm: string;
    certManagerCheck: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const repo = path.resolve(import.meta.dirname, "../..");
  const built = await ensureChartTools({
    helmModuleDir: path.join(repo, "tools", "helm"),
    certManagerModuleDir: path.join(repo, "tools", "certmanager-check"),
    cacheDir: defaultCacheDir(process.env),
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  project.provide("helm", built.helm);
  project.provide("certManagerCheck", built.certManagerCheck);
}
