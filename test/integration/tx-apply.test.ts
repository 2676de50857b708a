/**
 * `kubectl tx apply` as a user runs it: the real kubectl finds the plugin
 * on PATH, the plugin runs the real kubectl, and the kubetx engine (started
 * in this process) commits or rolls back.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import type { TransactionRow } from "../../src/cli/tx/list.ts";
import type { Transaction } from "../../src/transactions/model.ts";
import { CLIENT_HEARTBEAT_PERIOD_MS, CLIENT_HEARTBEAT_TIMEOUT_MS, transactionPath } from "../../src/transactions/model.ts";
import { buildPluginBundle, pluginWrapper } from "../../src/devcluster/plugin-bundle.ts";
import { PREPARED_HOLD_EXTRA_MS } from "../../src/locks/pulse.ts";
import type { CommandResult } from "../support/cluster.ts";
import { client, cluster, createNamespace, kubectl, run, uniqueName } from "../support/cluster.ts";
import { FAST, startEngine, unregister } from "../support/engine.ts";
import { configMap, inTransaction, leftoversSettled, readOrUndefined, until, waitResolved, yamlOf } from "../support/objects.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const ENABLED = { "kubetx.io/enabled": "true" };

function configMapYaml(name: string, data: Record<string, string>): string {
  const lines = Object.entries(data).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${lines.join("\n")}\n`;
}

/** The id kubectl tx printed, from `transaction t-xxxx committed` or `rolled back`. */
function transactionId(result: CommandResult): string {
  const match = /transaction (t-[0-9a-f]{8}) /.exec(result.stdout);
  if (!match?.[1]) throw new Error(`no transaction id in output:\n${result.stdout}\n${result.stderr}`);
  return match[1];
}

interface AuditEvent {
  readonly verb?: string;
  readonly stage?: string;
  readonly user?: { username?: string };
  readonly objectRef?: { resource?: string; namespace?: string; name?: string };
}

/** Who the apiserver's audit log says created or changed a ConfigMap (the log may trail the request a little). */
async function writersOf(namespace: string, name: string): Promise<string[]> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const events = (await readFile(cluster().auditLog, "utf8")).split("\n").filter(Boolean).map((line) => JSON.parse(line) as AuditEvent);
    const writes = events.filter((e) => e.stage === "ResponseComplete" && ["create", "patch", "update"].includes(e.verb ?? "") &&
      e.objectRef?.resource === "configmaps" && e.objectRef.namespace === namespace && e.objectRef.name === name);
    if (writes.length > 0) return [...new Set(writes.map((e) => e.user?.username ?? "?"))];
    await sleep(100);
  }
  return [];
}

/** The id kubectl tx announced on stderr (`applying N objects as transaction t-xxxx`). */
function announcedId(stderr: string): string | undefined {
  return /as transaction (t-[0-9a-f]{8})/.exec(stderr)?.[1];
}

/**
 * What a resolver pass adds to the bound on a shared 2-core machine: its own
 * reads (record, locks) and the status write that closes the transaction.
 */
const PASS_SLACK_MS = 1_000;
/** The engine's limits (startEngine runs with FAST). */
const MAX_OPEN_SECONDS = Number(FAST.maxOpenSeconds);
const RESOLVER_PERIOD_MS = Number(FAST.resolverPeriodMs);
const LATE_WRITE_MS = Number(FAST.lateWriteMs);

async function transactionNames(admin: KubeClient): Promise<string[]> {
  const list = await admin.get<{ items: Transaction[] }>(transactionPath());
  return list.items.map((t) => t.metadata?.name ?? "");
}

