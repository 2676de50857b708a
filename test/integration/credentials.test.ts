/**
 * kubetx's client asks the kubeconfig's authenticator again as its
 * credentials age: an exec plugin whose short-lived token changes (as a
 * cloud provider's does) is picked up without a restart.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createKubeClient } from "../../src/kube/client.ts";
import { selfUsername } from "../../src/kube/identity.ts";
import { cluster } from "../support/cluster.ts";
import { until } from "../support/objects.ts";

/** Prints an ExecCredential with the token in `tokenFile`, valid for one second. */
const PLUGIN = `
const token = require("node:fs").readFileSync(process.argv[2], "utf8").trim();
const expirationTimestamp = new Date(Date.now() + 1000).toISOString();
process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token, expirationTimestamp } }));
`;

async function tokenOf(user: "alice" | "bob"): Promise<string> {
  const config = parse(await readFile(cluster().kubeconfigs[user], "utf8")) as { users: { user: { token: string } }[] };
  const token = config.users[0]?.user.token;
  if (!token) throw new Error(`${user}'s kubeconfig has no token`);
  return token;
}

describe("credentials that change while kubetx runs", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-credentials-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("uses an exec plugin's new token once the old one expires, without a restart", async () => {
    const tokenFile = path.join(dir, "token");
    const pluginFile = path.join(dir, "plugin.cjs");
    await writeFile(pluginFile, PLUGIN);
    await writeFile(tokenFile, await tokenOf("alice"));
    const admin = parse(await readFile(cluster().kubeconfigs.admin, "utf8")) as { clusters: unknown[] };
    const kubeconfig = path.join(dir, "kubeconfig");
    await writeFile(kubeconfig, JSON.stringify({
      apiVersion: "v1", kind: "Config", clusters: admin.clusters,
      users: [{ name: "rotating", user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: process.execPath, args: [pluginFile, tokenFile], interactiveMode: "Never" } } }],
      contexts: [{ name: "rotating", context: { cluster: (admin.clusters[0] as { name: string }).name, user: "rotating" } }],
      "current-context": "rotating",
    }));
    const client = await createKubeClient(kubeconfig, { credentialRefreshMs: 200 });
    try {
      expect(await selfUsername(client)).toBe("alice");
      await writeFile(tokenFile, await tokenOf("bob"));
      expect(await until("the client to present bob's token", async () => ((await selfUsername(client)) === "bob" ? true : undefined), 10_000)).toBe(true);
    } finally {
      client.close();
    }
  });
});
