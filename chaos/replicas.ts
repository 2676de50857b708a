/**
 * kubetx replicas: `kubetx serve` processes, each on its own port of the
 * machine's address (the apiserver refuses loopback addresses in
 * EndpointSlices), that faults kill, pause and restart. A restarted replica
 * keeps its identity, as a container restarted in place keeps its pod's
 * name.
 */
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { APISERVER_CLIENT_NAME } from "../src/devcluster/controlplane.ts";
import { startProcess } from "../src/devcluster/processes.ts";
import type { ManagedProcess } from "../src/devcluster/processes.ts";

/** A cold `kubetx serve` on a loaded 2-core machine reads its policies within seconds; an apiserver restart adds 15-20 s. */
const READY_TIMEOUT_MS = 90_000;
/** One start attempt: a replica that is not ready by then is restarted (a liveness probe's verdict). */
const ATTEMPT_TIMEOUT_MS = 30_000;
/** Between attempts, as a kubelet's first crash-loop backoff. */
const RESTART_BACKOFF_MS = 1_000;
const READY_POLL_MS = 100;
/** The campaign's resolver period: a tenth of a second keeps trials short (production: 250 ms). */
export const RESOLVER_PERIOD_MS = 100;
/** What the serving certificate names: the Service the webhooks call. */
export const SERVICE_HOST = "kubetx.kubetx-system.svc";
/** The name the apiserver's (and the audit relay's) client certificate carries. */
export const APISERVER_CLIENT = APISERVER_CLIENT_NAME;

export interface ReplicaConfig {
  readonly repo: string;
  readonly kubeconfig: string;
  readonly tls: { readonly certFile: string; readonly keyFile: string };
  /**
   * The CA of the apiserver's client certificate (the control plane's
   * apiserverClient.caFile): replicas let in only what it signed, the
   * apiserver's webhook calls and the relay's audit batches.
   */
  readonly clientCaFile: string;
  /** The CA of the replicas' serving certificate, to check it when asking them for /readyz. */
  readonly ca: string;
  readonly host: string;
  readonly logDir: string;
}

export type ReplicaState = "running" | "paused" | "down";

export class Replica {
  readonly index: number;
  readonly port: number;
  /** Where it serves /metrics (plain HTTP, apart from the webhook port, as in manifests/deployment.yaml). */
  readonly metricsPort: number;
  private readonly config: ReplicaConfig;
  private process: ManagedProcess | undefined;
  private current: ReplicaState = "down";
  private sinkEnabled = false;
  /** Whether the process last started has not exited. */
  private alive = false;
  private busy: Promise<void> = Promise.resolve();

  constructor(index: number, ports: { readonly webhook: number; readonly metrics: number }, config: ReplicaConfig) {
    this.index = index;
    this.port = ports.webhook;
    this.metricsPort = ports.metrics;
    this.config = config;
  }

  get name(): string {
    return `r${this.index}`;
  }

  get state(): ReplicaState {
    return this.current;
  }

  get sink(): boolean {
    return this.sinkEnabled;
  }

  /**
   * Starts `kubetx serve` and waits until it is ready (its policies and
   * namespaces read). One that exits or is not ready in time is started
   * again, as a kubelet restarts a crashing container: right after an
   * apiserver restart, kubetx cannot even learn who it is.
   */
  start(sink: boolean): Promise<void> {
    return this.exclusive(() => this.startNow(sink));
  }

  /** SIGTERM, then SIGKILL after a grace; waits until it is gone. */
  stop(): Promise<void> {
    return this.exclusive(() => this.stopNow());
  }

  /**
   * One start or stop at a time: a fault's restart, the heal step and the
   * switch of the sink setting can ask at once, and two start loops would
   * leave an orphan process serving the port with the settings of the
   * first (it answered the second's readiness probe), as happened in seed
   * 4248: a replica ran with the sink through trials without it.
   */
  private exclusive(step: () => Promise<void>): Promise<void> {
    const next = this.busy.then(step, step);
    this.busy = next.catch(() => undefined);
    return next;
  }

