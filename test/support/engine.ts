/**
 * Runs the real kubetx engine (admission server + resolver) against the
 * shared apiserver: in this process, or as a `kubetx serve` child process
 * that a test may kill.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ConfigInput } from "../../src/config/config.ts";
import { flagPolicies, loadConfig } from "../../src/config/config.ts";
import type { NamedPolicy } from "../../src/policy/combine.ts";
import { CONFIGURATION_PATHS, urlClientConfig, webhookConfigurations } from "../../src/webhooks/configurations.ts";
import { Conflict, createOrReplace } from "../../src/kube/index.ts";
import type { WebhookServer, WebhookServerOptions } from "../../src/main.ts";
import { startWebhookServer } from "../../src/main.ts";
import type { Clock } from "../../src/telemetry/clock.ts";
import type { Logger } from "../../src/telemetry/logger.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { afterAll, beforeAll } from "vitest";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { client, cluster, createNamespace, kubectl } from "./cluster.ts";
import { webhookCertificate } from "./webhook.ts";

const REPO = path.resolve(import.meta.dirname, "../..");

/** Short timings so stories finish in seconds; production defaults are in src/policy/policy.ts. */
export const FAST: ConfigInput = {
  policySource: "flags", lockTtlSeconds: 3, maxOpenSeconds: 8, quietWindowMs: 1000, resolverPeriodMs: 100, persistGraceMs: 1000, intentGraceMs: 400, lateWriteMs: 1000,
  // Test setup writes as admin must not become transactions of their own.
  exemptUsers: ["admin"],
};

/**
 * The usual frame of an engine story: an admin client, a namespace (opted
 * in by default), and kubetx registered for the whole describe block.
 */
export function useEngine(namespace: string, labels: Record<string, string> = { "kubetx.io/enabled": "true" }, input?: ConfigInput): { admin: () => KubeClient; engine: () => WebhookServer } {
  let admin: KubeClient | undefined;
  let engine: WebhookServer | undefined;
  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(namespace, labels);
    // As kubetx dev runs it: receiving the apiserver's audit events, unless the story says otherwise.
    engine = await startEngine({ auditSink: true, ...input }, input?.auditSink === false ? {} : { port: cluster().auditSinkPort });
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    admin?.close();
  });
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not ready: use it inside a test`);
    return value;
  };
  return { admin: () => need(admin, "the admin client"), engine: () => need(engine, "the engine") };
}

/**
 * Starts kubetx in this process and registers it. It accepts only the
 * apiserver's client certificate, as kubetx dev does; it receives the
 * audit events only on the cluster's audit sink port (useEngine does that).
 */
export async function startEngine(
  input: ConfigInput = FAST,
  listen: {
    port?: number; register?: boolean; clock?: Clock; logger?: Logger; wrapClient?: (client: KubeClient) => KubeClient;
    onReview?: WebhookServerOptions["onReview"];
  } = {},
): Promise<WebhookServer> {
  const config = loadConfig({ ...FAST, ...input });
  const server = await startWebhookServer({
    kubeconfig: cluster().kubeconfigs.kubetx,
    tls: await webhookCertificate(),
    host: "127.0.0.1",
    port: listen.port ?? 0,
    metricsPort: 0,
    logger: listen.logger ?? silentLogger(),
    config,
    apiserverClients: cluster().apiserverClient,
    ...(listen.clock ? { clock: listen.clock } : {}),
    ...(listen.wrapClient ? { wrapClient: listen.wrapClient } : {}),
    ...(listen.onReview ? { onReview: listen.onReview } : {}),
    webhookSettleMs: TEST_SETTLE_MS,
  });
  if (listen.register !== false) {
    await register(server.port, flagPolicies(config));
    await untilWebhooksInStep(server);
  }
  return server;
}

/**
 * Each step of a coverage change is given this long to reach the apiserver
 * (2 s in kubetx itself): on loopback the apiserver's watch delivers a
 * configuration in milliseconds, and every engine start takes two steps.
 */
const TEST_SETTLE_MS = 500;

/**
 * Waits until kubetx has brought the registered configurations in step with
 * its policies, /observe included (its last step), and that write has had
 * time to reach the apiserver: stories assume both webhooks are called.
 */
export async function untilWebhooksInStep(server: WebhookServer): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    if (await server.webhooksInStep().catch(() => false)) {
      await sleep(TEST_SETTLE_MS);
      return;
    }
    await sleep(100);
  }
  throw new Error("kubetx never brought its webhook configurations in step with its policies within 30 s");
}

/**
 * Points the `kubetx` webhook configurations at a server on 127.0.0.1:port,
 * covering what `policies` cover (the default policy's coverage unless
 * given: pass the server's flag policies, and its sync has nothing to
 * change), and waits until the apiserver uses them.
 */
export async function register(port: number, policies?: readonly NamedPolicy[]): Promise<void> {
  const admin = await client("admin");
  try {
    for (const configuration of webhookConfigurations((p) => urlClientConfig(`https://127.0.0.1:${port}`, p, cluster().caData), policies)) {
      await replaceDespiteSync(admin, CONFIGURATION_PATHS[configuration.kind as keyof typeof CONFIGURATION_PATHS], configuration);
    }
  } finally {
    admin.close();
  }
  await waitUntilWebhookAnswers();
}

