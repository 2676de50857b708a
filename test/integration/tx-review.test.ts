/**
 * Reviewing what kubetx did, as a user and an admin would: the real kubectl
 * runs the plugin, which reads the real Transaction records and lock Leases
 * and the real apiserver's audit log.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TimelineJson } from "../../src/audit/format.ts";
import type { DescribeJson } from "../../src/cli/tx/describe.ts";
import type { TransactionRow } from "../../src/cli/tx/list.ts";
import type { LockRow } from "../../src/cli/tx/locks.ts";
import type { KubeClient } from "../../src/kube/index.ts";
import { KUBETX_USERNAME } from "../../src/kube/names.ts";
import type { WebhookServer } from "../../src/main.ts";
import { buildPluginBundle, pluginWrapper } from "../../src/devcluster/plugin-bundle.ts";
import type { CommandResult, User } from "../support/cluster.ts";
import { client, cluster, createNamespace, kubectl, run, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister } from "../support/engine.ts";
import { configMap, inTransaction, leftoversSettled, until, waitResolved, yamlOf } from "../support/objects.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const ENABLED = { "kubetx.io/enabled": "true" };
/** The engine's maxOpenSeconds here: the held transaction is listed and its lock read while it is open. */
const OPEN_SECONDS = 20;
/** The apiserver writes its audit log a moment after it answers. */
const AUDIT_FLUSH_TIMEOUT_MS = 10_000;
/** More than the audit reader's 2 s window, so the two stories' requests cannot be taken for one apply. */
const APART_MS = 2_500;

function newId(): string {
  return `t-${randomBytes(4).toString("hex")}`;
}

/** The transaction kubectl was told it joined (kubetx's warning line). */
function joined(stderr: string): string {
  const match = /kubetx: joined transaction (t-[a-z0-9-]+)/.exec(stderr);
  if (!match?.[1]) throw new Error(`kubectl printed no kubetx warning:\n${stderr}`);
  return match[1];
}

