/**
 * The chart's test tools are built like the control plane: each pinned by
 * its own go.mod, kept in its own cache directory keyed by that version and
 * the module's digest, so a new pin builds anew and an unchanged one is
 * reused.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { GoBuildSpec } from "../../src/devcluster/gobuild.ts";
import { buildDir, requiredVersion } from "../../src/devcluster/gobuild.ts";
import { pinnedHelmVersion } from "../../src/devcluster/helm.ts";

const SPEC: GoBuildSpec = { kind: "helm", title: "helm", detail: "Helm v4.3.2", version: "v4.3.2", targets: [], ldflags: "" };

describe("a Go module of the project's own", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-gobuild-"));
    await writeFile(path.join(dir, "go.mod"), "module m\n\ngo 1.26.0\n\nrequire helm.sh/helm/v4 v4.3.2\n\nrequire (\n\tgithub.com/x/y v1.0.0 // indirect\n)\n");
    await writeFile(path.join(dir, "go.sum"), "");
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("pins helm by its helm.sh/helm/v4 requirement", async () => {
    expect(await pinnedHelmVersion(dir)).toBe("v4.3.2");
  });

  it("names the module it does not require at a release version", async () => {
    await expect(requiredVersion(dir, "github.com/cert-manager/cert-manager")).rejects.toThrow(
      `kubetx: ${dir}/go.mod does not require github.com/cert-manager/cert-manager at a release version`,
    );
  });

  it("builds into <cache>/<kind>/<version>-<digest>, a new directory when go.sum changes", async () => {
    const options = { moduleDir: dir, cacheDir: "/cache" };
    const before = await buildDir(SPEC, options);
    expect(before).toMatch(/^\/cache\/helm\/v4\.3\.2-[0-9a-f]{12}$/);
    expect(await buildDir(SPEC, options)).toBe(before);
    await writeFile(path.join(dir, "go.sum"), "github.com/x/y v1.0.0 h1:abc=\n");
    expect(await buildDir(SPEC, options)).not.toBe(before);
  });
});
