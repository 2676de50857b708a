/**
 * `kubetx dev` end to end, as a user runs it: a child process with its own
 * control plane (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler; separate from the shared one of the other integration
 * tests), driven with the real kubectl.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freePort } from "../../src/devcluster/ports.ts";
import { cluster, run, uniqueName } from "../support/cluster.ts";
import type { DevProcess } from "../support/dev-process.ts";
import { DEATH_TIMEOUT_MS, controlPlanePids, killDev, spawnDev, survivors } from "../support/dev-process.ts";

/** The apiserver writes an audit event when the response completes; allow it a moment to reach the file. */
const AUDIT_WAIT_MS = 5_000;

interface AuditEvent {
  readonly verb?: string;
  readonly user?: { username?: string };
  readonly objectRef?: { resource?: string; namespace?: string; name?: string };
  readonly responseStatus?: { code?: number };
  readonly userAgent?: string;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

/** Every complete line of the audit log, parsed; throws if any is not JSON. */
async function auditEvents(file: string): Promise<AuditEvent[]> {
  const text = await readFile(file, "utf8");
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  return complete.split("\n").filter(Boolean).map((line) => JSON.parse(line) as AuditEvent);
}

async function auditEventsAbout(file: string, name: string): Promise<AuditEvent[]> {
  const deadline = Date.now() + AUDIT_WAIT_MS;
  for (;;) {
    const events = (await exists(file)) ? (await auditEvents(file)).filter((e) => e.objectRef?.name === name) : [];
    if (events.length > 0 || Date.now() > deadline) return events;
    await sleep(100);
  }
}

/** What `kubetx dev` records in DIR/controlplane.pids, in start order. */
const REPO = path.resolve(import.meta.dirname, "../..");
const CONTROL_PLANE = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];

/** The program each pid runs (the file name of the command under setpriv). */
async function commandsOf(pids: readonly number[]): Promise<string[]> {
  return Promise.all(pids.map(async (pid) => {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    return path.basename(argv.find((arg) => CONTROL_PLANE.includes(path.basename(arg))) ?? argv[0] ?? "");
  }));
}

function kubectlPath(): string {
  return path.join(cluster().binariesDir, "kubectl");
}