function parsed<T>(result: CommandResult): T {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe("kubectl tx list, describe, locks and audit", () => {
  let bin: string;
  let env: NodeJS.ProcessEnv;
  let admin: KubeClient;
  let engine: WebhookServer | undefined;
  const ns = uniqueName("review");
  const committed = newId();
  let rolledBack = "";

  /** `kubectl tx ARGS` as alice (or `user`: KUBECONFIG), through kubectl's own plugin lookup. */
  function kubectlTx(args: readonly string[], user: User = "alice"): Promise<CommandResult> {
    return run(cluster().kubectl, ["tx", ...args], { env: { ...env, KUBECONFIG: cluster().kubeconfigs[user] } });
  }

  beforeAll(async () => {
    bin = await mkdtemp(path.join(tmpdir(), "kubectl-tx-bin-"));
    await writeFile(path.join(bin, "kubectl-tx"), pluginWrapper(path.join(REPO, "node_modules/.bin/node"), await buildPluginBundle(REPO)), { mode: 0o755 });
    const { KUBECTL: _ignored, ...rest } = process.env;
    env = { ...rest, PATH: [bin, cluster().binariesDir, process.env.PATH].join(path.delimiter), KUBECONFIG: cluster().kubeconfigs.alice };
    admin = await client("admin");
    await createNamespace(ns, ENABLED);
    // On the port the apiserver's audit and authorization webhooks call, as
    // kubetx dev runs: users list their own transactions through it.
    // Open transactions stay open long enough for a few kubectl tx runs on a
    // loaded machine (each starts node and kubectl) before kubetx times them out.
    engine = await startEngine({ auditSink: true, maxOpenSeconds: OPEN_SECONDS }, { port: cluster().auditSinkPort });

    // alice's explicit transaction of two objects, which commits.
    const explicit = [configMap(ns, "commit-a", { v: "a" }), configMap(ns, "commit-b", { v: "b" })].map((o) => inTransaction(o, committed, 2));
    const first = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(explicit) });
    expect(first.code, first.stderr).toBe(0);
    expect((await waitResolved(admin, committed)).status?.phase).toBe("Committed");
    await sleep(APART_MS);

    // alice's plain kubectl apply whose last object the apiserver rejects: kubetx rolls the other two back.
    const plain = [configMap(ns, "plain-a", { v: "a" }), configMap(ns, "plain-b", { v: "b" }), configMap(ns, "plain-bad", { "bad key": "spaces are not allowed" })];
    const second = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(plain) });
    expect(second.code).not.toBe(0);
    rolledBack = joined(second.stderr);
    expect((await waitResolved(admin, rolledBack)).status?.phase).toBe("RolledBack");
  });

  afterAll(async () => {
    await unregister();
    await engine?.close();
    admin?.close();
    await rm(bin, { recursive: true, force: true });
  });

  it("lists alice's transactions by phase and namespace, newest first", async () => {
    const committedRows = parsed<TransactionRow[]>(await kubectlTx(["list", "--user", "alice", "--phase", "Committed", "-o", "json"]));
    expect(committedRows.map((r) => r.id)).toContain(committed);
    expect(committedRows.map((r) => r.id)).not.toContain(rolledBack);
    expect(committedRows.find((r) => r.id === committed)).toMatchObject({ user: "alice", mode: "explicit", phase: "Committed", members: 2 });

    const rolledBackRows = parsed<TransactionRow[]>(await kubectlTx(["list", "--user", "alice", "--phase", "rolledback", "--since", "5m", "-o", "json"]));
    expect(rolledBackRows.find((r) => r.id === rolledBack)).toMatchObject({ mode: "transparent", phase: "RolledBack" });
    expect(rolledBackRows.map((r) => r.id)).not.toContain(committed);

    const table = await kubectlTx(["list", "-n", ns]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +USER +MODE +PHASE +MEMBERS +AGE +REASON$/);
    expect(lines.slice(1).map((l) => l.split(/ +/).slice(0, 4).join(" "))).toEqual([
      `${rolledBack} alice transparent RolledBack`,
      `${committed} alice explicit Committed`,
    ]);
  });

  it("shows each user their own transactions, and everyone's only to admins and those granted kubetx:viewer", async () => {
    const ids = (rows: TransactionRow[]): string[] => rows.map((r) => r.id);
    // bob applies one of his own.
    const bobs = newId();
    const applied = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([inTransaction(configMap(ns, "bobs", { v: "b" }), bobs, 1)]) });
    expect(applied.code, applied.stderr).toBe(0);
    expect((await waitResolved(admin, bobs)).status?.phase).toBe("Committed");

    // alice: her own by default, through kubetx's authorization webhook (RBAC gives her no list).
    const alices = ids(parsed<TransactionRow[]>(await kubectlTx(["list", "-o", "json"])));
    expect(alices).toEqual(expect.arrayContaining([committed, rolledBack]));
    expect(alices).not.toContain(bobs);
    for (const args of [["list", "--all"], ["list", "--user", "bob"]]) {
      const refused = await kubectlTx(args);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^kubectl tx: you may not list (everyone's transactions|the transactions of bob) \(.*alice.*\); you may list only your own .*kubetx:viewer role/);
    }
    const plain = await kubectl(["get", "transactions"], { user: "alice" });
    expect(plain.stderr).toContain('User "alice" cannot list resource "transactions"');
    // The apiserver names the authorizer before its reason: one "kubetx:", saying what to do.
    expect(plain.stderr).toContain("kubetx: you may list only your own transactions, with the field selector spec.user=alice");
    expect(plain.stderr).not.toContain("kubetx: kubetx:");
    const selected = await kubectl(["get", "transactions", "--field-selector", "spec.user=alice", "-o", "name"], { user: "alice" });
    expect(selected.stdout).toContain(`transaction.kubetx.io/${committed}`);

    // bob: his own (other files' may be there too), not alice's.
    const bobsRows = parsed<TransactionRow[]>(await kubectlTx(["list", "-o", "json"], "bob"));
    expect(ids(bobsRows)).toContain(bobs);
    expect(ids(bobsRows)).not.toEqual(expect.arrayContaining([committed]));
    expect(bobsRows.filter((r) => r.user !== "bob")).toEqual([]);

    // Every user may read one record by its id (kubectl tx apply follows its own that way); ids are not listed to others.
    expect(parsed<DescribeJson>(await kubectlTx(["describe", committed, "-o", "json"], "bob")).user).toBe("alice");

    // admin: everyone's with --all, their own (none) without.
    const everyone = ids(parsed<TransactionRow[]>(await kubectlTx(["list", "--all", "-o", "json"], "admin")));
    expect(everyone).toEqual(expect.arrayContaining([committed, rolledBack, bobs]));
    const adminsOwn = parsed<TransactionRow[]>(await kubectlTx(["list", "-o", "json"], "admin"));
    expect(adminsOwn.every((r) => r.user === "admin")).toBe(true);

    // bob granted kubetx:viewer: everyone's.
    const bindings = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
    await admin.create(bindings, {
      apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "kubetx-viewers-test" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "kubetx:viewer" },
      subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "bob" }],
    });
    try {
      await until("bob's kubetx:viewer binding to take effect", async () => ((await kubectlTx(["list", "--all", "-o", "json"], "bob")).code === 0 ? true : undefined));
      expect(ids(parsed<TransactionRow[]>(await kubectlTx(["list", "--all", "-o", "json"], "bob")))).toEqual(expect.arrayContaining([committed, bobs]));
    } finally {
      await admin.delete(`${bindings}/kubetx-viewers-test`);
    }
  });

  it("describes the rolled-back apply with every member restored", async () => {
    const described = parsed<DescribeJson>(await kubectlTx(["describe", rolledBack, "-o", "json"]));
    expect(described).toMatchObject({ id: rolledBack, user: "alice", mode: "transparent", phase: "RolledBack", reason: "MemberFailed" });
    // The failure names the rejected member; the message sums it up and does not repeat it.
    const failure = described.failure ?? "";
    expect(failure).toContain(`${ns}/plain-bad`);
    expect(described.message).toMatch(/^a member failed \(see failure\)/);
    const occurrences = (json: string): number => json.split(JSON.stringify(failure).slice(1, -1)).length - 1;
    expect(occurrences(JSON.stringify(described))).toBe(1);
    // The record itself, as kubectl get -o yaml and kubectl describe transaction print it.
    const record = await kubectl(["get", "transaction", rolledBack, "-o", "json"], { user: "admin" });
    expect(record.code, record.stderr).toBe(0);
    expect(occurrences(JSON.stringify((JSON.parse(record.stdout) as { status?: unknown }).status))).toBe(1);
    expect(described.members.map((m) => `${m.operation} ${m.object} ${m.outcome}`).sort()).toEqual([
      `CREATE configmaps ${ns}/plain-a Restored`, `CREATE configmaps ${ns}/plain-b Restored`,
    ]);

    const table = await kubectlTx(["describe", rolledBack]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain("Phase:        RolledBack");
    expect(table.stdout).toMatch(new RegExp(`CREATE +configmaps ${ns}/plain-a +Restored`));
    expect(table.stdout).toMatch(/Resolved: +\d{4}-\d\d-\d\dT/);
    expect(table.stdout.split(failure.split("\n")[0] ?? failure).length - 1).toBe(1);

    const missing = await kubectlTx(["describe", "t-00000000"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe("kubectl tx: transaction t-00000000 not found; list them with 'kubectl tx list'");
  });

  it("shows an admin which transaction holds which object while it is open, and tells alice she needs an admin kubeconfig", async () => {
    // alice's explicit transaction expects two members and gets one: it stays open, holding the lock, until kubetx times it out.
    const held = newId();
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "held-a", { v: "1" }), held, 2)]) });
    expect(applied.code, applied.stderr).toBe(0);

    // Open: its record counts the member but does not list it yet; kubectl tx list -n finds it by the namespaces kubetx notes.
    const open = await until("kubetx notes the open transaction's namespace", async () => {
      const rows = parsed<TransactionRow[]>(await kubectlTx(["list", "-n", ns, "--phase", "Open", "-o", "json"]));
      return rows.find((r) => r.id === held);
    });
    expect(open).toMatchObject({ user: "alice", mode: "explicit", phase: "Open", members: 1 });

    const locks = parsed<LockRow[]>(await kubectlTx(["locks", "-o", "json", "--kubeconfig", cluster().kubeconfigs.admin]));
    expect(locks.filter((l) => l.transaction === held)).toEqual([expect.objectContaining({
      object: `configmaps ${ns}/held-a`, namespace: ns, name: "held-a", user: "alice", operation: "CREATE", phase: "Open",
    })]);
    const lock = locks.find((l) => l.transaction === held);
    expect(Date.now() - Date.parse(lock?.acquired ?? "")).toBeLessThan(60_000);
    expect(lock?.leaseDurationSeconds).toBeGreaterThan(0);

    const table = await kubectlTx(["locks", "--kubeconfig", cluster().kubeconfigs.admin]);
    expect(table.stdout).toMatch(/^OBJECT +TRANSACTION +PHASE +USER +OPERATION +ACQUIRED +LEASE\n/);
    expect(table.stdout).toMatch(new RegExp(`configmaps ${ns}/held-a +${held} +Open +alice +CREATE +\\S+Z \\(\\d+s ago\\) +\\d+s`));

    const asAlice = await kubectlTx(["locks"]);
    expect(asAlice.code).toBe(1);
    expect(asAlice.stdout).toBe("");
    expect(asAlice.stderr).toMatch(/^kubectl tx: you may not list leases in kubetx-system, where kubetx keeps its locks \(.*alice.*\); use an admin kubeconfig \(--kubeconfig\), or ask a cluster admin for a role that grants get and list on leases \(coordination\.k8s\.io\) in kubetx-system\n$/);

    // kubetx rolls it back at its maximum open time; then the lock is gone.
    expect((await waitResolved(admin, held, (OPEN_SECONDS + 15) * 1000)).status?.phase).toBe("RolledBack");
    expect(await leftoversSettled(admin, held)).toEqual([]);
    const after = parsed<LockRow[]>(await kubectlTx(["locks", "-o", "json", "--kubeconfig", cluster().kubeconfigs.admin]));
    expect(after.filter((l) => l.transaction === held)).toEqual([]);
  });

  it("finds both applies in the real audit log: the committed creates, the invalid ConfigMap the apiserver rejected before kubetx, and kubetx's restores", async () => {
    let timelines: TimelineJson[] = [];
    const deadline = Date.now() + AUDIT_FLUSH_TIMEOUT_MS;
    const complete = (): boolean => auditComplete(timelines, committed, rolledBack);
    do {
      timelines = parsed<TimelineJson[]>(await kubectlTx(["audit", "--log", cluster().auditLog, "--user", "alice", "-o", "json"]));
      if (!complete()) await sleep(250);
    } while (!complete() && Date.now() < deadline);

    // The key the reader groups by, exactly as this apiserver wrote it: kubetx's annotation under the webhook's name.
    expect(await readFile(cluster().auditLog, "utf8")).toContain(`"validate.kubetx.io/transaction":"${committed}"`);
    const ofCommitted = timelines.find((t) => t.transaction === committed);
    expect(ofCommitted?.users).toEqual(["alice"]);
    expect(ofCommitted?.requests.map((r) => [r.user, r.verb, r.object, r.code, r.decision, r.rejectedBeforeKubetx])).toEqual([
      ["alice", "create", `configmaps ${ns}/commit-a`, 201, "member", false],
      ["alice", "create", `configmaps ${ns}/commit-b`, 201, "member", false],
    ]);
    expect(ofCommitted?.requests.every((r) => r.lock?.startsWith("lk-"))).toBe(true);

    expectRolledBack(timelines.find((t) => t.transaction === rolledBack), ns);

    const table = await kubectlTx(["audit", "--log", cluster().auditLog, "--transaction", rolledBack]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^transaction ${rolledBack} by alice, \\S+ to \\S+: 2 requests, 1 rejected before kubetx, 2 restores by kubetx$`));
    expect(lines[1]).toMatch(/^TIME +USER +VERB +OBJECT +CODE +DECISION +MESSAGE$/);
    expect(lines[4]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} +alice +create +configmaps ${ns}/plain-bad +422 +rejected before kubetx +ConfigMap "plain-bad" is invalid`));
  });
});

