/**
 * plugins/krew/tx.yaml is what krew installs `kubectl tx` from: a krew
 * Plugin whose version is the plugin's own, naming for every platform the
 * archive that `npm run krew:archive` (tools/krew-archive.ts) builds, by its
 * release URL and its sha256, and the launcher in it.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Archive } from "../../tools/krew-archive.ts";
import { LAUNCHER, buildArchive, manifestWithArchive, tarGz } from "../../tools/krew-archive.ts";

const run = promisify(execFile);

const REPO = path.resolve(import.meta.dirname, "../..");

interface Platform {
  selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values: string[] }[] };
  uri: string;
  sha256: string;
  bin: string;
  files?: { from: string; to: string }[];
}
interface Plugin {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { version: string; homepage: string; shortDescription: string; description: string; caveats?: string; platforms: Platform[] };
}

async function manifest(): Promise<Plugin> {
  return parse(await readFile(path.join(REPO, "plugins", "krew", "tx.yaml"), "utf8")) as Plugin;
}

async function packageVersion(): Promise<string> {
  return (JSON.parse(await readFile(path.join(REPO, "package.json"), "utf8")) as { version: string }).version;
}

describe("the krew manifest", () => {
  it("is a krew Plugin named tx, so kubectl runs it as kubectl tx", async () => {
    const plugin = await manifest();
    expect(plugin.apiVersion).toBe("krew.googlecontainertools.github.com/v1alpha2");
    expect(plugin.kind).toBe("Plugin");
    expect(plugin.metadata.name).toBe("tx");
  });

  it("carries the version of package.json, with krew's leading v", async () => {
    expect((await manifest()).spec.version).toBe(`v${await packageVersion()}`);
  });

  it("downloads the archive of that version, and runs kubectl-tx from it, on every platform", async () => {
    const { spec } = await manifest();
    expect(spec.platforms.length).toBeGreaterThan(0);
    for (const platform of spec.platforms) {
      expect(platform.uri).toMatch(new RegExp(`^https://.+/kubectl-tx-${spec.version.replace(/\./g, "\\.")}\\.tar\\.gz$`));
      expect(platform.bin).toBe("kubectl-tx");
      expect(platform.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(platform.selector.matchLabels ?? platform.selector.matchExpressions).toBeDefined();
    }
  });

  it("addresses the archive by a release URL of its version", async () => {
    const { spec } = await manifest();
    for (const platform of spec.platforms) expect(platform.uri).toBe(`https://kubetx.io/releases/${spec.version}/kubectl-tx-${spec.version}.tar.gz`);
  });

  it("says in its caveats what kubectl tx needs besides itself", async () => {
    const { spec } = await manifest();
    expect(spec.caveats).toMatch(/Node\.js 24/);
    expect(spec.caveats).toMatch(/kubetx installed in\s+the cluster/);
    expect(spec.shortDescription.length).toBeLessThanOrEqual(60);
  });
});

describe("the archive npm run krew:archive builds", () => {
  let archive: Archive;
  let dir: string;
  let extracted: string;

  beforeAll(async () => {
    archive = await buildArchive();
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-krew-"));
    extracted = path.join(dir, "store");
    await mkdir(extracted);
    await writeFile(path.join(dir, archive.fileName), archive.bytes);
    // The system's tar, not the script's own reader: what krew's extraction has to read.
    await run("tar", ["-xzf", path.join(dir, archive.fileName), "-C", extracted]);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("is what npm run krew:archive writes into tx.yaml: its sha256 and its file name, on every platform", async () => {
    expect(createHash("sha256").update(archive.bytes).digest("hex")).toBe(archive.sha256);
    // The committed tx.yaml names the archive of its release (the script rewrites it then); any source change makes another archive.
    const written = parse(manifestWithArchive(await readFile(path.join(REPO, "plugins", "krew", "tx.yaml"), "utf8"), archive)) as Plugin;
    for (const platform of written.spec.platforms) {
      expect(platform.sha256).toBe(archive.sha256);
      expect(path.posix.basename(new URL(platform.uri).pathname)).toBe(archive.fileName);
    }
  });

  it("has the launcher at the path each platform's bin names, executable, copied by the platform's files", async () => {
    for (const platform of (await manifest()).spec.platforms) {
      const launcher = path.join(extracted, platform.bin);
      expect(await readFile(launcher, "utf8")).toBe(LAUNCHER);
      expect((await stat(launcher)).mode & 0o111).toBe(0o111);
      expect(platform.files).toEqual([{ from: "*", to: "." }]);
    }
  });

  it("runs kubectl tx from its own files through a link, as krew installs it, with the plugin's version", async () => {
    const bin = path.join(dir, "bin");
    await mkdir(bin);
    await symlink(path.join(extracted, "kubectl-tx"), path.join(bin, "kubectl-tx"));
    // Node 24, as the caveats ask; cwd elsewhere, so nothing of the checkout is found by accident.
    const temp = await mkdtemp(path.join(dir, "tmp-"));
    const { NODE_DISABLE_COMPILE_CACHE: _, NODE_COMPILE_CACHE: __, ...env } = process.env;
    const help = await run(process.execPath, [path.join(bin, "kubectl-tx"), "--help"], { cwd: dir, env: { ...env, TMPDIR: temp } });
    expect(help.stdout).toContain("kubectl tx apply -f FILE|DIR");
    // The launcher turns Node's compile cache on before it loads the bundle.
    expect((await readdir(path.join(temp, "node-compile-cache"), { recursive: true })).length).toBeGreaterThan(1);
    const pkg = JSON.parse(await readFile(path.join(extracted, "package.json"), "utf8")) as { version: string; type: string };
    expect(pkg).toMatchObject({ version: await packageVersion(), type: "module" });
    // One bundle, nothing else: no sources, no node_modules.
    expect((await readdir(extracted)).sort()).toEqual(["kubectl-tx", "kubectl-tx.mjs", "package.json"]);
  });

  it("is the same bytes when built again from the same tree", async () => {
    expect((await buildArchive()).sha256).toBe(archive.sha256);
  });
});

describe("building the archive", () => {
  it("writes the archive's URL and sha256 into every platform and leaves the rest of the manifest alone", () => {
    const text = "# c\nplatforms:\n  - uri: https://old/x.tar.gz\n    sha256: \"00\"\n    bin: kubectl-tx\n  - uri: a\n    sha256: b\n";
    expect(manifestWithArchive(text, { uri: "https://new/y.tar.gz", sha256: "ab" })).toBe(
      "# c\nplatforms:\n  - uri: https://new/y.tar.gz\n    sha256: \"ab\"\n    bin: kubectl-tx\n  - uri: https://new/y.tar.gz\n    sha256: \"ab\"\n",
    );
    expect(() => manifestWithArchive("platforms: []\n", { uri: "u", sha256: "s" })).toThrow(/expected a 'uri:' and a 'sha256:' line/);
  });

  it("packs the same entries into the same bytes, whatever order they come in", () => {
    const a = { path: "src/a.ts", mode: 0o644, content: Buffer.from("a") };
    const b = { path: "kubectl-tx", mode: 0o755, content: Buffer.from("b") };
    expect(tarGz([a, b]).equals(tarGz([b, a]))).toBe(true);
  });
});
