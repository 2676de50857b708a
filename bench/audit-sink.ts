/**
 * Chooses the apiserver's audit webhook mode for kubetx's audit sink by
 * measurement. For each mode (no sink, `batch` with a 250 ms maximum wait,
 * `blocking`) it starts its own control plane and kubetx with the sink, and
 * measures, side by side:
 *  - the latency a write sees (ConfigMap creates by alice in a namespace no
 *    policy covers, so kubetx itself adds nothing: what remains is the
 *    audit backend's cost), median and p99;
 *  - how long after a write rejected while decoding (a misspelt field) its
 *    requester's transaction is marked failed: the delay kubetx must add to
 *    the quiet window.
 * Prints the numbers, writes bench/results/audit-sink.json, and stops
 * everything it started.
 *
 *   npm run bench:audit-sink              (about 3 minutes)
 *   npm run bench:audit-sink -- --quick
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { flagPolicies, loadConfig } from "../src/config/config.ts";
import { bootstrapKubetxIdentity, editorsBound, runEditorBinder } from "../src/devcluster/bootstrap.ts";
import { ensureServingCertificate } from "../src/devcluster/certs.ts";
import type { ControlPlane } from "../src/devcluster/controlplane.ts";
import { startControlPlane } from "../src/devcluster/controlplane.ts";
import { installCrds, installUserRole } from "../src/devcluster/install.ts";
import { freePort } from "../src/devcluster/ports.ts";
import { defaultCacheDir, ensureBinaries } from "../src/devcluster/toolchain.ts";
import type { KubeClient } from "../src/kube/index.ts";
import { createKubeClient, createOrReplace } from "../src/kube/index.ts";
import { startWebhookServer } from "../src/main.ts";
import { AUDIT_PATH } from "../src/server/app.ts";
import { silentLogger } from "../src/telemetry/logger.ts";
import type { Transaction } from "../src/transactions/model.ts";
import { transactionPath } from "../src/transactions/model.ts";
import { CONFIGURATION_PATHS, urlClientConfig, webhookConfigurations } from "../src/webhooks/configurations.ts";
import { percentile, median, round } from "./support/stats.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const QUICK = process.argv.includes("--quick");
const WRITES = QUICK ? 40 : 300;
const FAILURES = QUICK ? 3 : 10;
/** The default quiet window plus the sink's delay, and a little more: alice's session then starts anew. */
const QUIET_AND_DELAY_MS = 3_500;
/** Long enough that a failure kubetx never hears of shows as "never". */
const FAILURE_WAIT_MS = 5_000;
const MODES = [
  { name: "none", flags: undefined },
  { name: "batch", flags: [] as string[] },
  { name: "blocking", flags: ["--audit-webhook-mode=blocking"] },
] as const;

const progress = (line: string): void => console.log(`[audit-sink] ${line}`);

interface ModeResult {
  readonly mode: string;
  readonly writeMs: { readonly p50: number; readonly p99: number };
  /** ms from a rejected write's response until its transaction was marked failed; null when it never was. */
  readonly failureKnownMs: readonly (number | null)[];
}

