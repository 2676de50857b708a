/**
 * Prepared transactions against the real control plane: `kubectl tx apply`
 * names its objects, kubetx locks the ones it will create before kubectl
 * runs, and kubectl's creates are admitted with no apiserver call.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { selfSubject } from "../../src/kube/identity.ts";
import type { WebhookServer } from "../../src/main.ts";
import type { Transaction } from "../../src/transactions/model.ts";
import { newTransaction, transactionPath } from "../../src/transactions/model.ts";
import { client, createNamespace, uniqueName } from "../support/cluster.ts";
import { FAST, startEngine, unregister } from "../support/engine.ts";
import { configMap, readOrUndefined, until, waitResolved, yamlOf } from "../support/objects.ts";
import type { Plugin } from "../support/plugin.ts";
import { installPlugin } from "../support/plugin.ts";

const ENABLED = { "kubetx.io/enabled": "true" };

interface Review {
  readonly operation: string;
  readonly name: string;
  readonly namespace: string;
  readonly allowed: boolean;
  readonly calls: number;
}

/** The id kubectl tx announced on stderr (`applying N objects as transaction t-xxxx`). */
function announcedId(stderr: string): string {
  const id = /as transaction (t-[0-9a-f]{8})/.exec(stderr)?.[1];
  if (!id) throw new Error(`no transaction id in kubectl tx's output:\n${stderr}`);
  return id;
}

