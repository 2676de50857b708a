/**
 * Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
 * kubectl from the project's Go module
 * (controlplane/) into a cache outside the repository, keyed by the pinned
 * Kubernetes version and the module's go.sum, and only when missing.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { exists } from "./files.ts";

export interface Binaries {
  readonly version: string;
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly kubectl: string;
}

export interface BuildOptions {
  /** The Go module that pins the control plane (controlplane/ in the repo). */
  readonly moduleDir: string;
  /** Where builds are kept; one subdirectory per version. */
  readonly cacheDir: string;
  /** Called with one human-readable line at a time during a build. */
  readonly onProgress?: (line: string) => void;
  readonly goBinary?: string;
}

/**
 * The packages the Go module builds: `built` is the file name go build
 * gives each (etcd's main package is its module root, so it comes out as
 * `server`), `out` the name it is kept under.
 */
const TARGETS = [
  { pkg: "go.etcd.io/etcd/server/v3", built: "server", out: "etcd" },
  { pkg: "k8s.io/kubernetes/cmd/kube-apiserver", built: "kube-apiserver", out: "kube-apiserver" },
  { pkg: "k8s.io/kubernetes/cmd/kube-controller-manager", built: "kube-controller-manager", out: "kube-controller-manager" },
  { pkg: "k8s.io/kubernetes/cmd/kube-scheduler", built: "kube-scheduler", out: "kube-scheduler" },
  { pkg: "k8s.io/kubernetes/cmd/kubectl", built: "kubectl", out: "kubectl" },
] as const;

/** How often a long build reports progress. */
const PROGRESS_INTERVAL_MS = 10_000;
/** Lines of compiler output kept to explain a failed build. */
const FAILURE_TAIL_LINES = 15;
/** A marker written last, so a build killed halfway is never mistaken for a complete one. */
const COMPLETE_MARKER = ".complete";

export class ToolchainError extends Error {
  override readonly name = "ToolchainError";
}

/** `$KUBETX_CACHE_DIR`, else the XDG cache, else ~/.cache; resolved by the caller's environment. */
export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.KUBETX_CACHE_DIR) return env.KUBETX_CACHE_DIR;
  return path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), ".cache"), "kubetx");
}

/**
 * A `k8s.io/kubernetes vX.Y.Z` requirement, in a require block or on a
 * one-line `require`, with or without a trailing comment; pre-releases do
 * not count.
 */
const KUBERNETES_REQUIREMENT = /^[ \t]*(?:require[ \t]+)?k8s\.io\/kubernetes[ \t]+(v\d+\.\d+\.\d+)[ \t]*(?:\/\/.*)?$/m;

/** The Kubernetes version go.mod pins, e.g. `v1.37.2`. */
export async function pinnedVersion(moduleDir: string): Promise<string> {
  const goMod = await readFile(path.join(moduleDir, "go.mod"), "utf8");
  const match = KUBERNETES_REQUIREMENT.exec(goMod);
  if (!match?.[1]) throw new ToolchainError(`kubetx: ${moduleDir}/go.mod does not require k8s.io/kubernetes at a release version`);
  return match[1];
}

/** Returns the cached binaries, building them first if they are missing. */
export async function ensureBinaries(options: BuildOptions): Promise<Binaries> {
  const version = await pinnedVersion(options.moduleDir);
  const key = `${version}-${await moduleDigest(options.moduleDir)}`;
  const dir = path.join(options.cacheDir, "controlplane", key);
  const binaries = binariesIn(dir, version);
  if (await exists(path.join(dir, COMPLETE_MARKER))) return binaries;

  await ensureWritable(options.cacheDir);
  await removeAbandonedBuilds(path.dirname(dir));
  const staging = `${dir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const progress = options.onProgress ?? ((): void => undefined);
  progress(`building the control plane (Kubernetes ${version}, etcd) into ${dir}; the first build takes several minutes`);
  const started = Date.now();
  try {
    await goBuild(options, version, staging);
    for (const target of TARGETS) await rename(path.join(staging, target.built), path.join(staging, target.out));
    await writeFile(path.join(staging, COMPLETE_MARKER), new Date().toISOString());
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  progress(`control plane built in ${Math.round((Date.now() - started) / 1000)} s`);
  return binaries;
}

function binariesIn(dir: string, version: string): Binaries {
  return {
    version,
    etcd: path.join(dir, "etcd"),
    kubeApiserver: path.join(dir, "kube-apiserver"),
    kubeControllerManager: path.join(dir, "kube-controller-manager"),
    kubeScheduler: path.join(dir, "kube-scheduler"),
    kubectl: path.join(dir, "kubectl"),
  };
}

/**
 * Removes the staging directories of builds whose process died before it
 * could clean up (Ctrl-C during the first build kills kubetx before its
 * error handling runs). A build still running elsewhere keeps its own.
 */
async function removeAbandonedBuilds(root: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(/\.partial-(\d+)$/.exec(entry)?.[1]);
    if (pid > 0 && !processAlive(pid)) await rm(path.join(root, entry), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function moduleDigest(moduleDir: string): Promise<string> {
  const hash = createHash("sha256");
  for (const file of ["go.mod", "go.sum"]) hash.update(await readFile(path.join(moduleDir, file)));
  return hash.digest("hex").slice(0, 12);
}


async function ensureWritable(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    const probe = path.join(dir, `.write-probe-${process.pid}`);
    await writeFile(probe, "");
    await rm(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ToolchainError(
      `kubetx: cannot write the build cache ${dir} (${code}); set KUBETX_CACHE_DIR to a writable directory`,
      { cause: error },
    );
  }
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

async function goBuild(options: BuildOptions, version: string, outDir: string): Promise<void> {
  const go = options.goBinary ?? "go";
  const args = ["build", "-v", "-trimpath", "-ldflags", versionLdflags(version), "-o", `${outDir}/`, ...TARGETS.map((t) => t.pkg)];
  // Under pdeathsig like the servers: a build must not outlive a killed kubetx.
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", go, ...args], { cwd: options.moduleDir, stdio: ["ignore", "pipe", "pipe"] });
  const tail: string[] = [];
  let compiled = 0;
  const started = Date.now();
  const lines = createInterface({ input: child.stderr });
  lines.on("line", (line) => {
    if (/^[\w.-]+(\/[\w.~-]+)*$/.test(line)) compiled += 1;
    tail.push(line);
    if (tail.length > FAILURE_TAIL_LINES) tail.shift();
  });
  child.stdout.resume();
  const ticker = setInterval(() => {
    const seconds = Math.round((Date.now() - started) / 1000);
    options.onProgress?.(`  ... ${compiled} packages compiled, ${seconds} s`);
  }, PROGRESS_INTERVAL_MS);
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (status) => resolve(status ?? 1));
    });
    // setpriv reports a command it cannot run with exit 127.
    if (code === 127 && tail.some((line) => line.includes("No such file"))) {
      throw new ToolchainError(`kubetx: '${go}' not found; install Go 1.26 or later and put it on PATH`);
    }
    if (code !== 0) {
      throw new ToolchainError(
        `kubetx: building the control plane failed (go build exit ${code}); check that Go 1.26 or later is on PATH and the Go module proxy is reachable. Last output:\n${tail.join("\n")}`,
      );
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new ToolchainError(`kubetx: '${go}' not found; install Go 1.26 or later and put it on PATH`, { cause: error });
    }
    throw error;
  } finally {
    clearInterval(ticker);
  }
}
