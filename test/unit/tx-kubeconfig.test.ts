import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { createKubeClient } from "../../src/kube/client.ts";

describe("a client from a kubeconfig and a context (kubectl tx --kubeconfig --context)", () => {
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tx-kubeconfig-"));
    file = path.join(dir, "config");
    await writeFile(file, stringify({
      apiVersion: "v1", kind: "Config",
      clusters: [
        { name: "dev", cluster: { server: "https://dev.example:6443" } },
        { name: "prod", cluster: { server: "https://prod.example:6443" } },
      ],
      users: [{ name: "alice", user: { token: "t" } }],
      contexts: [
        { name: "dev", context: { cluster: "dev", user: "alice" } },
        { name: "prod", context: { cluster: "prod", user: "alice" } },
      ],
      "current-context": "dev",
    }));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("uses the current context when none is named, as before", async () => {
    const client = await createKubeClient(file);
    expect(client.server).toBe("https://dev.example:6443");
    client.close();
  });

  it("uses the named context", async () => {
    const client = await createKubeClient(file, { context: "prod" });
    expect(client.server).toBe("https://prod.example:6443");
    client.close();
  });

  it("names a context the kubeconfig does not have", async () => {
    await expect(createKubeClient(file, { context: "staging" })).rejects.toThrow(`kubetx: kubeconfig ${file} has no context 'staging'`);
  });
});
