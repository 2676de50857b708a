/**
 * TransactionPolicy objects steer a running kubetx: coverage, mode,
 * exemptions and limits change without a restart, and a bad policy is
 * denied with the field named.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { client, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister } from "../support/engine.ts";
import { configMap, waitResolved, yamlOf } from "../support/objects.ts";

const POLICIES = "/apis/kubetx.io/v1alpha1/transactionpolicies";

describe("TransactionPolicy", () => {
  let engine: WebhookServer;
  let admin: KubeClient;
  const team = uniqueName("team");
  const ns = uniqueName("policy");
  const created: string[] = [];

  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns, { team });
    engine = await startEngine({ policySource: "cluster" });
  });
  afterEach(async () => {
    for (const name of created.splice(0)) await admin.delete(`${POLICIES}/${name}`).catch(() => undefined);
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    admin?.close();
  });

  async function applyPolicy(name: string, spec: Record<string, unknown>): Promise<{ code: number; stderr: string }> {
    created.push(name);
    const body = { apiVersion: "kubetx.io/v1alpha1", kind: "TransactionPolicy", metadata: { name }, spec };
    // JSON, not YAML: kubectl reads YAML 1.1, where a bare `off` is the boolean false
    // (people must write mode: "off"; the README says so).
    return kubectl(["apply", "-f", "-"], { input: JSON.stringify(body) });
  }

  const teamPolicy = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    mode: "transparent", namespaceSelector: { matchLabels: { team } }, quietWindowSeconds: 1, lockTTLSeconds: 3, maxOpenSeconds: 8, ...extra,
  });

  /** Applies one ConfigMap as `user` until kubetx's verdict (joined or not) is the one expected, as the watch catches up. */
  async function applyUntil(user: "alice" | "bob", name: string, joined: boolean): Promise<string> {
    // A policy reaches the apiserver through kubetx's watch, its rewrite of the webhook configurations and the apiserver's cache of them: seconds on a busy machine.
    const deadline = Date.now() + 60_000;
    let last = "";
    for (let attempt = 0; Date.now() < deadline; attempt += 1) {
      const result = await kubectl(["apply", "-f", "-"], { user, input: yamlOf([configMap(ns, `${name}-${attempt}`, { v: "1" })]) });
      if (result.stderr.includes("kubetx: joined transaction") === joined) return result.stderr;
      last = result.stderr;
      // A refusal that says to apply again in a few seconds is a failed transparent transaction refusing the
      // rest of the apply: retried sooner than its quiet window, each refused write starts that window again
      // (as it must for a real apply) and the loop never gets in. Wait as the message says.
      await sleep(result.stderr.includes("apply again in a few seconds") ? 3_000 : 200);
    }
    throw new Error(`kubetx never ${joined ? "took" : "left"} ${user}'s write to ${ns} within 60 s; kubectl last said: ${last || "(nothing)"}`);
  }

  it("covers a namespace as soon as a policy selects it, and stops when the policy says off", async () => {
    expect((await applyPolicy("team-policy", teamPolicy())).code).toBe(0);
    const stderr = await applyUntil("alice", "covered", true);
    const id = /joined transaction (t-[0-9a-f]+)/.exec(stderr)?.[1] ?? "";
    const resolved = await waitResolved(admin, id);
    expect(resolved.status?.phase, JSON.stringify(resolved.status)).toBe("Committed");
    const off = await applyPolicy("team-policy", teamPolicy({ mode: "off" }));
    expect(off.stderr).toBe("");
    expect(off.code).toBe(0);
    expect(await applyUntil("alice", "uncovered", false)).not.toContain("kubetx:");
  });

  it("rolls back nothing alice writes while a policy starts and stops covering her namespace", async () => {
    // Long enough that a stream of writes in one transparent transaction is not cut off by maxOpenSeconds.
    const policy = (mode: string): Record<string, unknown> => teamPolicy({ mode, maxOpenSeconds: 120 });
    const joined = new Set<string>();
    const failures: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 400; i++) {
        const result = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, `stream-${i}`, { v: "1" })]) });
        if (result.code !== 0) failures.push(`stream-${i}: ${result.stderr}`);
        const id = /joined transaction (t-[0-9a-f]+)/.exec(result.stderr)?.[1];
        if (id) joined.add(id);
      }
    })();
    try {
      for (const mode of ["transparent", "off", "transparent", "off"]) {
        expect((await applyPolicy("team-toggle", policy(mode))).code).toBe(0);
        // Time for kubetx to carry the change through both configurations while the writes go on.
        await sleep(7_000);
      }
    } finally {
      writing = false;
      await writer;
    }
    expect(failures).toEqual([]);
    expect(joined.size).toBeGreaterThan(0);
    for (const id of joined) {
      const tx = await waitResolved(admin, id, 60_000);
      expect(tx.status?.phase, `${id}: ${JSON.stringify(tx.status)}`).toBe("Committed");
    }
  });

  it("lets exempt users and excluded resources through untouched", async () => {
    await applyPolicy("team-exempt", teamPolicy({ exemptUsers: ["bob"], resources: { include: ["*"], exclude: ["secrets"] } }));
    await applyUntil("alice", "alice-write", true);
    expect(await applyUntil("bob", "bob-write", false)).not.toContain("kubetx:");
    const secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "excluded", namespace: ns }, stringData: { k: "v" } };
    const result = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([secret]) });
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain("kubetx:");
  });

  it("rolls back a transaction that grows past the policy's member limit", async () => {
    await applyPolicy("team-small", teamPolicy({ maxMembers: 2 }));
    await applyUntil("alice", "warmup", true);
    await sleep(1500);
    const docs = ["big-1", "big-2", "big-3"].map((n) => configMap(ns, n, { v: n }));
    const result = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(docs) });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("is at the limit of 2 members set by the TransactionPolicy");
    // The refusal names the transaction that rolls back (big-1 may have joined alice's warm-up transaction or a new one).
    const id = /transaction (t-[0-9a-f]+) is at the limit/.exec(result.stderr)?.[1];
    expect(id, result.stderr).toBeDefined();
    const tx = await waitResolved(admin, id ?? "");
    expect(tx.status?.phase).toBe("RolledBack");
    for (const n of ["big-1", "big-2", "big-3"]) expect((await kubectl(["-n", ns, "get", "configmap", n])).code).not.toBe(0);
  });

  it.each([
    ["an unknown field", { quietWindow: 2 }, "spec.quietWindow: unknown field"],
    ["a negative quiet window", { quietWindowSeconds: -1 }, "spec.quietWindowSeconds: must be a number from 1 to 300, got -1"],
    ["a selector that does not parse", { namespaceSelector: { matchExpressions: [{ key: "team", operator: "Maybe" }] } }, "spec.namespaceSelector.matchExpressions[0].operator"],
    ["an unknown mode", { mode: "sometimes" }, "spec.mode: must be one of off, explicit, transparent"],
  ])("denies a policy with %s and names the field", async (_name, spec, message) => {
    const result = await applyPolicy("bad-policy", spec);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("kubetx: TransactionPolicy bad-policy is invalid");
    expect(result.stderr).toContain(message);
    expect((await kubectl(["get", "transactionpolicy", "bad-policy"])).code).not.toBe(0);
  });
});
