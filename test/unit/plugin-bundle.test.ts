/**
 * The plugin as `kubetx dev`, the tests, the bench and the campaign install
 * it: one file built by rolldown from src/cli/kubectl-tx.ts, run through the
 * same kind of `kubectl-tx` wrapper, with nothing of the sources beside it.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPluginBundle, pluginBundlePath, pluginWrapper } from "../../src/devcluster/plugin-bundle.ts";
import { APPLY_HELP } from "../../src/cli/tx/help.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const exec = promisify(execFile);

describe("the plugin bundle", () => {
  let dir: string;
  let wrapper: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubectl-tx-bundle-"));
    // A copy far from the checkout: the bundle must need nothing beside it (no node_modules, no sources, no package.json).
    const alone = path.join(dir, "kubectl-tx.mjs");
    await copyFile(await buildPluginBundle(REPO), alone);
    wrapper = path.join(dir, "kubectl-tx");
    await writeFile(wrapper, pluginWrapper(process.execPath, alone), { mode: 0o755 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("builds once per process, into dist/ of the checkout", async () => {
    const [first, second] = [buildPluginBundle(REPO), buildPluginBundle(REPO)];
    expect(first).toBe(second);
    expect(await first).toBe(pluginBundlePath(REPO));
    expect(path.relative(REPO, await first)).toBe(path.join("dist", "kubectl-tx.mjs"));
    expect(await readFile(path.join(REPO, ".gitignore"), "utf8")).toMatch(/^dist\/$/m);
  });

  it("runs on its own: the version from package.json and the help text", async () => {
    const { version } = JSON.parse(await readFile(path.join(REPO, "package.json"), "utf8")) as { version: string };
    expect((await exec(wrapper, ["version", "--client"], { cwd: dir })).stdout).toBe(`plugin: ${version}\n`);
    const help = (await exec(wrapper, ["apply", "--help"], { cwd: dir })).stdout;
    expect(help).toContain(APPLY_HELP);
    expect(help).toBe((await exec(process.execPath, [path.join(REPO, "src", "cli", "kubectl-tx.ts"), "apply", "--help"])).stdout);
  });

  it("keeps its compiled code in Node's compile cache in the temp dir, unless NODE_DISABLE_COMPILE_CACHE=1", async () => {
    const cached = async (extraEnv: Record<string, string>): Promise<string[]> => {
      const temp = await mkdtemp(path.join(dir, "tmp-"));
      const { NODE_DISABLE_COMPILE_CACHE: _, NODE_COMPILE_CACHE: __, ...env } = process.env;
      await exec(wrapper, ["--help"], { cwd: dir, env: { ...env, TMPDIR: temp, ...extraEnv } });
      return readdir(path.join(temp, "node-compile-cache"), { recursive: true }).catch(() => []);
    };
    // The version's folder, and in it the bundle's compiled code (the bundle's own enableCompileCache alone makes only the folder).
    expect((await cached({})).length).toBeGreaterThan(1);
    expect(await cached({ NODE_DISABLE_COMPILE_CACHE: "1" })).toEqual([]);
  });

  it("is minified, and takes only KubeConfig of @kubernetes/client-node: not its generated API nor undici", async () => {
    const bundle = await readFile(pluginBundlePath(REPO), "utf8");
    // With the generated API and undici it was 1.7 MB.
    expect(bundle.length).toBeLessThan(700_000);
    expect(bundle).not.toContain("CoreV1Api");
    expect(bundle).toContain("KubeConfig");
  });

  it("still loads a kubeconfig with that KubeConfig and calls the server it names (the real-cluster tests of kubectl tx run this bundle)", async () => {
    const kubeconfig = path.join(dir, "kubeconfig");
    await writeFile(kubeconfig, [
      "apiVersion: v1", "kind: Config", "current-context: c",
      "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]",
      "users: [{name: u, user: {token: bundled-token}}]",
      "contexts: [{name: c, context: {cluster: k, user: u, namespace: team}}]",
    ].join("\n"));
    // kubectl tx list asks the apiserver at port 1, which refuses: the error names it, and no module left out was reached.
    const failed = await exec(wrapper, ["list"], { cwd: dir, env: { ...process.env, KUBECONFIG: kubeconfig } }).then(() => undefined, (error: { code: number; stderr: string }) => error);
    expect(failed?.stderr).toContain("127.0.0.1:1");
    expect(failed?.stderr).not.toContain("left out of the plugin's bundle");
  });

  it("fails as the sources do: a usage error names the flag and exits 2", async () => {
    const failed = await exec(wrapper, ["apply", "--no-such-flag"], { cwd: dir }).then(() => undefined, (error: { code: number; stderr: string }) => error);
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain("--no-such-flag");
  });
});