/** Attempts before a registration gives up on Conflicts. */
const REGISTER_ATTEMPTS = 10;

/**
 * A running kubetx keeps the configuration in step with its policies and may
 * write it between this read and write: a Conflict means read it again.
 */
async function replaceDespiteSync(admin: KubeClient, collection: string, configuration: KubeObject): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await createOrReplace(admin, collection, configuration);
      return;
    } catch (error) {
      if (!(error instanceof Conflict) || attempt >= REGISTER_ATTEMPTS) throw error;
    }
  }
}

export async function unregister(): Promise<void> {
  const admin = await client("admin");
  for (const path of Object.values(CONFIGURATION_PATHS)) await admin.delete(`${path}/kubetx`).catch(() => undefined);
  admin.close();
}

/**
 * Waits until the apiserver calls the newly registered webhook: a server-side
 * dry run of an invalid TransactionPolicy is denied by kubetx (and only by
 * kubetx: the CRD schema accepts it), whatever policies are in force.
 */
async function waitUntilWebhookAnswers(): Promise<void> {
  const manifest = "apiVersion: kubetx.io/v1alpha1\nkind: TransactionPolicy\nmetadata:\n  name: webhook-probe\nspec:\n  mode: probe\n";
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const result = await kubectl(["apply", "--dry-run=server", "-f", "-"], { input: manifest });
    if (result.stderr.includes("kubetx: TransactionPolicy webhook-probe is invalid")) return;
    await sleep(100);
  }
  throw new Error("the apiserver never called the kubetx webhook");
}

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly port: number;
  output(): string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** The engine flags of `kubetx serve` for a configuration. */
function serveFlags(input: ConfigInput): string[] {
  return [
    "--lock-ttl", String(input.lockTtlSeconds),
    "--max-open", String(input.maxOpenSeconds),
    "--resolver-period", String(input.resolverPeriodMs),
    "--late-write-window", String(input.lateWriteMs),
    "--quiet-window", String(input.quietWindowMs),
    "--policy-source", input.policySource ?? "flags",
  ];
}

/** Starts `kubetx serve` as a separate process on `port`. */
export async function startServeProcess(port: number, identity: string, input: ConfigInput = FAST): Promise<ServeProcess> {
  const tls = await webhookCertificate();
  const flags = serveFlags({ ...FAST, ...input });
  const child = spawn(path.join(REPO, "node_modules/.bin/node"), [
    path.join(REPO, "src/cli/kubetx.ts"), "serve", "--kubeconfig", cluster().kubeconfigs.kubetx,
    "--tls-cert", tls.certFile, "--tls-key", tls.keyFile, "--host", "127.0.0.1", "--port", String(port), "--metrics-port", "0",
    "--client-ca", cluster().apiserverClient.caFile, "--identity", identity, ...flags,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  for (let i = 0; i < 200 && !output.includes("admission server listening"); i += 1) {
    if (child.exitCode !== null) throw new Error(`kubetx serve exited: ${output}`);
    await sleep(50);
  }
  return {
    child, port, output: () => output,
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