/** Whether the audit log has caught up: both committed creates, the rejected create, and the rollback's two deletes. */
function auditComplete(timelines: readonly TimelineJson[], committed: string, rolledBack: string): boolean {
  const requests = (id: string): TimelineJson["requests"] => timelines.find((t) => t.transaction === id)?.requests ?? [];
  const ofRolledBack = requests(rolledBack);
  return requests(committed).length >= 2 && ofRolledBack.some((r) => r.rejectedBeforeKubetx) && ofRolledBack.filter((r) => r.decision === "restore").length >= 2;
}

/** The rolled-back apply: its span and users are alice's; the rollback's deletes follow it, made by kubetx's service account (in either order). */
function expectRolledBack(timeline: TimelineJson | undefined, ns: string): void {
  expect(timeline?.users).toEqual(["alice"]);
  const requests = timeline?.requests ?? [];
  const rows = requests.map((r) => [r.verb, r.object, r.code, r.rejectedBeforeKubetx ? "rejected before kubetx" : r.decision]);
  expect(rows.slice(0, 3)).toEqual([
    ["create", `configmaps ${ns}/plain-a`, 201, "member"],
    ["create", `configmaps ${ns}/plain-b`, 201, "member"],
    ["create", `configmaps ${ns}/plain-bad`, 422, "rejected before kubetx"],
  ]);
  expect(rows.slice(3).sort()).toEqual([
    ["delete", `configmaps ${ns}/plain-a`, 200, "restore"],
    ["delete", `configmaps ${ns}/plain-b`, 200, "restore"],
  ]);
  expect(requests.slice(3).map((r) => r.user)).toEqual([KUBETX_USERNAME, KUBETX_USERNAME]);
  expect(requests[2]?.message).toContain('ConfigMap "plain-bad" is invalid');
}
