/**
 * `kubectl tx` as one file. Run from its sources, Node loads some two
 * thousand ES modules of the plugin and of @kubernetes/client-node before
 * the plugin does anything (0.55 s on a 2-core machine); bundled by
 * rolldown into one file it starts in 0.15 s, and every `kubectl tx apply`
 * is that much shorter. Of @kubernetes/client-node it takes only the
 * module of KubeConfig (the one thing kube/client.ts uses), without the
 * generated API and the undici fetch agent that module names for
 * makeApiClient and fetch, which the plugin never calls (it speaks
 * node:https): 0.42 MB instead of 1.7, and `kubectl tx --help` started in
 * a median 225 ms instead of 317 (7 runs each, bare Node 88 ms).
 * What installs the plugin from this checkout
 * (`kubetx dev`, the tests, the bench, the fault campaign) builds the bundle
 * first, every time, so it never runs older code than the sources; a build
 * takes one to two seconds.
 */
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
// Types only: rolldown itself is loaded where a checkout builds the plugin (bundle below).
import type { Plugin } from "rolldown";

export const PLUGIN_SOURCE = path.join("src", "cli", "kubectl-tx.ts");

/** Where the bundle goes: `dist/` of the checkout, which git ignores. */
export function pluginBundlePath(repoRoot: string): string {
  return path.join(repoRoot, "dist", "kubectl-tx.mjs");
}

/** One build per checkout and process, however many callers ask. */
const builds = new Map<string, Promise<string>>();

/** Builds the bundle (once per process) and returns its path. */
export function buildPluginBundle(repoRoot: string): Promise<string> {
  const started = builds.get(repoRoot) ?? bundle(repoRoot);
  builds.set(repoRoot, started);
  // A failed build is tried again by the next caller.
  started.catch(() => builds.delete(repoRoot));
  return started;
}

async function bundle(repoRoot: string): Promise<string> {
  // rolldown is a dev dependency: loaded only where a checkout builds the plugin, never by the webhook server.
  const { build } = await import("rolldown");
  const file = pluginBundlePath(repoRoot);
  await mkdir(path.dirname(file), { recursive: true });
  // Written beside and renamed into place: a second checkout user (tests while `kubetx dev` runs) never runs half a file.
  const partial = `${file}.${process.pid}.partial`;
  try {
    await build({
      input: path.join(repoRoot, PLUGIN_SOURCE),
      cwd: repoRoot,
      platform: "node",
      logLevel: "warn",
      write: true,
      plugins: [kubeConfigOnly(repoRoot)],
      // Minified (names kept, for messages that name a class): about half the size, which Node reads and compiles faster.
      output: { file: partial, format: "esm", codeSplitting: false, minify: true, keepNames: true },
    });
    await rename(partial, file);
  } catch (error) {
    await rm(partial, { force: true });
    throw new Error(`kubetx: could not bundle ${PLUGIN_SOURCE} with rolldown (run npm ci first): ${(error as Error).message}`, { cause: error });
  }
  return file;
}

/** What stands in for a module the plugin's KubeConfig names but never reaches; it says so if it ever is. */
const LEFT_OUT = (what: string): string =>
  `const missing = () => { throw new Error("kubectl tx: ${what} is left out of the plugin's bundle (devcluster/plugin-bundle.ts); kubectl tx reaches the apiserver through node:https"); };\n`;
const STUBS: Readonly<Record<string, string>> = {
  "\0kubectl-tx:undici": `${LEFT_OUT("undici (client-node's fetch agent)")}export class Agent { constructor() { missing(); } }\nexport class ProxyAgent { constructor() { missing(); } }\n`,
  "\0kubectl-tx:gen": `${LEFT_OUT("client-node's generated API")}export function createConfiguration() { missing(); }\nexport class ServerConfiguration { constructor() { missing(); } }\n`,
};

/** @kubernetes/client-node as its KubeConfig module, with the imports only makeApiClient and fetch use left out. */
function kubeConfigOnly(repoRoot: string): Plugin {
  const config = path.join(repoRoot, "node_modules", "@kubernetes", "client-node", "dist", "config.js");
  return {
    name: "kubectl-tx-kubeconfig-only",
    resolveId(source: string, importer: string | undefined): string | undefined {
      if (source === "@kubernetes/client-node") return config;
      if (importer !== config) return undefined;
      if (source === "undici") return "\0kubectl-tx:undici";
      if (source === "./gen/index.js") return "\0kubectl-tx:gen";
      return undefined;
    },
    load: (id: string): string | undefined => STUBS[id],
  };
}

/**
 * Turns Node's compile cache on before the bundle is loaded (`--import`
 * runs first): the bundle's own enableCompileCache comes too late for the
 * one module it is. Same cache and switch as from the sources: the temp
 * dir, NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
const ENABLE_COMPILE_CACHE = `data:text/javascript,import{enableCompileCache}from"node:module";enableCompileCache()`;

/** The `kubectl-tx` a PATH directory holds: runs the bundle on the given Node, compiled code cached between runs. */
export function pluginWrapper(node: string, bundleFile: string): string {
  return `#!/bin/sh\nexec '${node}' --import '${ENABLE_COMPILE_CACHE}' '${bundleFile}' "$@"\n`;
}