async function measureMode(mode: (typeof MODES)[number]): Promise<ModeResult> {
  const binaries = await ensureBinaries({ moduleDir: path.join(REPO, "controlplane"), cacheDir: defaultCacheDir(process.env), onProgress: progress });
  const dir = await mkdtemp(path.join(tmpdir(), "kubetx-bench-sink-"));
  const sinkPort = await freePort();
  const sink = mode.flags ? { auditSinkUrl: `https://127.0.0.1:${sinkPort}${AUDIT_PATH}`, extraApiserverFlags: mode.flags } : {};
  const controlPlane = await startControlPlane({ dir, binaries, ...sink });
  const stops: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true }), () => controlPlane.stop()];
  try {
    const admin = await createKubeClient(controlPlane.kubeconfigs.admin);
    const alice = await createKubeClient(controlPlane.kubeconfigs.alice);
    stops.push(() => Promise.resolve(admin.close()), () => Promise.resolve(alice.close()));
    const tls = await ensureServingCertificate({ ca: controlPlane.ca, outDir: path.join(dir, "pki"), name: "bench-sink", commonName: "kubetx", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    // In blocking mode every request waits for the sink: something must answer while kubetx is not up yet.
    const placeholder = await acceptingEverything(tls, sinkPort);
    stops.push(await prepare(admin, controlPlane));
    await new Promise<void>((resolve) => placeholder.close(() => resolve()));
    const config = loadConfig({ policySource: "flags", exemptUsers: ["admin"], auditSink: mode.flags !== undefined });
    const engine = await startWebhookServer({
      kubeconfig: controlPlane.kubeconfigs.kubetx,
      tls,
      host: "127.0.0.1", port: sinkPort, logger: silentLogger(),
      config,
      apiserverClients: controlPlane.apiserverClient,
    });
    stops.push(() => engine.close());
    for (const configuration of webhookConfigurations((p) => urlClientConfig(`https://127.0.0.1:${engine.port}`, p, controlPlane.caData), flagPolicies(config))) {
      await createOrReplace(admin, CONFIGURATION_PATHS[configuration.kind as keyof typeof CONFIGURATION_PATHS], configuration);
    }
    return { mode: mode.name, writeMs: await writeLatency(admin, alice), failureKnownMs: await failureDelays(admin, controlPlane, binaries.kubectl) };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

/** An HTTPS server that takes every audit batch and drops it. */
async function acceptingEverything(tls: { certFile: string; keyFile: string }, port: number): Promise<https.Server> {
  const server = https.createServer({ cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) }, (req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

async function prepare(admin: KubeClient, controlPlane: ControlPlane): Promise<() => Promise<void>> {
  await bootstrapKubetxIdentity(admin);
  await installCrds(admin, path.join(REPO, "manifests", "crds"));
  await installUserRole(admin);
  const binder = new AbortController();
  const binding = runEditorBinder(admin, silentLogger(), binder.signal);
  for (const [name, labels] of [["plain", {}], ["covered", { "kubetx.io/enabled": "true" }]] as const) {
    await admin.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
    if (!(await editorsBound(admin, name))) throw new Error(`alice was never bound in ${name} (${controlPlane.server})`);
  }
  return async () => {
    binder.abort();
    await binding;
  };
}

async function writeLatency(admin: KubeClient, alice: KubeClient): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < WRITES; i += 1) {
    const started = performance.now();
    await alice.create("/api/v1/namespaces/plain/configmaps", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `w-${i}` }, data: { i: String(i) } });
    times.push(performance.now() - started);
  }
  await admin.delete("/api/v1/namespaces/plain/configmaps", {}).catch(() => undefined);
  return { p50: round(median(times)), p99: round(percentile(times, 0.99)) };
}

/** Each round: a valid write opens alice's transaction, then a misspelt one fails while decoding; how long until the record says so. */
async function failureDelays(admin: KubeClient, controlPlane: ControlPlane, kubectl: string): Promise<(number | null)[]> {
  const delays: (number | null)[] = [];
  for (let round = 0; round < FAILURES; round += 1) {
    const valid = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok-${round}, namespace: covered}\ndata: {a: "1"}\n`;
    const typo = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-${round}, namespace: covered}\ndta: {a: "1"}\n`;
    const first = await run(kubectl, ["--kubeconfig", controlPlane.kubeconfigs.alice, "apply", "-f", "-"], valid);
    const id = /joined transaction (t-[a-z0-9-]+)/.exec(first)?.[1];
    await run(kubectl, ["--kubeconfig", controlPlane.kubeconfigs.alice, "apply", "-f", "-"], typo);
    const rejectedAt = performance.now();
    delays.push(id ? await untilFailed(admin, id, rejectedAt) : null);
    // The failed transaction refuses alice's writes until a quiet window after her last one: the next round must start a new one.
    if (id) await untilResolved(admin, id);
    await sleep(QUIET_AND_DELAY_MS);
  }
  return delays;
}

async function untilResolved(admin: KubeClient, id: string): Promise<void> {
  for (let i = 0; i < 300; i += 1) {
    const tx = await admin.get<Transaction>(transactionPath(id));
    if (["Committed", "RolledBack", "Failed"].includes(tx.status?.phase ?? "")) return;
    await sleep(100);
  }
}

async function untilFailed(admin: KubeClient, id: string, since: number): Promise<number | null> {
  while (performance.now() - since < FAILURE_WAIT_MS) {
    const tx = await admin.get<Transaction>(transactionPath(id));
    if (tx.status?.failure || tx.status?.reason === "MemberFailed") return round(performance.now() - since);
    await sleep(10);
  }
  return null;
}

function run(command: string, args: readonly string[], input: string): Promise<string> {
  return import("node:child_process").then(({ execFile }) => new Promise((resolve) => {
    const child = execFile(command, args, (_error, _stdout, stderr) => resolve(stderr));
    child.stdin?.end(input);
  }));
}

async function main(): Promise<void> {
  const results: ModeResult[] = [];
  for (const mode of MODES) {
    progress(`mode ${mode.name}: starting a control plane`);
    results.push(await measureMode(mode));
    const last = results.at(-1) as ModeResult;
    progress(`mode ${mode.name}: write p50 ${last.writeMs.p50} ms, p99 ${last.writeMs.p99} ms; failure known after ${last.failureKnownMs.map((d) => (d === null ? "never" : `${d} ms`)).join(", ")}`);
  }
  const none = results[0] as ModeResult;
  const summary = results.map((r) => ({
    ...r,
    addedWriteMs: { p50: round(r.writeMs.p50 - none.writeMs.p50), p99: round(r.writeMs.p99 - none.writeMs.p99) },
    failureKnownMedianMs: r.failureKnownMs.every((d) => d !== null) ? round(median(r.failureKnownMs as number[])) : null,
  }));
  const out = path.join(REPO, "bench", "results", QUICK ? "audit-sink-quick.json" : "audit-sink.json");
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ at: new Date().toISOString(), writes: WRITES, failures: FAILURES, modes: summary }, null, 2)}\n`);
  for (const r of summary) {
    progress(`${r.mode.padEnd(8)} added write latency p50 ${r.addedWriteMs.p50} ms, p99 ${r.addedWriteMs.p99} ms; failure known after median ${r.failureKnownMedianMs ?? "never"} ms`);
  }
  progress(`wrote ${out}`);
}

await main();
