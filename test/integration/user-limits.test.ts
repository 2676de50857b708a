/**
 * Per-user limits from the policy, on the real cluster: a user who already
 * holds the policy's maximum of open transactions or locks is denied one
 * more, with a message that names the limit, and other users are not.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, ObjectList } from "../../src/kube/index.ts";
import { userDigest } from "../../src/locks/record.ts";
import type { Transaction } from "../../src/transactions/model.ts";
import { transactionPath } from "../../src/transactions/model.ts";
import type { WebhookServer } from "../../src/main.ts";
import { client, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister } from "../support/engine.ts";
import { configMap, inTransaction, until, waitResolved, yamlOf } from "../support/objects.ts";

const POLICIES = "/apis/kubetx.io/v1alpha1/transactionpolicies";
const LEASES = "/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases";
const POLICY = "user-limits-test";

describe("per-user limits", () => {
  let engine: WebhookServer;
  let admin: KubeClient;
  const label = uniqueName("limits");
  const ns = uniqueName("limits");

  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns, { [label]: "true" });
    engine = await startEngine({ policySource: "cluster" });
    const body = {
      apiVersion: "kubetx.io/v1alpha1", kind: "TransactionPolicy", metadata: { name: POLICY },
      spec: {
        mode: "explicit", namespaceSelector: { matchLabels: { [label]: "true" } }, quietWindowSeconds: 1, lockTTLSeconds: 3, maxOpenSeconds: 20,
        maxOpenTransactionsPerUser: 1, maxLocksPerUser: 2,
        exemptUsers: ["admin", "system:kube-controller-manager", "system:kube-scheduler"],
      },
    };
    expect((await kubectl(["apply", "-f", "-"], { input: JSON.stringify(body) })).code).toBe(0);
    // The policy reaches kubetx through its watch: wait until it covers the namespace.
    await until("the policy to cover the namespace", async () => {
      const probe = await kubectl(["apply", "--dry-run=server", "-f", "-"], { user: "bob", input: yamlOf([inTransaction(configMap(ns, "probe", {}), "t-limitprb", 1)]) });
      return probe.stderr.includes("kubetx: dry run") ? true : undefined;
    });
    // alice's locks count cluster-wide: those another file's transactions left are collected first. A Failed
    // transaction keeps its locks until an admin deletes its record, as an admin does here.
    await until("alice's locks from earlier stories to be collected", async () => {
      const leases = await admin.get<ObjectList>(LEASES, { query: { labelSelector: `kubetx.io/role=lock,kubetx.io/user=${userDigest("alice")}` } });
      if (leases.items.length === 0) return true;
      for (const lease of leases.items) {
        const id = lease.metadata?.labels?.["kubetx.io/transaction"] ?? "";
        const record = await admin.get<Transaction>(transactionPath(id)).catch(() => undefined);
        if (record?.status?.phase === "Failed") await admin.delete(transactionPath(id)).catch(() => undefined);
      }
      await engine.resolver.collectGarbage();
      return undefined;
    }, 60_000);
  }, 90_000);
  afterAll(async () => {
    await admin.delete(`${POLICIES}/${POLICY}`).catch(() => undefined);
    await unregister();
    await engine?.close();
    admin?.close();
  });

  /** Waits until the watch cache lists `count` of alice's locks, as the next admission will count them. */
  async function aliceHolds(count: number): Promise<void> {
    await until(`alice to hold ${count} locks`, async () => {
      const leases = await admin.get<ObjectList>(LEASES, { query: { labelSelector: `kubetx.io/role=lock,kubetx.io/user=${userDigest("alice")}`, resourceVersion: "0" } });
      return leases.items.length === count ? true : (await sleep(50), undefined);
    });
  }

  const apply = (user: "alice" | "bob", name: string, id: string, expected: number): ReturnType<typeof kubectl> =>
    kubectl(["apply", "-f", "-"], { user, input: yamlOf([inTransaction(configMap(ns, name, { v: "1" }), id, expected)]) });

  it("denies a second open transaction and a third lock, naming each limit; another user is not held back", async () => {
    const first = await apply("alice", "a-1", "t-limits01", 5);
    expect(first.stderr).toContain("kubetx: joined transaction t-limits01 (1 member)");
    await aliceHolds(1);

    const second = await apply("alice", "b-1", "t-limits02", 1);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain("kubetx: alice already has 1 open transaction, the TransactionPolicy's limit (maxOpenTransactionsPerUser: 1)");
    expect((await waitResolved(admin, "t-limits02")).status?.failure).toContain("maxOpenTransactionsPerUser");

    const bobs = await apply("bob", "bob-1", "t-limits03", 1);
    expect(bobs.stderr).toContain("kubetx: joined transaction t-limits03");

    expect((await apply("alice", "a-2", "t-limits01", 5)).stderr).toContain("kubetx: joined transaction t-limits01 (2 members)");
    await aliceHolds(2);
    const third = await apply("alice", "a-3", "t-limits01", 5);
    expect(third.code).not.toBe(0);
    expect(third.stderr).toContain("kubetx: alice's transactions already hold 2 locks, the TransactionPolicy's limit (maxLocksPerUser: 2)");

    const rolledBack = await waitResolved(admin, "t-limits01");
    expect(rolledBack.status?.phase).toBe("RolledBack");
    expect(rolledBack.status?.failure).toContain("maxLocksPerUser");
    expect((await waitResolved(admin, "t-limits03")).status?.phase).toBe("Committed");
  });
});