  private async startNow(sink: boolean): Promise<void> {
    if (this.current === "running" && this.alive && this.sinkEnabled === sink) return;
    await this.stopNow();
    // Nothing may answer on the port now; something that does is not the process about to start.
    if (await this.get("/readyz").then(() => true, () => false)) {
      throw new Error(`chaos: something still serves replica ${this.name}'s port ${this.port} after it was stopped; an orphan kubetx would answer for it`);
    }
    this.sinkEnabled = sink;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let why = "";
    while (Date.now() < deadline) {
      const started = startProcess({ name: `kubetx-${this.name}`, command: process.execPath, args: this.args(sink), logFile: this.logFile() });
      this.process = started;
      this.alive = true;
      void started.exited.then(() => {
        if (this.process === started) this.alive = false;
      });
      this.current = "running";
      why = await this.waitReady(this.process, Math.min(deadline, Date.now() + ATTEMPT_TIMEOUT_MS));
      if (why === "") return;
      await this.process.stop();
      await sleep(RESTART_BACKOFF_MS);
    }
    this.current = "down";
    throw new Error(`chaos: replica ${this.name} did not become ready within ${READY_TIMEOUT_MS / 1000} s (last attempt: ${why}); see ${this.logFile()}`);
  }

  logFile(): string {
    return path.join(this.config.logDir, `kubetx-${this.name}.log`);
  }

  /** SIGKILL: no goodbye, as when a node dies. */
  kill(): void {
    if (this.process) signal(this.process.pid, "SIGKILL");
    this.current = "down";
  }

  pause(): void {
    if (this.process) signal(this.process.pid, "SIGSTOP");
    this.current = "paused";
  }

  resume(): void {
    if (this.process) signal(this.process.pid, "SIGCONT");
    if (this.current === "paused") this.current = "running";
  }

  private async stopNow(): Promise<void> {
    this.resume();
    await this.process?.stop();
    this.current = "down";
  }

  /** How many admission reviews this replica answered at /validate (its own metric). */
  async validateCount(): Promise<number> {
    const text = await this.metrics();
    let total = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith("kubetx_admission_duration_seconds_count") && line.includes('path="/validate"')) total += Number(line.split(" ").at(-1));
    }
    return total;
  }

  private args(sink: boolean): string[] {
    const c = this.config;
    return [
      path.join(c.repo, "src", "cli", "kubetx.ts"), "serve",
      "--kubeconfig", c.kubeconfig, "--tls-cert", c.tls.certFile, "--tls-key", c.tls.keyFile,
      "--host", c.host, "--port", String(this.port), "--identity", `chaos-${this.name}`,
      "--policy-source", "cluster", "--resolver-period", String(RESOLVER_PERIOD_MS),
      "--client-ca", c.clientCaFile, "--apiserver-client", APISERVER_CLIENT, "--metrics-port", String(this.metricsPort),
      ...(sink ? ["--audit-sink"] : []),
    ];
  }

  /** "" once ready; else why not, by `until`. */
  private async waitReady(started: ManagedProcess, until: number): Promise<string> {
    let exited: string | undefined;
    void started.exited.then((how) => (exited = how));
    while (Date.now() < until) {
      if (exited !== undefined) return `it exited (${exited})`;
      if (await this.get("/readyz").then(() => true, () => false)) return "";
      await sleep(READY_POLL_MS);
    }
    return "not ready in time";
  }

  private metrics(): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: this.config.host, port: this.metricsPort, path: "/metrics", timeout: 2_000 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => ((res.statusCode ?? 0) < 300 ? resolve(body) : reject(new Error(`/metrics: HTTP ${res.statusCode ?? 0}`))));
      });
      req.on("timeout", () => req.destroy(new Error("/metrics: timeout")));
      req.on("error", reject);
    });
  }

  private get(urlPath: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: this.config.host, port: this.port, path: urlPath, ca: this.config.ca, servername: SERVICE_HOST, timeout: 2_000 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => ((res.statusCode ?? 0) < 300 ? resolve(body) : reject(new Error(`${urlPath}: HTTP ${res.statusCode ?? 0}`))));
      });
      req.on("timeout", () => req.destroy(new Error(`${urlPath}: timeout`)));
      req.on("error", reject);
    });
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
