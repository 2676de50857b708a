/**
 * `kubectl tx version`: the plugin's version from package.json, and the
 * version of kubetx in the cluster from the label the Helm chart puts on
 * the webhook configuration, or a line that says why it is unknown.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { VERSION_HELP, VERSION_LABEL, parseVersion, runVersion, serverLine } from "../../src/cli/tx/version.ts";
import type { VersionDeps } from "../../src/cli/tx/version.ts";
import { TxError } from "../../src/cli/tx/errors.ts";
import { Forbidden, NotFound } from "../../src/kube/errors.ts";
import { ReadOnlyClient } from "../support/read-only-client.ts";

const run = promisify(execFile);
const WEBHOOK = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/kubetx";

function deps(answer: (path: string) => unknown): VersionDeps & { out: string[]; client: ReadOnlyClient; connected: number } {
  const out: string[] = [];
  const client = new ReadOnlyClient(answer);
  const result = {
    connect: () => {
      result.connected += 1;
      return Promise.resolve(client);
    },
    now: () => 0, say: (l: string) => out.push(l), warn: () => undefined,
    pluginVersion: "9.8.7", out, client, connected: 0,
  };
  return result;
}

describe("kubectl tx version", () => {
  it("prints the plugin's version, then the version label of the kubetx webhook configuration", async () => {
    const d = deps(() => ({ metadata: { name: "kubetx", labels: { [VERSION_LABEL]: "0.2.0" } } }));
    expect(await runVersion(parseVersion([]), d)).toBe(0);
    expect(d.out).toEqual(["plugin: 9.8.7", "server: 0.2.0"]);
    expect(d.client.calls.map((c) => c.path)).toEqual([WEBHOOK]);
    expect(d.client.closed).toBe(true);
  });

  it("with --client, prints only the plugin line and never connects", async () => {
    const d = deps(() => new Error("must not be called"));
    expect(await runVersion(parseVersion(["--client"]), d)).toBe(0);
    expect(d.out).toEqual(["plugin: 9.8.7"]);
    expect(d.connected).toBe(0);
  });

  it("passes --kubeconfig and --context on to the client", () => {
    expect(parseVersion(["--kubeconfig", "k", "--context", "c"])).toEqual({ kind: "version", options: { clientOnly: false, kubeconfig: "k", context: "c" } });
  });

  it("answers --help with a text that names the label it reads", async () => {
    const d = deps(() => new Error("must not be called"));
    expect(await runVersion(parseVersion(["--help"]), d)).toBe(0);
    expect(d.out).toEqual([VERSION_HELP]);
    expect(VERSION_HELP).toContain(VERSION_LABEL);
  });

  it("refuses arguments and unknown flags as usage errors", () => {
    expect(() => parseVersion(["now"])).toThrow(/version takes no arguments, got 'now'/);
    expect(() => parseVersion(["--short"])).toThrow(TxError);
    expect(() => parseVersion(["--short"])).toThrow(/kubectl tx version --help/);
  });

  it("as the real plugin, prints the version in package.json", async () => {
    const repo = path.resolve(import.meta.dirname, "../..");
    const { version } = JSON.parse(await readFile(path.join(repo, "package.json"), "utf8")) as { version: string };
    const { stdout } = await run(process.execPath, [path.join(repo, "src/cli/kubectl-tx.ts"), "version", "--client"]);
    expect(stdout).toBe(`plugin: ${version}\n`);
  });
});

describe("the server line", () => {
  const status = { message: "nope", method: "GET", path: WEBHOOK };

  it("says kubetx is not installed when there is no webhook configuration", () => {
    expect(serverLine({ error: new NotFound({ ...status, status: 404, reason: "NotFound" }) })).toBe("server: kubetx is not installed (no validatingwebhookconfiguration kubetx)");
  });

  it("says who may read it when the user may not", () => {
    expect(serverLine({ error: new Forbidden({ ...status, status: 403, reason: "Forbidden" }) })).toBe("server: unknown (you may not read validatingwebhookconfigurations; an admin can)");
  });

  it("says the version is unknown for an install without the label", () => {
    expect(serverLine({ object: { metadata: { name: "kubetx" } } })).toMatch(/^server: unknown \(validatingwebhookconfiguration kubetx has no app\.kubernetes\.io\/version label/);
  });

  it("passes on any other error's message", () => {
    expect(serverLine({ error: new Error("connect ECONNREFUSED 127.0.0.1:6443") })).toBe("server: unknown (connect ECONNREFUSED 127.0.0.1:6443)");
  });
});