describe("kubectl tx apply", () => {
  let bin: string;
  /** The plugin as `kubetx dev` installs it (src/devcluster/plugin-bundle.ts). */
  let bundle: string;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let admin: KubeClient;
  let engine: WebhookServer | undefined;
  const ns = uniqueName("txapply");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;

  /** `kubectl tx ARGS` as alice, through kubectl's own plugin lookup. */
  function kubectlTx(args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
    return run(cluster().kubectl, ["tx", ...args], { env, ...options });
  }

  beforeAll(async () => {
    bin = await mkdtemp(path.join(tmpdir(), "kubectl-tx-bin-"));
    work = await mkdtemp(path.join(tmpdir(), "kubectl-tx-work-"));
    bundle = await buildPluginBundle(REPO);
    await writeFile(path.join(bin, "kubectl-tx"), pluginWrapper(path.join(REPO, "node_modules/.bin/node"), bundle), { mode: 0o755 });
    const { KUBECTL: _ignored, ...rest } = process.env;
    env = { ...rest, PATH: [bin, cluster().binariesDir, process.env.PATH].join(path.delimiter), KUBECONFIG: cluster().kubeconfigs.alice };
    admin = await client("admin");
    await createNamespace(ns, ENABLED);
    // On the port the apiserver's authorization webhook calls: alice lists
    // her own transactions (kubectl tx list) through it, as RBAC lets her
    // get but not list them.
    engine = await startEngine(FAST, { port: cluster().auditSinkPort });
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    admin?.close();
    await rm(bin, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it("is found by kubectl as a plugin and prints its help", async () => {
    const help = await kubectlTx(["apply", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("kubectl tx apply -f FILE|DIR");
  });

  it("commits a three-object apply, annotates every object and leaves the user's file unchanged", async () => {
    const file = path.join(work, "app.yaml");
    const text = [configMapYaml("commit-a", { v: "a" }), configMapYaml("commit-b", { v: "b" }), configMapYaml("commit-c", { v: "c" })].join("---\n");
    await writeFile(file, text);

    const result = await kubectlTx(["apply", "-f", file, "-n", ns]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("configmap/commit-a created");
    expect(result.stdout).toMatch(/transaction t-[0-9a-f]{8} committed: 3 members/);
    const id = transactionId(result);
    for (const name of ["commit-a", "commit-b", "commit-c"]) {
      expect(result.stdout).toContain(`  CREATE configmaps ${ns}/${name}: Committed`);
      const live = await admin.get(`${cms}/${name}`);
      expect(live.metadata?.annotations?.["kubetx.io/transaction"]).toBe(id);
    }
    const record = await admin.get<Transaction>(transactionPath(id));
    expect(record.spec).toMatchObject({ user: "alice", mode: "plugin", clientState: "Applied", clientHeartbeat: expect.any(Number) as number });
    // No --timeout: the transaction lives as long as kubectl runs, not the policy's maxOpenSeconds.
    expect(record.spec.timeoutSeconds).toBeUndefined();
    expect(record.status?.phase).toBe("Committed");
    expect(await readFile(file, "utf8")).toBe(text);
    expect(await leftoversSettled(admin, id)).toEqual([]);
  });

  it("rolls back the earlier objects when the apiserver rejects the last one, and exits 1", async () => {
    const dir = path.join(work, "rejected");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    await writeFile(path.join(dir, "1-first.yaml"), configMapYaml("reject-a", { v: "a" }));
    await writeFile(path.join(dir, "2-second.yml"), configMapYaml("reject-b", { v: "b" }));
    await writeFile(path.join(dir, "3-bad.json"), JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "reject-c" }, data: { "bad key": "spaces are not allowed" } }));

    const result = await kubectlTx(["apply", "-f", dir, "-n", ns, "--timeout", "30s"]);

    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(1);
    expect(result.stderr).toContain("bad key");
    expect(result.stdout).toMatch(/transaction t-[0-9a-f]{8} rolled back: ApplyFailed: /);
    expect(result.stdout).toContain(`  CREATE configmaps ${ns}/reject-a: Restored`);
    expect(result.stdout).toContain(`  CREATE configmaps ${ns}/reject-b: Restored`);
    for (const name of ["reject-a", "reject-b", "reject-c"]) expect(await readOrUndefined(admin, `${cms}/${name}`)).toBeUndefined();
    const record = await admin.get<Transaction>(transactionPath(transactionId(result)));
    expect(record.spec.clientState).toBe("Failed");
    expect(record.spec.clientMessage).toContain('The ConfigMap "reject-c" is invalid');
    expect(record.spec.clientMessage).not.toContain("Warning:");
    // kubectl exited on its own, so no prepared create of it can still land: the rollback holds no lock for one,
    // neither PREPARED_HOLD_EXTRA_MS nor the late-write window for reject-c, whose create the apiserver refused.
    expect(record.status?.preparedMembers).toBe(3);
    expect(record.spec.clientSettled).toBe(true);
    const heldMs = Date.parse(record.status?.resolvedAt ?? "") - Date.parse(record.status?.closedAt ?? "");
    expect(heldMs).toBeLessThan(Math.min(PREPARED_HOLD_EXTRA_MS, LATE_WRITE_MS));
    // The plugin prints the verdict once the record is resolved; the resolver releases the locks and heartbeat right after.
    expect(await leftoversSettled(admin, record.metadata?.name ?? "")).toEqual([]);
  });

  it("with -k, applies what kubectl's kustomize renders as one transaction, and rolls it all back when kustomize's output fails", async () => {
    const dir = path.join(work, "kustomized");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    await writeFile(path.join(dir, "configmaps.yaml"), [configMapYaml("kust-a", { v: "a" }), configMapYaml("kust-b", { v: "b" })].join("---\n"));
    await writeFile(path.join(dir, "kustomization.yaml"), `namespace: ${ns}\nnamePrefix: app-\nlabels:\n- pairs: {team: shop}\nresources:\n- configmaps.yaml\n`);

    const result = await kubectlTx(["apply", "-k", dir]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/transaction t-[0-9a-f]{8} committed: 2 members/);
    const id = transactionId(result);
    for (const name of ["app-kust-a", "app-kust-b"]) {
      expect(result.stdout).toContain(`  CREATE configmaps ${ns}/${name}: Committed`);
      const live = await admin.get(`${cms}/${name}`);
      expect(live.metadata?.labels).toEqual({ team: "shop" });
      expect(live.metadata?.annotations?.["kubetx.io/transaction"]).toBe(id);
    }

    // A kustomization whose second object the apiserver rejects: the first one goes back.
    await writeFile(path.join(dir, "configmaps.yaml"), [configMapYaml("kust-c", { v: "c" }), configMapYaml("kust-d", { "bad key": "x" })].join("---\n"));
    const failed = await kubectlTx(["apply", "-k", dir, "--timeout", "30s"]);
    expect(failed.code, `${failed.stdout}\n${failed.stderr}`).toBe(1);
    expect(failed.stdout).toContain(`  CREATE configmaps ${ns}/app-kust-c: Restored`);
    expect(await readOrUndefined(admin, `${cms}/app-kust-c`)).toBeUndefined();

    const broken = await kubectlTx(["apply", "-k", path.join(work, "no-such-dir")]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/^kubectl tx: kubectl kustomize \S+no-such-dir failed: .+; fix the kustomization and apply again$/m);
  });

  it("with --server-side, applies an object too big for client-side apply, and restores it when the apply fails", async () => {
    const big = (v: string, extra: string[] = []): string => [`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-big\ndata:\n  v: "${v.repeat(600_000)}"\n`, ...extra].join("---\n");
    const file = path.join(work, "ssa.yaml");
    await writeFile(file, big("a"));
    const applied = await kubectlTx(["apply", "--server-side", "--field-manager", "ci", "-f", file, "-n", ns]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain("configmap/ssa-big serverside-applied");
    expect(applied.stdout).toMatch(/transaction t-[0-9a-f]{8} committed: 1 member/);
    const live = await admin.get(`${cms}/ssa-big`);
    expect(JSON.stringify(live.metadata?.managedFields)).toContain('"manager":"ci"');

    await writeFile(file, big("b", [configMapYaml("ssa-bad", { "bad key": "x" })]));
    const failed = await kubectlTx(["apply", "--server-side", "--field-manager", "ci", "-f", file, "-n", ns, "--timeout", "30s"]);
    expect(failed.code, `${failed.stdout}\n${failed.stderr}`).toBe(1);
    expect(failed.stdout).toContain(`  UPDATE configmaps ${ns}/ssa-big: Restored`);
    expect(((await admin.get(`${cms}/ssa-big`)).data as Record<string, string>).v).toBe("a".repeat(600_000));
  });

  /** Alice's transactions whose status names this test's namespace (a member, or a write refused there). */
  async function alicesIn(): Promise<string[]> {
    const list = await admin.get<{ items: Transaction[] }>(transactionPath());
    return list.items.filter((t) => t.spec.user === "alice" && JSON.stringify(t.status ?? {}).includes(`${ns}/`)).map((t) => t.metadata?.name ?? "");
  }

  it("with --server-side over a client-side apply, kubectl's migration writes join the transaction and roll back with it", async () => {
    const before = new Set(await alicesIn());
    const file = path.join(work, "migrate.yaml");
    await writeFile(file, [configMapYaml("migrate-a", { v: "1" }), configMapYaml("migrate-b", { v: "1" })].join("---\n"));
    const created = await kubectlTx(["apply", "-f", file, "-n", ns]);
    expect(created.code, created.stderr).toBe(0);
    const clientSide = await admin.get(`${cms}/migrate-b`);

    // kubectl's server-side apply patch, then (same object, annotation untouched) its migration of last-applied-configuration.
    await writeFile(file, configMapYaml("migrate-a", { v: "2" }));
    const migrated = await kubectlTx(["apply", "--server-side", "-f", file, "-n", ns]);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stderr).not.toContain("failed to migrate");
    expect(migrated.stdout).toContain(`  UPDATE configmaps ${ns}/migrate-a: Committed`);
    const a = await admin.get(`${cms}/migrate-a`);
    expect(a.data).toEqual({ v: "2" });
    expect(JSON.stringify(a.metadata?.managedFields)).toContain('"manager":"kubectl-last-applied"');

    // The same migration in an apply that fails: the object comes back as client-side apply left it, annotation and owners too.
    await writeFile(file, [configMapYaml("migrate-b", { v: "2" }), configMapYaml("migrate-bad", { "bad key": "x" })].join("---\n"));
    const failed = await kubectlTx(["apply", "--server-side", "-f", file, "-n", ns, "--timeout", "30s"]);
    expect(failed.code, `${failed.stdout}\n${failed.stderr}`).toBe(1);
    expect(failed.stderr).not.toContain("failed to migrate");
    expect(failed.stdout).toContain(`  UPDATE configmaps ${ns}/migrate-b: Restored`);
    const b = await admin.get(`${cms}/migrate-b`);
    expect(b.data).toEqual({ v: "1" });
    const lastApplied = "kubectl.kubernetes.io/last-applied-configuration";
    expect(b.metadata?.annotations?.[lastApplied]).toBe(clientSide.metadata?.annotations?.[lastApplied]);
    expect(JSON.stringify(b.metadata?.managedFields)).not.toContain('"manager":"kubectl-last-applied"');
    // No write of the three applies started a transaction of its own.
    const mine = new Set([created, migrated, failed].map(transactionId));
    expect((await alicesIn()).filter((id) => !before.has(id) && !mine.has(id))).toEqual([]);
  });

  it("reads stdin, and uses --kubeconfig and --context over KUBECONFIG for kubectl and for itself", async () => {
    const bobsEnv = { ...env, KUBECONFIG: cluster().kubeconfigs.bob };
    const result = await kubectlTx(["apply", "-f", "-", "-n", ns, "--kubeconfig", cluster().kubeconfigs.alice, "--context", "alice"],
      { input: configMapYaml("stdin-a", { v: "a" }), env: bobsEnv });

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`  CREATE configmaps ${ns}/stdin-a: Committed`);
    const record = await admin.get<Transaction>(transactionPath(transactionId(result)));
    expect(record.spec.user).toBe("alice");
    expect(await writersOf(ns, "stdin-a")).toEqual(["alice"]);
  });

  it("with --dry-run=server, creates neither objects nor a Transaction record and returns kubectl's exit code", async () => {
    const file = path.join(work, "dry.yaml");
    await writeFile(file, configMapYaml("dry-a", { v: "a" }));
    const before = await transactionNames(admin);

    const result = await kubectlTx(["apply", "-f", file, "-n", ns, "--dry-run=server"]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("configmap/dry-a created (server dry run)");
    expect(result.stdout).not.toContain("transaction");
    expect(await readOrUndefined(admin, `${cms}/dry-a`)).toBeUndefined();
    expect(await transactionNames(admin)).toEqual(before);
  });

  it("with --dry-run=server, reports that another open transaction holds an object, and exits non-zero", async () => {
    // bob's explicit transaction expects two members and gets one: it stays open, holding the lock, until its timeout.
    const bobs = `t-${randomBytes(4).toString("hex")}`;
    const held = inTransaction(configMap(ns, "held-a", { v: "bob" }), bobs, 2);
    expect((await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([held]) })).code).toBe(0);
    const file = path.join(work, "held.yaml");
    await writeFile(file, configMapYaml("held-a", { v: "alice" }));

    const result = await kubectlTx(["apply", "-f", file, "-n", ns, "--dry-run=server"]);

    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`configmaps ${ns}/held-a is locked by transaction ${bobs} (bob)`);
    // When bob's lets go, as an explicit transaction with a member count does, with the engine's limits.
    expect(result.stderr).toContain(`it commits once all 2 of its members have arrived; if some are missing, it rolls back ${MAX_OPEN_SECONDS} s after it opened`);
    // A dry run opens no transaction: kubetx's words name none of alice's and promise no rollback
    // (kubectl echoes the patch it sent, with the copy's annotation, before them).
    const denial = /kubetx: .*/.exec(result.stderr)?.[0] ?? "";
    expect(denial).not.toContain("will roll back");
    expect(new Set([...denial.matchAll(/t-[0-9a-f]{8}/g)].map((m) => m[0]))).toEqual(new Set([bobs]));
    expect(result.stderr).not.toMatch(/t-[0-9a-f]{8}\.json/);
    expect((await admin.get(`${cms}/held-a`)).data).toEqual({ v: "bob" });
  });

  it("says that no policy covers a namespace that is not opted in, and keeps no Transaction record", async () => {
    const plain = uniqueName("txplain");
    await createNamespace(plain);
    const file = path.join(work, "uncovered.yaml");
    await writeFile(file, configMapYaml("uncovered-a", { v: "a" }));

    const result = await kubectlTx(["apply", "-f", file, "-n", plain]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("configmap/uncovered-a created");
    expect(result.stdout).toContain(`no transaction: no TransactionPolicy covers namespace ${plain}`);
    expect(result.stdout).toContain(`kubectl label namespace ${plain} kubetx.io/enabled=true`);
    expect(result.stdout).not.toContain("committed");
    const id = announcedId(result.stderr);
    expect(id).toBeDefined();
    expect(await readOrUndefined(admin, transactionPath(id ?? ""))).toBeUndefined();
    expect(await transactionNames(admin)).not.toContain(id);
    expect((await admin.get(`/api/v1/namespaces/${plain}/configmaps/uncovered-a`)).data).toEqual({ v: "a" });
  });

  describe("while kubectl runs", () => {
    /** A kubectl that applies, then keeps running `seconds` more, as a slow apply of many objects would. */
    async function slowKubectl(seconds: number): Promise<string> {
      const file = path.join(work, `kubectl-then-sleep-${seconds}`);
      await writeFile(file, `#!/bin/sh
"${cluster().kubectl}" "$@" || exit $?
exec sleep ${seconds}
`, { mode: 0o755 });
      return file;
    }

    it("keeps the transaction open past the policy's maxOpenSeconds, lists it under its namespace while open, and commits it", async () => {
      const runFor = MAX_OPEN_SECONDS + 4;
      const file = path.join(work, "long.yaml");
      await writeFile(file, [configMapYaml("long-a", { v: "a" }), configMapYaml("long-b", { v: "b" })].join("---\n"));
      const started = Date.now();

      const applying = kubectlTx(["apply", "-f", file, "-n", ns], { env: { ...env, KUBECTL: await slowKubectl(runFor) } });
      const open = await until("kubectl tx list -n shows the open transaction with both members", async () => {
        const rows = JSON.parse((await kubectlTx(["list", "-n", ns, "--phase", "Open", "-o", "json"])).stdout || "[]") as TransactionRow[];
        return rows.find((r) => r.mode === "plugin" && r.members === 2);
      });
      const result = await applying;

      expect(result.code, result.stderr).toBe(0);
      expect(Date.now() - started).toBeGreaterThan(MAX_OPEN_SECONDS * 1000);
      expect(result.stdout).toContain(`transaction ${open.id} committed: 2 members`);
      const record = await admin.get<Transaction>(transactionPath(open.id));
      expect(record.status).toMatchObject({ phase: "Committed", reason: "ApplyFinished" });
      expect(Date.parse(record.status?.closedAt ?? "") - Date.parse(record.status?.openedAt ?? "")).toBeGreaterThan(MAX_OPEN_SECONDS * 1000);
      expect(record.spec.clientHeartbeat).toBeGreaterThanOrEqual(2);
    });

    it("rolls back within the heartbeat timeout plus a resolver period after kubectl tx is killed mid-apply", async () => {
      const file = path.join(work, "killed.yaml");
      await writeFile(file, [configMapYaml("killed-a", { v: "a" }), configMapYaml("killed-b", { v: "b" })].join("---\n"));
      // The plugin itself, not through kubectl, so the SIGKILL hits it; in a group of its own, so its kubectl can be cleaned up.
      const plugin = spawn(path.join(REPO, "node_modules/.bin/node"), [bundle, "apply", "-f", file, "-n", ns], {
        env: { ...env, KUBECTL: await slowKubectl(600) }, detached: true, stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      plugin.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      try {
        const id = await until("kubectl tx announces its transaction", () => Promise.resolve(announcedId(stderr)));
        await until("kubetx counts both members", async () => ((await admin.get<Transaction>(transactionPath(id))).status?.memberCount === 2 ? true : undefined));

        plugin.kill("SIGKILL");
        const killedAt = Date.now();
        const record = await waitResolved(admin, id, CLIENT_HEARTBEAT_TIMEOUT_MS + 30_000);

        expect(record.status).toMatchObject({ phase: "RolledBack", reason: "ClientLost" });
        expect(record.status?.message).toContain("kubectl tx apply stopped renewing the transaction (no heartbeat for 15 s");
        const after = Date.parse(record.status?.closedAt ?? "") - killedAt;
        // Its last renewal came at most a period before the kill; kubetx waits the timeout from the renewal it saw.
        expect(after).toBeGreaterThanOrEqual(CLIENT_HEARTBEAT_TIMEOUT_MS - CLIENT_HEARTBEAT_PERIOD_MS);
        expect(after).toBeLessThanOrEqual(CLIENT_HEARTBEAT_TIMEOUT_MS + RESOLVER_PERIOD_MS + PASS_SLACK_MS);
        for (const name of ["killed-a", "killed-b"]) expect(await readOrUndefined(admin, `${cms}/${name}`)).toBeUndefined();
        expect(await leftoversSettled(admin, id)).toEqual([]);
      } finally {
        // The kubectl it started sleeps on in the plugin's process group.
        if (plugin.pid !== undefined) {
          try {
            process.kill(-plugin.pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
      }
    });
  });

  it("refuses a usage error with exit code 2 before touching the cluster", async () => {
    const result = await kubectlTx(["apply", "-f", path.join(work, "app.yaml"), "--prune"]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe("kubectl tx: --prune needs -l SELECTOR (kubectl tx does not support --prune --all); run 'kubectl tx apply --help'");
  });
});
