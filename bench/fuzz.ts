/**
 * Fuzzes a running kubetx: starts its own control plane in a temp dir and
 * the engine in this process (production timings, the audit sink on, only
 * the apiserver's client certificate let in), captures real AdmissionReviews
 * and audit events from a few applies, then sends seeded mutations of them
 * (bench/fuzz/mutate.ts) as the apiserver and as anyone else, checking
 * every answer, that kubetx wrote nothing, that its memory stayed flat, and
 * that it still admits a real apply. Prints the numbers and writes
 * bench/results/fuzz.json; exit 1 when a check failed.
 *
 *   npm run fuzz                                  (100,000 cases)
 *   npm run fuzz -- --count 5000 --seed 7 [--unauthenticated 0.15] [--concurrency 8]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { flagPolicies, loadConfig } from "../src/config/config.ts";
import { NotFound, createOrReplace } from "../src/kube/index.ts";
import { startWebhookServer } from "../src/main.ts";
import { ENABLED_LABEL } from "../src/policy/policy.ts";
import { silentLogger } from "../src/telemetry/logger.ts";
import { CONFIGURATION_PATHS, urlClientConfig, webhookConfigurations } from "../src/webhooks/configurations.ts";
import { fuzz } from "./fuzz/harness.ts";
import { ReviewRecorder } from "./fuzz/seeds.ts";
import { Cleanup } from "./support/cleanup.ts";
import type { BenchCluster } from "./support/cluster.ts";
import { REPO, startBenchCluster } from "./support/cluster.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "100000" },
    seed: { type: "string", default: String(Date.now() % 2 ** 31) },
    unauthenticated: { type: "string", default: "0.15" },
    concurrency: { type: "string", default: "8" },
    out: { type: "string", default: path.join(REPO, "bench", "results", "fuzz.json") },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(`Usage: npm run fuzz -- [--count N] [--seed S] [--unauthenticated SHARE] [--concurrency C] [--out FILE]

Starts its own control plane and kubetx in this process, then sends N seeded
mutations of real AdmissionReviews and audit EventLists (default 100000; about
35 a second on 2 cores), a SHARE of them (default 0.15) without the apiserver's
client certificate, C at a time (default 8). Checks every answer, that kubetx
wrote nothing, that its heap stayed flat and that a real apply still commits;
prints the tallies (denials with code 500 by message) and writes FILE
(default bench/results/fuzz.json). Exit 1 when a check failed.`);
  process.exit(0);
}
/** Memory is sampled after a full GC every this many cases. */
const SAMPLE_EVERY = 2_000;
/** The heap after GC may end this far above its warmed-up level: a leak of even a few hundred bytes per case shows well beyond it. */
const MEMORY_SLACK_MIB = 32;
const started = Date.now();
const progress = (line: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);

async function startTarget(cluster: BenchCluster, cleanup: Cleanup): Promise<Parameters<typeof fuzz>[0]> {
  const namespace = "fuzz-covered";
  const plainNamespace = "fuzz-plain";
  await cluster.createNamespace(namespace, { [ENABLED_LABEL]: "true" });
  await cluster.createNamespace(plainNamespace);
  const recorder = new ReviewRecorder();
  // Production timings; admin exempt, as in the bench, so the editor binder's writes stay out.
  const config = loadConfig({ policySource: "flags", exemptUsers: ["admin"], auditSink: true });
  const server = await startWebhookServer({
    kubeconfig: cluster.controlPlane.kubeconfigs.kubetx, tls: cluster.webhookTls, host: "127.0.0.1", port: 0, logger: silentLogger(),
    config,
    apiserverClients: cluster.controlPlane.apiserverClient,
    onReview: recorder.onReview,
  });
  cleanup.push("stop engine", () => server.close());
  const configurations = webhookConfigurations((p) => urlClientConfig(`https://127.0.0.1:${server.port}`, p, cluster.controlPlane.caData), flagPolicies(config));
  return {
    port: server.port, admin: cluster.admin, namespace, plainNamespace, recorder,
    auditLog: cluster.controlPlane.auditLog, caFile: cluster.controlPlane.ca.certFile, apiserverClient: cluster.controlPlane.apiserverClientCertificate,
    kubectlAsAlice: (args, input) => cluster.kubectl(args, "alice", input),
    register: async () => {
      for (const c of configurations) await createOrReplace(cluster.admin, CONFIGURATION_PATHS[c.kind as keyof typeof CONFIGURATION_PATHS], c);
      // The apiserver picks a new configuration up within a second or two.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    },
    unregister: async () => {
      for (const p of Object.values(CONFIGURATION_PATHS)) {
        await cluster.admin.delete(`${p}/kubetx`).catch((error: unknown) => {
          if (!(error instanceof NotFound)) throw error;
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    },
  };
}

async function main(): Promise<number> {
  const cleanup = new Cleanup();
  process.once("SIGINT", () => void cleanup.run().finally(() => process.exit(130)));
  try {
    const cluster = await startBenchCluster(cleanup, progress);
    const target = await startTarget(cluster, cleanup);
    const load = loadavg();
    const report = await fuzz(target, {
      count: Number(values.count), seed: Number(values.seed), unauthenticatedShare: Number(values.unauthenticated),
      concurrency: Number(values.concurrency), sampleEvery: SAMPLE_EVERY, memorySlackMiB: MEMORY_SLACK_MIB, onProgress: progress,
    });
    const result = {
      finishedAt: new Date().toISOString(), environment: { cpus: cpus().length, node: process.version, loadAverageStart: load, loadAverageEnd: loadavg() }, ...report,
    };
    await mkdir(path.dirname(values.out), { recursive: true });
    await writeFile(values.out, `${JSON.stringify(result, null, 2)}\n`);
    progress(`${report.count} cases in ${report.seconds.toFixed(1)} s (${report.perSecond.toFixed(0)}/s, ${(report.bytesSent / 1024 / 1024).toFixed(0)} MiB sent), seed ${report.seed}`);
    progress(`problems ${report.problemCount} (requests sent again after a stale kept-alive socket: ${report.staleSocketRetries}), writes ${report.writes.length}, heap after GC ${report.memoryCheck.warmMiB} -> ${report.memoryCheck.endMiB} MiB (max ${report.memoryCheck.maxMiB}), still serves: ${report.stillServes}`);
    for (const [category, n] of Object.entries(report.categories).sort()) progress(`  ${category}: ${n}`);
    for (const [message, n] of Object.entries(report.internalErrors).sort((a, b) => b[1] - a[1])) progress(`  denied with code 500, ${n}x: ${message}`);
    for (const problem of report.problems) progress(`  problem #${problem.index} ${problem.target} [${problem.mutations.join(", ")}]: ${problem.problem}`);
    progress(`${report.passed ? "PASSED" : "FAILED"}; results in ${values.out}`);
    return report.passed ? 0 : 1;
  } finally {
    for (const failure of await cleanup.run()) progress(`cleanup: ${failure}`);
  }
}

main().then((code) => process.exit(code), (error: unknown) => {
  console.error(error);
  process.exit(2);
});
