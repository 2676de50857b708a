import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ToolchainError, ensureBinaries, pinnedVersion } from "../../src/devcluster/toolchain.ts";

const GO_MOD = `module kubetx.io/controlplane

go 1.26.0

require (
\tgo.etcd.io/etcd/server/v3 v3.7.0
\tk8s.io/kubernetes v1.37.2
)

replace k8s.io/api => k8s.io/api v0.37.2
`;

describe("building the control plane", () => {
  let dir: string;
  let moduleDir: string;
  let cacheDir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-toolchain-"));
    moduleDir = path.join(dir, "module");
    cacheDir = path.join(dir, "cache");
    await mkdir(moduleDir);
    await writeFile(path.join(moduleDir, "go.mod"), GO_MOD);
    await writeFile(path.join(moduleDir, "go.sum"), "");
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** A stand-in for `go` that fails the way a compile error does: output on stderr, exit 1. */
  async function failingGo(): Promise<string> {
    const go = path.join(dir, "go");
    await writeFile(go, "#!/bin/sh\necho 'first line of noise' >&2\necho 'controlplane: undefined: frobnicate' >&2\nexit 1\n");
    await chmod(go, 0o755);
    return go;
  }

  it("reports a failed go build with its last output", async () => {
    const build = ensureBinaries({ moduleDir, cacheDir, goBinary: await failingGo() });
    await expect(build).rejects.toBeInstanceOf(ToolchainError);
    await expect(build).rejects.toThrow(/building the control plane failed \(go build exit 1\)/);
    await expect(build).rejects.toThrow(/Last output:\nfirst line of noise\ncontrolplane: undefined: frobnicate$/);
  });

  it("leaves no partial build in the cache after a failure", async () => {
    await ensureBinaries({ moduleDir, cacheDir, goBinary: await failingGo() }).catch(() => undefined);
    expect(await readdir(path.join(cacheDir, "controlplane"))).toEqual([]);
  });

  it("removes the staging directory of an earlier build whose process died", async () => {
    const abandoned = path.join(cacheDir, "controlplane", "v1.37.1-0123456789ab.partial-999999999");
    await mkdir(abandoned, { recursive: true });
    await writeFile(path.join(abandoned, "kube-apiserver"), "half a binary");
    await ensureBinaries({ moduleDir, cacheDir, goBinary: await failingGo() }).catch(() => undefined);
    expect(await readdir(path.join(cacheDir, "controlplane"))).toEqual([]);
  });

  it("keeps the staging directory of a build that is still running", async () => {
    const running = `v1.37.2-0123456789ab.partial-${process.ppid}`;
    await mkdir(path.join(cacheDir, "controlplane", running), { recursive: true });
    await ensureBinaries({ moduleDir, cacheDir, goBinary: await failingGo() }).catch(() => undefined);
    expect(await readdir(path.join(cacheDir, "controlplane"))).toEqual([running]);
  });

  it("says how to install Go when the go command is missing", async () => {
    const build = ensureBinaries({ moduleDir, cacheDir, goBinary: path.join(dir, "no-such-go") });
    await expect(build).rejects.toThrow(/no-such-go' not found; install Go 1\.26 or later/);
    expect(await readdir(path.join(cacheDir, "controlplane"))).toEqual([]);
  });

  it("names the cache directory and KUBETX_CACHE_DIR when the cache cannot be created", async () => {
    const blocker = path.join(dir, "a-file");
    await writeFile(blocker, "");
    const build = ensureBinaries({ moduleDir, cacheDir: path.join(blocker, "cache"), goBinary: await failingGo() });
    await expect(build).rejects.toThrow(`kubetx: cannot write the build cache ${path.join(blocker, "cache")} (ENOTDIR); set KUBETX_CACHE_DIR to a writable directory`);
  });
});

describe("the pinned Kubernetes version", () => {
  let moduleDir: string;
  beforeEach(async () => {
    moduleDir = await mkdtemp(path.join(tmpdir(), "kubetx-gomod-"));
  });
  afterEach(() => rm(moduleDir, { recursive: true, force: true }));

  async function versionOf(goMod: string): Promise<string> {
    await writeFile(path.join(moduleDir, "go.mod"), goMod);
    return pinnedVersion(moduleDir);
  }

  it("is read from a require block", async () => {
    expect(await versionOf(GO_MOD)).toBe("v1.37.2");
  });

  it("is read from a one-line require", async () => {
    expect(await versionOf("module m\n\nrequire k8s.io/kubernetes v1.38.0\n")).toBe("v1.38.0");
  });

  it("is read from a line with a trailing comment", async () => {
    expect(await versionOf("module m\n\nrequire (\n\tk8s.io/kubernetes v1.37.2 // pinned: see README\n)\n")).toBe("v1.37.2");
  });

  it("ignores the staging modules and their replace lines", async () => {
    const goMod = "module m\n\nrequire (\n\tk8s.io/kubernetes-extra v9.9.9\n\tk8s.io/kubernetes v1.37.2\n)\n\nreplace k8s.io/api => k8s.io/api v0.37.2\n";
    expect(await versionOf(goMod)).toBe("v1.37.2");
  });

  it("refuses a pre-release, naming go.mod", async () => {
    await expect(versionOf("module m\n\nrequire k8s.io/kubernetes v1.38.0-alpha.1\n")).rejects.toThrow(
      `kubetx: ${moduleDir}/go.mod does not require k8s.io/kubernetes at a release version`,
    );
  });

  it("refuses a go.mod without k8s.io/kubernetes", async () => {
    await expect(versionOf("module m\n\nrequire go.etcd.io/etcd/server/v3 v3.7.0\n")).rejects.toBeInstanceOf(ToolchainError);
  });
});
