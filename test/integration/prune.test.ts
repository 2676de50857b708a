/** kubectl tx apply --prune: the deletes kubectl makes last join the same transaction. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { client, createNamespace, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister } from "../support/engine.ts";
import { configMap, readOrUndefined, waitResolved, yamlOf } from "../support/objects.ts";
import type { Plugin } from "../support/plugin.ts";
import { installPlugin } from "../support/plugin.ts";

describe("kubectl tx apply --prune", () => {
  let engine: WebhookServer;
  let admin: KubeClient;
  let plugin: Plugin;
  let dir: string;
  const ns = uniqueName("prune");
  const labelled = (name: string): ReturnType<typeof configMap> => configMap(ns, name, { v: name }, { labels: { app: "pruned" } });

  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns, { "kubetx.io/enabled": "true" });
    engine = await startEngine();
    plugin = await installPlugin();
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-prune-"));
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    await plugin?.remove();
    await rm(dir, { recursive: true, force: true });
    admin?.close();
  });

  it("deletes what the manifests no longer name, inside the same transaction", async () => {
    const file = path.join(dir, "app.yaml");
    await writeFile(file, yamlOf([labelled("keep"), labelled("drop")]));
    const first = await plugin.tx(["apply", "-f", file, "-n", ns, "--prune", "-l", "app=pruned", "--prune-allowlist", "core/v1/ConfigMap"]);
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
    await writeFile(file, yamlOf([labelled("keep")]));
    const second = await plugin.tx(["apply", "-f", file, "-n", ns, "--prune", "-l", "app=pruned", "--prune-allowlist", "core/v1/ConfigMap"]);
    expect(second.code, second.stderr).toBe(0);
    const id = /transaction (t-[0-9a-f]+) committed/.exec(second.stdout)?.[1] ?? "";
    const tx = await waitResolved(admin, id);
    expect(tx.status?.members?.map((m) => `${m.operation} ${m.name}`)).toEqual(["UPDATE keep", "DELETE drop"]);
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/drop`)).toBeUndefined();
  });
});
