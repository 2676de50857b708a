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

  type StartOptions = { dir?: string; port?: number; webhookPort?: number; env?: NodeJS.ProcessEnv };

  async function launch(options: StartOptions = {}): Promise<DevProcess> {
    return spawnDev({
      dir: options.dir ?? (await mkdtemp(path.join(workDir, "dev-"))),
      port: options.port ?? (await freePort()),
      webhookPort: options.webhookPort ?? (await freePort()),
      metricsPort: await freePort(),
      ...(options.env ? { env: options.env } : {}),
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
