/**
 * The mutating /observe records transparent writes only, so the apiserver
 * skips it for a write that names its transaction (a match condition):
 * an explicit member costs one webhook call, not two. A plain update of an
 * object that kept an old transaction's annotation is transparent again,
 * and is still observed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/index.ts";
import { client, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister } from "../support/engine.ts";
import type { WebhookServer } from "../../src/main.ts";
import { configMap, inTransaction, waitResolved, yamlOf } from "../support/objects.ts";

const ENABLED = { "kubetx.io/enabled": "true" };

describe("the observe webhook", () => {
  const ns = uniqueName("observe");
  const calls: { path: string; name: string; operation: string }[] = [];
  let admin: KubeClient;
  let engine: WebhookServer;
  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns, ENABLED);
    engine = await startEngine(undefined, {
      onReview: (path, request) => {
        if (request.namespace === ns && !request.dryRun) calls.push({ path, name: request.name ?? request.object?.metadata?.name ?? "", operation: request.operation });
      },
    });
  });
  afterAll(async () => {
    await unregister();
    await engine.close();
    admin.close();
  });

  const of = (path: string, name: string): string[] => calls.filter((c) => c.path === path && c.name === name).map((c) => c.operation);

  it("is not called for the members of an explicit transaction, and is for a plain apply's writes", async () => {
    const id = "t-observe01";
    const explicit = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "named-a", { v: "1" }), id, 2), inTransaction(configMap(ns, "named-b", { v: "1" }), id, 2)]) });
    expect(explicit.code, explicit.stderr).toBe(0);
    expect((await waitResolved(admin, id)).status?.phase).toBe("Committed");
    const plain = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "plain", { v: "1" })]) });
    expect(plain.code, plain.stderr).toBe(0);
    expect(of("/validate", "named-a")).toEqual(["CREATE"]);
    expect(of("/validate", "named-b")).toEqual(["CREATE"]);
    expect(of("/observe", "named-a")).toEqual([]);
    expect(of("/observe", "named-b")).toEqual([]);
    expect(of("/observe", "plain")).toEqual(["CREATE"]);
    expect(of("/validate", "plain")).toEqual(["CREATE"]);
  });

  it("is called again for a plain update of an object that keeps an old transaction's annotation (that write is transparent)", async () => {
    const update = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "named-a", { v: "2" }), "t-observe01", 2)]) });
    expect(update.code, update.stderr).toBe(0);
    expect(update.stderr).toMatch(/joined transaction t-[0-9a-f]{8}/);
    expect(update.stderr).not.toContain("t-observe01");
    expect(of("/observe", "named-a")).toEqual(["UPDATE"]);
  });
});
