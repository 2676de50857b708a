/**
 * Builds commands from one of the project's small Go modules (controlplane/,
 * tools/helm/, tools/certmanager-check/) into a cache outside the
 * repository, keyed by the pinned version and the module's go.mod and
 * go.sum, and only when missing. A build goes to a staging directory and
 * is renamed into place with a marker written last, so a build killed
 * halfway is never taken for a complete one.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { exists } from "./files.ts";

/** One package the module builds: `built` is the file name go build gives it, `out` the name it is kept under. */
export interface GoTarget {
  readonly pkg: string;
  readonly built: string;
  readonly out: string;
}

/** What to build, and how to name it in the cache and in messages. */
export interface GoBuildSpec {
  /** The cache subdirectory: `<cacheDir>/<kind>/<version>-<digest>/`. */
  readonly kind: string;
  /** How progress and errors name the build, e.g. "the control plane". */
  readonly title: string;
  /** Said once when a build starts, e.g. "Kubernetes v1.37.2, etcd". */
  readonly detail: string;
  readonly version: string;
  readonly targets: readonly GoTarget[];
  readonly ldflags: string;
}

export interface BuildOptions {
  /** The Go module that pins what is built (e.g. controlplane/ in the repo). */
  readonly moduleDir: string;
  /** Where builds are kept; one subdirectory per kind and version. */
  readonly cacheDir: string;
  /** Called with one human-readable line at a time during a build. */
  readonly onProgress?: (line: string) => void;
  readonly goBinary?: string;
}

/** How often a long build reports progress. */
const PROGRESS_INTERVAL_MS = 10_000;
/** Lines of compiler output kept to explain a failed build. */
const FAILURE_TAIL_LINES = 15;
/** A marker written last, so a build killed halfway is never mistaken for a complete one. */
const COMPLETE_MARKER = ".complete";
/** Hex digits of the go.mod + go.sum digest in a cache key: enough to tell pins apart. */
const DIGEST_LENGTH = 12;

export class ToolchainError extends Error {
  override readonly name = "ToolchainError";
}

/** `$KUBETX_CACHE_DIR`, else the XDG cache, else ~/.cache; resolved by the caller's environment. */
export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.KUBETX_CACHE_DIR) return env.KUBETX_CACHE_DIR;
  return path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), ".cache"), "kubetx");
}

/**
 * The release version go.mod requires `module` at (in a require block or on
 * a one-line `require`, with or without a trailing comment); pre-releases
 * do not count.
 */
export async function requiredVersion(moduleDir: string, module: string): Promise<string> {
  const goMod = await readFile(path.join(moduleDir, "go.mod"), "utf8");
  const escaped = module.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const requirement = new RegExp(`^[ \\t]*(?:require[ \\t]+)?${escaped}[ \\t]+(v\\d+\\.\\d+\\.\\d+)[ \\t]*(?:\\/\\/.*)?$`, "m");
  const match = requirement.exec(goMod);
  if (!match?.[1]) throw new ToolchainError(`kubetx: ${moduleDir}/go.mod does not require ${module} at a release version`);
  return match[1];
}

/** The directory a complete build of `spec` lives in (whether or not it exists yet). */
export async function buildDir(spec: GoBuildSpec, options: BuildOptions): Promise<string> {
  return path.join(options.cacheDir, spec.kind, `${spec.version}-${await moduleDigest(options.moduleDir)}`);
}

/** Returns the directory of the cached build, building it first if it is missing. */
export async function ensureGoBuild(spec: GoBuildSpec, options: BuildOptions): Promise<string> {
  const dir = await buildDir(spec, options);
  if (await exists(path.join(dir, COMPLETE_MARKER))) return dir;

  await ensureWritable(options.cacheDir);
  await removeAbandonedBuilds(path.dirname(dir));
  const staging = `${dir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const progress = options.onProgress ?? ((): void => undefined);
  progress(`building ${spec.title} (${spec.detail}) into ${dir}; the first build takes several minutes`);
  const started = Date.now();
  try {
    await goBuild(spec, options, staging);
    for (const target of spec.targets) await rename(path.join(staging, target.built), path.join(staging, target.out));
    await writeFile(path.join(staging, COMPLETE_MARKER), new Date().toISOString());
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  progress(`${spec.title} built in ${Math.round((Date.now() - started) / 1000)} s`);
  return dir;
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
  return hash.digest("hex").slice(0, DIGEST_LENGTH);
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

function goMissing(go: string, cause?: unknown): ToolchainError {
  return new ToolchainError(`kubetx: '${go}' not found; install Go 1.26 or later and put it on PATH`, cause === undefined ? undefined : { cause });
}

async function goBuild(spec: GoBuildSpec, options: BuildOptions, outDir: string): Promise<void> {
  const go = options.goBinary ?? "go";
  const args = ["build", "-v", "-trimpath", "-ldflags", spec.ldflags, "-o", `${outDir}/`, ...spec.targets.map((t) => t.pkg)];
  // Under pdeathsig like the servers: a build must not outlive a killed kubetx.
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", go, ...args], { cwd: options.moduleDir, stdio: ["ignore", "pipe", "pipe"] });
  const tail: string[] = [];
  let compiled = 0;
  const started = Date.now();
  createInterface({ input: child.stderr }).on("line", (line) => {
    if (/^[\w.-]+(\/[\w.~-]+)*$/.test(line)) compiled += 1;
    tail.push(line);
    if (tail.length > FAILURE_TAIL_LINES) tail.shift();
  });
  child.stdout.resume();
  const ticker = setInterval(() => {
    options.onProgress?.(`  ... ${compiled} packages compiled, ${Math.round((Date.now() - started) / 1000)} s`);
  }, PROGRESS_INTERVAL_MS);
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (status) => resolve(status ?? 1));
    });
    // setpriv reports a command it cannot run with exit 127.
    if (code === 127 && tail.some((line) => line.includes("No such file"))) throw goMissing(go);
    if (code !== 0) {
      throw new ToolchainError(
        `kubetx: building ${spec.title} failed (go build exit ${code}); check that Go 1.26 or later is on PATH and the Go module proxy is reachable. Last output:\n${tail.join("\n")}`,
      );
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw goMissing(go, error);
    throw error;
  } finally {
    clearInterval(ticker);
  }
}
