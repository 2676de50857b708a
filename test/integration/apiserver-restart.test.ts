/**
 * DESIGN.md section 4: the apiserver restarted mid-transaction. kubetx
 * rides out the outage, and the transaction still ends all-or-nothing.
 * The global setup restarts the apiserver when it exits, as a kubelet
 * would; this test kills it.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/index.ts";
import { cluster, kubectl, uniqueName } from "../support/cluster.ts";
import { useEngine } from "../support/engine.ts";
import { configMap, inTransaction, leftoversSettled, readOrUndefined, waitResolved, yamlOf } from "../support/objects.ts";

/** The recorded pid whose command is the apiserver (the file lists the whole control plane). */
async function apiserverPid(): Promise<number> {
  const pids = (await readFile(path.join(cluster().dir, "controlplane.pids"), "utf8")).trim().split("\n").map(Number);
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.split("\0").some((arg) => path.basename(arg) === "kube-apiserver")) return pid;
  }
  return 0;
}

/** Until the restarted apiserver serves kubetx's own kinds again (it answers 503 while it installs them). */
async function untilApiserverAnswers(admin: KubeClient): Promise<void> {
  for (let i = 0; i < 300; i += 1) {
    try {
      await admin.get("/apis/kubetx.io/v1alpha1/transactions");
      return;
    } catch {
      await sleep(200);
    }
  }
  throw new Error("the apiserver did not come back");
}

describe("the apiserver restarted mid-transaction", () => {
  const ns = uniqueName("restart");
  // A restart on a loaded machine takes several seconds: room for the straddling transaction to complete.
  const fixture = useEngine(ns, undefined, { maxOpenSeconds: 20 });
  let admin: KubeClient;
  beforeAll(() => {
    admin = fixture.admin();
  });

  it("rolls back the members written before the restart once the transaction cannot complete", async () => {
    const id = "t-restart1";
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "before", { v: "1" })].map((o) => inTransaction(o, id, 2))) });
    expect(applied.code).toBe(0);
    const old = await apiserverPid();
    process.kill(old, "SIGKILL");
    await sleep(500);
    await untilApiserverAnswers(admin);
    expect(await apiserverPid()).not.toBe(old);
    const tx = await waitResolved(admin, id, 40_000);
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.reason).toBe("Timeout");
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/before`)).toBeUndefined();
    expect(await leftoversSettled(admin, id)).toEqual([]);
  });

  it("commits a transaction whose members straddle the restart", async () => {
    const id = "t-restart2";
    const docs = [configMap(ns, "first", { v: "1" }), configMap(ns, "second", { v: "2" })].map((o) => inTransaction(o, id, 2));
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([docs[0] ?? {}]) })).code).toBe(0);
    process.kill(await apiserverPid(), "SIGKILL");
    await sleep(500);
    await untilApiserverAnswers(admin);
    const second = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([docs[1] ?? {}]) });
    expect(second.code, second.stderr).toBe(0);
    const tx = await waitResolved(admin, id, 40_000);
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.status?.members?.map((m) => m.name)).toEqual(["first", "second"]);
  });
});

/**
 * F18 of the fault campaign: a plain apply's write that fails before
 * admission is known only from the apiserver's audit report, which the
 * batch backend holds in memory for a moment. A crash then loses it, so a
 * transparent transaction open across a lost connection is rolled back
 * instead of committed on a report kubetx cannot vouch for.
 */
describe("a plain apply open while the apiserver crashes", () => {
  const ns = uniqueName("restart-plain");
  // Long enough that the crash lands inside the quiet window, after kubectl is done.
  const fixture = useEngine(ns, undefined, { quietWindowMs: 5_000, maxOpenSeconds: 30 });
  let admin: KubeClient;
  beforeAll(() => {
    admin = fixture.admin();
  });

  it("rolls back, naming the lost connection, while an apply resolved before the crash stays committed", async () => {
    const before = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "settled", { v: "1" })]) });
    expect(before.code, before.stderr).toBe(0);
    const settled = await waitResolved(admin, joinedTransaction(before.stderr), 20_000);
    expect(settled.status?.phase).toBe("Committed");

    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "straddles", { v: "1" })]) });
    expect(applied.code, applied.stderr).toBe(0);
    const id = joinedTransaction(applied.stderr);
    process.kill(await apiserverPid(), "SIGKILL");
    await sleep(500);
    await untilApiserverAnswers(admin);

    const tx = await waitResolved(admin, id, 40_000);
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.reason).toBe("ConnectionLost");
    expect(tx.status?.message).toContain("run the apply again");
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/straddles`)).toBeUndefined();
    expect((await admin.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/settled`)).data).toEqual({ v: "1" });
    expect(await leftoversSettled(admin, id)).toEqual([]);
  });
});

function joinedTransaction(stderr: string): string {
  const id = /kubetx: joined transaction (t-[0-9a-f]+)/.exec(stderr)?.[1];
  if (!id) throw new Error(`kubectl printed no kubetx warning:\n${stderr}`);
  return id;
}