describe("kubetx dev", () => {
  let workDir: string;
  const started: DevProcess[] = [];

  type StartOptions = { dir?: string; port?: number; webhookPort?: number; env?: NodeJS.ProcessEnv; args?: string[]; ownGroup?: boolean };

  async function launch(options: StartOptions = {}): Promise<DevProcess> {
    return spawnDev({
      dir: options.dir ?? (await mkdtemp(path.join(workDir, "dev-"))),
      port: options.port ?? (await freePort()),
      webhookPort: options.webhookPort ?? (await freePort()),
      metricsPort: await freePort(),
      ...(options.env ? { env: options.env } : {}),
      ...(options.args ? { args: options.args } : {}),
      ...(options.ownGroup ? { ownGroup: true } : {}),
    });
  }

  /** Launches kubetx dev for one test: whatever it started is stopped after that test, pass or fail. */
  async function start(options: StartOptions = {}): Promise<DevProcess> {
    const dev = await launch(options);
    started.push(dev);
    return dev;
  }

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "kubetx-dev-test-"));
  });
  afterEach(async () => {
    for (const dev of started.splice(0)) await killDev(dev);
  });
  afterAll(() => rm(workDir, { recursive: true, force: true }));

  describe("when it starts", () => {
    // The stories below share one running dev cluster, in order; the last
    // one stops it, and afterAll makes sure it is stopped.
    let dev: DevProcess;
    beforeAll(async () => {
      dev = await launch();
      await dev.waitForLine(/^kubetx dev: ready/);
    });
    afterAll(async () => {
      if (dev) await killDev(dev);
    });

    it("lets alice create a ConfigMap in kubetx-demo with the real kubectl", async () => {
      const created = await run(kubectlPath(), [
        "--kubeconfig", path.join(dev.dir, "alice.kubeconfig"), "-n", "kubetx-demo", "create", "configmap", "from-alice", "--from-literal=a=b",
      ]);
      // stderr may carry the webhook's warnings (kubectl prints them); never an error.
      expect(created.stderr).not.toMatch(/error/i);
      expect(created.code).toBe(0);
      expect(created.stdout).toContain("configmap/from-alice created");
    });

    it("sets itself up without a transaction of its own and without a warning: alice's binding stays", async () => {
      // Past the quiet window (2 s) and a resolver pass: a setup write made a transaction would be resolved by now.
      await sleep(4_000);
      const kubectl = (kubeconfig: string, ...args: string[]) => run(kubectlPath(), ["--kubeconfig", path.join(dev.dir, kubeconfig), ...args]);
      const records = await kubectl("kubeconfig", "get", "transactions", "-o", "json");
      expect(records.code).toBe(0);
      const users = (JSON.parse(records.stdout) as { items: { spec?: { user?: string } }[] }).items.map((t) => t.spec?.user);
      expect(users.filter((user) => user !== "alice")).toEqual([]);
      expect((await kubectl("alice.kubeconfig", "auth", "can-i", "create", "configmaps", "-n", "kubetx-demo")).stdout.trim()).toBe("yes");
      // kubetx's own log lines: none at warning (40) or above, the apiserver's start included.
      const levels = `${dev.stdout()}\n${dev.stderr()}`.split("\n").filter((line) => line.startsWith("{")).map((line) => (JSON.parse(line) as { level?: number; msg?: string }));
      expect(levels.filter((line) => (line.level ?? 0) >= 40).map((line) => line.msg)).toEqual([]);
    });

    it("runs the README's Try it: the example app commits, its Pods appear and stay, the broken apply is undone", async () => {
      // As the README says: PATH gets DIR/bin (kubectl and kubectl-tx), KUBECONFIG is alice's.
      const env = { ...process.env, PATH: `${path.join(dev.dir, "bin")}:${process.env.PATH ?? ""}`, KUBECONFIG: path.join(dev.dir, "alice.kubeconfig") };
      const kubectl = (...args: string[]) => run("kubectl", args, { env });
      const applied = await kubectl("tx", "apply", "-n", "kubetx-demo", "-f", path.join(REPO, "examples", "app"));
      expect(applied.stderr).not.toMatch(/error/i);
      expect(applied.stdout).toMatch(/^transaction t-[0-9a-f]+ committed: 3 members$/m);
      expect(applied.code).toBe(0);
      // DIR/bin/kubectl keeps the name kubectl tx runs it under, so the audit log (and the sink) see the transaction in its User-Agent.
      const id = /^transaction (t-[0-9a-f]+) committed/m.exec(applied.stdout)?.[1] ?? "";
      const created = (await auditEventsAbout(path.join(dev.dir, "audit.log"), "web-config")).filter((e) => e.verb === "create");
      expect(created.map((e) => e.userAgent?.split("/")[0])).toContain(`kubectl@${id}`);

      // The controllers make the Deployment's Pods; with no kubelet they stay Pending, and nothing takes them away.
      const pods = async (): Promise<string[]> => {
        const listed = await kubectl("-n", "kubetx-demo", "get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.metadata.uid} {.status.phase}{\"\\n\"}{end}");
        return listed.stdout.split("\n").filter(Boolean).sort();
      };
      let first: string[] = [];
      for (const deadline = Date.now() + 20_000; first.length < 2 && Date.now() < deadline; await sleep(500)) first = await pods();
      expect(first).toEqual([expect.stringMatching(/ Pending$/), expect.stringMatching(/ Pending$/)]);

      const broken = await kubectl("apply", "-n", "kubetx-demo", "-f", path.join(REPO, "examples", "broken"));
      expect(broken.code).not.toBe(0);
      expect(broken.stderr).toMatch(/selector. does not match template .labels./);
      let listed = await kubectl("tx", "list");
      for (const deadline = Date.now() + 15_000; !/transparent +RolledBack/.test(listed.stdout) && Date.now() < deadline; await sleep(500)) listed = await kubectl("tx", "list");
      expect(listed.stdout).toMatch(/alice +plugin +Committed +3 /);
      expect(listed.stdout).toMatch(/alice +transparent +RolledBack +2 /);
      expect((await kubectl("-n", "kubetx-demo", "get", "configmap", "web-config", "-o", "jsonpath={.data.color}")).stdout).toBe("blue");
      expect((await kubectl("-n", "kubetx-demo", "get", "service", "web", "-o", "jsonpath={.spec.ports[0].port}")).stdout).toBe("80");
      // The same Pods, still there: the rollback left the Deployment alone, and no controller's write became a transaction.
      expect(await pods()).toEqual(first);
      const records = await run(kubectlPath(), ["--kubeconfig", path.join(dev.dir, "kubeconfig"), "get", "transactions", "-o", "jsonpath={.items[*].spec.user}"]);
      expect(records.stdout.split(" ").filter((user) => user.startsWith("system:"))).toEqual([]);
    });

    it("records alice's write in DIR/audit.log as JSON lines", async () => {
      const events = await auditEventsAbout(path.join(dev.dir, "audit.log"), "from-alice");
      expect(events).toContainEqual(expect.objectContaining({
        verb: "create",
        user: expect.objectContaining({ username: "alice" }) as unknown,
        objectRef: expect.objectContaining({ resource: "configmaps", namespace: "kubetx-demo", name: "from-alice" }) as unknown,
        responseStatus: expect.objectContaining({ code: 201 }) as unknown,
      }));
    });

    it("stops on SIGTERM, exits 0 and leaves none of its processes running", async () => {
      const pids = await controlPlanePids(dev.dir);
      expect(await commandsOf(pids)).toEqual(CONTROL_PLANE);
      dev.signal("SIGTERM");
      expect(await dev.exited).toEqual({ code: 0, signal: null });
      expect(dev.stdout()).toMatch(/^kubetx dev: stopped$/m);
      expect(await survivors(dev.dir)).toEqual([]);
    });
  });

  describe("with --no-audit-sink, stopped with Ctrl-C", () => {
    it("keeps the behaviour without the sink (a decoding error is not seen), and Ctrl-C at the terminal stops everything", async () => {
      const dev = await start({ args: ["--no-audit-sink"], ownGroup: true });
      await dev.waitForLine(/^kubetx dev: ready/);
      const pids = await controlPlanePids(dev.dir);
      const apiserver = await Promise.all(pids.map(async (pid) => (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0")));
      const flags = apiserver.find((argv) => argv[0]?.endsWith("kube-apiserver")) ?? [];
      expect(flags).toContainEqual(expect.stringMatching(/^--audit-log-path=/));
      expect(flags.filter((flag) => flag.startsWith("--audit-webhook"))).toEqual([]);

      // A ConfigMap, then a Deployment with a misspelt field: the apiserver rejects it while decoding, before any webhook.
      const file = path.join(dev.dir, "typo.yaml");
      const name = uniqueName("typo");
      await writeFile(file, [
        `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {a: b}`,
        `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${name}}\nspec:\n  replica: 2\n  selector: {matchLabels: {app: ${name}}}\n  template:\n    metadata: {labels: {app: ${name}}}\n    spec: {containers: [{name: c, image: nginx}]}`,
      ].join("\n---\n"));
      const kubectl = (...args: string[]) => run(kubectlPath(), ["--kubeconfig", path.join(dev.dir, "alice.kubeconfig"), "-n", "kubetx-demo", ...args]);
      const applied = await kubectl("apply", "-f", file);
      expect(applied.code).not.toBe(0);
      expect(applied.stderr).toMatch(/unknown field "spec.replica"/);
      // Without the sink kubetx cannot know: the ConfigMap's transaction commits after the quiet window, as before the sink existed.
      let phase = "";
      for (const deadline = Date.now() + 20_000; phase !== "Committed" && Date.now() < deadline; await sleep(500)) {
        const records = await run(kubectlPath(), ["--kubeconfig", path.join(dev.dir, "kubeconfig"), "get", "transactions", "-o", "json"]);
        const mine = (JSON.parse(records.stdout) as { items: { spec?: { user?: string }; status?: { phase?: string } }[] }).items.filter((t) => t.spec?.user === "alice");
        phase = mine.at(-1)?.status?.phase ?? "";
      }
      expect(phase).toBe("Committed");
      expect((await kubectl("get", "configmap", name, "-o", "name")).stdout.trim()).toBe(`configmap/${name}`);

      // Ctrl-C reaches the whole foreground process group: kubetx dev alone acts on it and stops the rest in order.
      dev.signalGroup("SIGINT");
      expect(await dev.exited).toEqual({ code: 0, signal: null });
      expect(dev.stdout()).toMatch(/^kubetx dev: stopped$/m);
      expect(await survivors(dev.dir)).toEqual([]);
      const lines = `${dev.stdout()}\n${dev.stderr()}`.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as { level?: number; msg?: string });
      expect(lines.filter((line) => (line.level ?? 0) >= 40).map((line) => line.msg)).toEqual([]);
    });
  });

  describe("when it cannot start", () => {
    let blocker: net.Server | undefined;
    afterEach(async () => {
      await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
      blocker = undefined;
    });

    it.each([
      { flag: "--port", what: "an apiserver port", option: "port" },
      { flag: "--webhook-port", what: "a webhook port", option: "webhookPort" },
    ] as const)("refuses $what in use with one line naming $flag, and starts nothing", async ({ flag, option }) => {
      const port = await freePort();
      blocker = net.createServer();
      await new Promise<void>((resolve) => blocker?.listen(port, "127.0.0.1", resolve));
      const dev = await start({ [option]: port });
      const exit = await dev.exited;
      expect(exit.code).not.toBe(0);
      expect(dev.stderr().trimEnd().split("\n")).toEqual([expect.stringMatching(new RegExp(`port ${port} .*in use.* ${flag} `))]);
      expect(await exists(path.join(dev.dir, "controlplane.pids"))).toBe(false);
    });

    it("refuses a cache directory it cannot create with one line naming it and KUBETX_CACHE_DIR", async () => {
      const file = path.join(workDir, uniqueName("not-a-directory"));
      await writeFile(file, "");
      const cacheDir = path.join(file, "cache");
      const dev = await start({ env: { ...process.env, KUBETX_CACHE_DIR: cacheDir } });
      const exit = await dev.exited;
      expect(exit.code).not.toBe(0);
      const lines = dev.stderr().trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(cacheDir);
      expect(lines[0]).toContain("KUBETX_CACHE_DIR");
      expect(await exists(path.join(dev.dir, "controlplane.pids"))).toBe(false);
    });
  });

  describe("after it is killed with SIGKILL", () => {
    let dir: string;
    let ports: { port: number; webhookPort: number };
    let killed: DevProcess;
    beforeEach(async () => {
      dir = await mkdtemp(path.join(workDir, "killed-"));
      ports = { port: await freePort(), webhookPort: await freePort() };
      killed = await start({ dir, ...ports });
      await killed.waitForLine(/^kubetx dev: ready/);
    });

    it("takes its whole control plane down with it", async () => {
      expect(await commandsOf(await controlPlanePids(dir))).toEqual(CONTROL_PLANE);
      killed.signal("SIGKILL");
      expect((await killed.exited).signal).toBe("SIGKILL");
      expect(await survivors(dir, DEATH_TIMEOUT_MS)).toEqual([]);
    });

    it("lets a second kubetx dev on the same directory and ports become ready", async () => {
      killed.signal("SIGKILL");
      await killed.exited;
      await survivors(dir, DEATH_TIMEOUT_MS);
      const second = await start({ dir, ...ports });
      await second.waitForLine(/^kubetx dev: ready/);
      const read = await run(kubectlPath(), ["--kubeconfig", path.join(dir, "alice.kubeconfig"), "-n", "kubetx-demo", "get", "configmaps", "-o", "name"]);
      expect(read.stderr).not.toMatch(/error/i);
      expect(read.code).toBe(0);
    });
  });
});
