/**
 * plugins/krew/tx.yaml is what krew installs `kubectl tx` from: a krew
 * Plugin whose version is the plugin's own, with a download and a digest
 * of krew's shapes for every platform it names.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

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

  it("says in its caveats what kubectl tx needs besides itself", async () => {
    const { spec } = await manifest();
    expect(spec.caveats).toMatch(/Node\.js 24/);
    expect(spec.caveats).toMatch(/kubetx installed in\s+the cluster/);
    expect(spec.shortDescription.length).toBeLessThanOrEqual(60);
  });
});