describe("prepared transactions (kubectl tx apply)", () => {
  const ns = uniqueName("prepared");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  let admin: KubeClient;
  let alice: KubeClient;
  let bob: KubeClient;
  let engine: WebhookServer | undefined;
  let plugin: Plugin;
  let work: string;
  const reviews: Review[] = [];

  beforeAll(async () => {
    [admin, alice, bob] = await Promise.all([client("admin"), client("alice"), client("bob")]);
    await createNamespace(ns, ENABLED);
    work = await mkdtemp(path.join(tmpdir(), "prepared-"));
    plugin = await installPlugin();
    engine = await startEngine(FAST, {
      onReview: (route, request, response, calls) => {
        if (route !== "/validate" || request.namespace !== ns) return;
        reviews.push({ operation: request.operation, name: request.name ?? request.object?.metadata?.name ?? "", namespace: request.namespace, allowed: response.allowed, calls });
      },
    });
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    await plugin?.remove();
    await rm(work, { recursive: true, force: true });
    for (const c of [admin, alice, bob]) c?.close();
  });

  async function manifest(name: string, objects: readonly KubeObject[]): Promise<string> {
    const file = path.join(work, `${name}.yaml`);
    await writeFile(file, yamlOf(objects));
    return file;
  }

  /**
   * Opens a plugin transaction as `user` that asks kubetx to prepare the
   * ConfigMap `name`, as kubectl tx apply does, and waits until it is
   * prepared; its heartbeat never changes, so it rolls back (ClientLost)
   * unless its client says otherwise.
   */
  async function openPrepared(as: KubeClient, user: string, name: string): Promise<string> {
    const id = `t-${randomBytes(4).toString("hex")}`;
    const groups = (await selfSubject(as))?.groups ?? [];
    await as.create(transactionPath(), newTransaction(id, {
      user, mode: "plugin", clientState: "Applying", clientHeartbeat: 0,
      prepare: { members: [{ apiVersion: "v1", kind: "ConfigMap", namespace: ns, name }], groups },
    }));
    await until(`${user}'s transaction prepared`, async () => ((await admin.get<Transaction>(transactionPath(id))).status?.preparedMembers === 1 ? true : undefined));
    return id;
  }

  function creates(names: readonly string[]): Review[] {
    return reviews.filter((r) => r.operation === "CREATE" && names.includes(r.name));
  }

  it("locks the objects before kubectl runs and admits each create with no apiserver call; the transaction commits", async () => {
    const names = Array.from({ length: 12 }, (_, i) => `fast-${i}`);
    const file = await manifest("fast", names.map((n) => configMap(ns, n, { value: n })));
    const result = await plugin.tx(["apply", "-f", file]);
    expect(result.code, result.stderr).toBe(0);
    const tx = await waitResolved(admin, announcedId(result.stderr));
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.status?.preparedMembers).toBe(12);
    expect(tx.status?.members?.map((m) => m.name).sort()).toEqual([...names].sort());
    const admitted = creates(names);
    expect(admitted).toHaveLength(12);
    expect(admitted.every((r) => r.allowed)).toBe(true);
    // Only the first points alice's session at the transaction (for kubectl's prune deletes, which name none): one read, one write.
    expect(admitted.slice(1).map((r) => r.calls)).toEqual(Array(11).fill(0));
    expect(admitted[0]?.calls).toBeLessThanOrEqual(2);
    for (const n of names) expect((await readOrUndefined(admin, `${cms}/${n}`))?.data).toEqual({ value: n });
  });

  it("deletes the prepared creates when the apiserver rejects a later object, and exits 1", async () => {
    const names = ["undo-a", "undo-b", "undo-c"];
    const invalid = configMap(ns, "undo-bad", {});
    (invalid as { data: Record<string, string> }).data = { "not a valid key!": "x" };
    const file = await manifest("undo", [...names.map((n) => configMap(ns, n, { value: n })), invalid]);
    const result = await plugin.tx(["apply", "-f", file]);
    expect(result.code).toBe(1);
    const tx = await waitResolved(admin, announcedId(result.stderr), 60_000);
    expect(tx.status?.phase).toBe("RolledBack");
    expect(creates(names).slice(1).map((r) => r.calls)).toEqual([0, 0]);
    for (const n of names) expect(await readOrUndefined(admin, `${cms}/${n}`)).toBeUndefined();
    // undo-bad was locked by the prepare but never admitted (the apiserver refused it before admission): it is no member.
    expect(tx.status?.members?.map((m) => `${m.name} ${m.outcome}`).sort()).toEqual(names.map((n) => `${n} Restored`).sort());
  });

  it("fails the apply before kubectl writes anything when another transaction has locked one of its objects", async () => {
    // Bob's own prepared transaction locks held-x (it stays open until its missing heartbeat rolls it back).
    const bobs = await openPrepared(bob, "bob", "held-x");
    const file = await manifest("held", [configMap(ns, "held-y", { y: "1" }), configMap(ns, "held-x", { x: "1" })]);
    const result = await plugin.tx(["apply", "-f", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("could not prepare");
    expect(result.stderr).toContain(`is locked by transaction ${bobs} (bob)`);
    expect(result.stderr).toContain("kubectl was stopped before it read the objects");
    const tx = await waitResolved(admin, announcedId(result.stderr));
    expect(tx.status?.phase).toBe("RolledBack");
    expect(reviews.filter((r) => r.name === "held-y" || r.name === "held-x")).toEqual([]);
    expect(await readOrUndefined(admin, `${cms}/held-y`)).toBeUndefined();
    // Alice's rollback released only her own locks: bob's still holds held-x.
    expect((await waitResolved(admin, bobs, 60_000)).status?.reason).toBe("ClientLost");
  });

  it("fails the apply before kubectl writes anything when another transaction holds an object of it that exists (an update)", async () => {
    await admin.create(cms, configMap(ns, "held-u", { v: "admin" }));
    // Bob's explicit transaction, still waiting for its second member, holds held-u.
    const bobs = `t-${randomBytes(4).toString("hex")}`;
    await bob.mergePatch(`${cms}/held-u`, { metadata: { annotations: { "kubetx.io/transaction": bobs, "kubetx.io/expected-members": "2" } }, data: { v: "bob" } });
    const file = await manifest("held-u", [configMap(ns, "held-v", { v: "1" }), configMap(ns, "held-u", { v: "alice" })]);
    const result = await plugin.tx(["apply", "-f", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`configmaps ${ns}/held-u is locked by transaction ${bobs} (bob)`);
    expect(result.stderr).toContain("kubectl was stopped before it read the objects");
    expect((await waitResolved(admin, announcedId(result.stderr))).status?.phase).toBe("RolledBack");
    // kubectl wrote nothing: not even the create that came before the held update.
    expect(reviews.filter((r) => r.name === "held-v")).toEqual([]);
    expect(await readOrUndefined(admin, `${cms}/held-v`)).toBeUndefined();
    expect((await admin.get<KubeObject & { data?: Record<string, string> }>(`${cms}/held-u`)).data).toEqual({ v: "bob" });
  });

  it("refuses the write of a prepared object someone else created meanwhile, and its rollback leaves that object alone", async () => {
    const id = await openPrepared(alice, "alice", "raced");
    // The admin is exempt from every policy here: kubetx does not stop the create.
    await admin.create(cms, configMap(ns, "raced", { by: "admin" }));
    const write = alice.mergePatch(`${cms}/raced`, { metadata: { annotations: { "kubetx.io/transaction": id } }, data: { by: "alice" } });
    await expect(write).rejects.toThrow(`did not exist when kubetx prepared transaction ${id}, and someone else has created it since`);
    await alice.mergePatch(transactionPath(id), { spec: { clientState: "Failed", clientMessage: "the write was refused" } });
    const tx = await waitResolved(admin, id, 60_000);
    expect(tx.status?.phase).toBe("RolledBack");
    expect((await readOrUndefined(admin, `${cms}/raced`))?.data).toEqual({ by: "admin" });
  });

  it("still admits prepared creates from memory long after the engine started (its pulse keeps beating)", async () => {
    await sleep(4_000);
    const names = ["later-a", "later-b", "later-c"];
    const result = await plugin.tx(["apply", "-f", await manifest("later", names.map((n) => configMap(ns, n, { value: n })))]);
    expect(result.code, result.stderr).toBe(0);
    expect(creates(names).map((r) => r.calls).slice(1)).toEqual([0, 0]);
  });

  it("with --no-prepare, asks for no prepare: each create locks on its own request path", async () => {
    const names = ["plain-a", "plain-b"];
    const result = await plugin.tx(["apply", "--no-prepare", "-f", await manifest("plain", names.map((n) => configMap(ns, n, { value: n })))]);
    expect(result.code, result.stderr).toBe(0);
    const tx = await waitResolved(admin, announcedId(result.stderr));
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.spec.prepare).toBeUndefined();
    expect(tx.status?.prepared).toBeUndefined();
    expect(creates(names).every((r) => r.calls >= 1)).toBe(true);
  });

  it("with -l, prepares nothing and commits what the selector picked: kubectl skips the rest", async () => {
    const picked = configMap(ns, "sel-web", { value: "w" }, { labels: { app: "web" } });
    const skipped = configMap(ns, "sel-db", { value: "d" }, { labels: { app: "db" } });
    const result = await plugin.tx(["apply", "-l", "app=web", "-f", await manifest("selected", [picked, skipped])]);
    expect(result.code, result.stderr).toBe(0);
    const tx = await waitResolved(admin, announcedId(result.stderr));
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.spec.prepare).toBeUndefined();
    expect(tx.status?.members?.map((m) => m.name)).toEqual(["sel-web"]);
    expect(await readOrUndefined(admin, `${cms}/sel-db`)).toBeUndefined();
  });

  it("refuses a record whose spec.prepare claims groups its creator is not in", async () => {
    const create = alice.create(transactionPath(), newTransaction("t-6a7b8c9d", {
      user: "alice", mode: "plugin", clientState: "Applying", clientHeartbeat: 0,
      prepare: { members: [{ apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "any" }], groups: ["system:masters"] },
    }));
    await expect(create).rejects.toThrow("spec.prepare.groups must be your own groups");
  });
});
