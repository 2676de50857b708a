/**
 * How fast `kubectl tx audit` reads an apiserver audit log, and that its
 * memory stays flat as the log grows: generates synthetic logs of about
 * 10 MB and 100 MB (and the 100 MB one gzipped) in a temp dir, reads each
 * in a fresh child process (so one run's heap cannot flatter or spoil the
 * next) and reports wall time, events/s and peak RSS. Results go to
 * bench/results/audit-log.json.
 *
 *   node bench/audit-log.ts                 the whole benchmark
 *   node bench/audit-log.ts --measure FILE  one read (what the children run)
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";
import { AuditCollector } from "../src/audit/group.ts";
import { readAuditLogs } from "../src/audit/read.ts";

const MB = 1024 * 1024;
const SIZES_MB = [10, 100] as const;
/** One kubetx transaction (3 members) per this many background lines: a busy cluster where kubetx is a small part of the traffic. */
const LINES_PER_TRANSACTION = 200;
/** Every this many transactions, the apply's last object is invalid: a 422 the reader must attach. */
const REJECTED_EVERY = 5;
/** How often the child samples its RSS while reading. */
const SAMPLE_MS = 20;
const RESULTS = path.join(import.meta.dirname, "results", "audit-log.json");
const START = Date.parse("2026-11-24T00:00:00Z");

const USERS = ["system:kube-controller-manager", "system:kube-scheduler", "system:serviceaccount:kube-system:coredns", "system:node:worker-1", "system:node:worker-2", "system:serviceaccount:monitoring:prometheus"];
const RESOURCES = [
  { resource: "pods", apiGroup: "" }, { resource: "leases", apiGroup: "coordination.k8s.io" }, { resource: "endpointslices", apiGroup: "discovery.k8s.io" },
  { resource: "configmaps", apiGroup: "" }, { resource: "deployments", apiGroup: "apps" }, { resource: "events", apiGroup: "" },
];
const VERBS = ["get", "list", "watch", "update", "patch", "get", "get", "list"];

interface Ctx {
  n: number;
  ms: number;
  transactions: number;
  rejected: number;
}

function uuid(n: number): string {
  const hex = n.toString(16).padStart(12, "0");
  return `5f0c9a1e-7b2d-4c3e-9f10-${hex}`;
}

function timestamp(ms: number, micros: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, `.$1${String(micros % 1000).padStart(3, "0")}Z`);
}

interface Request {
  readonly user: string;
  readonly groups: readonly string[];
  readonly verb: string;
  readonly ref: { resource: string; apiGroup: string; namespace: string; name: string };
  readonly code: number;
  readonly annotations: Record<string, string>;
  readonly message?: string;
}

/** One line as kube-apiserver writes it at level Metadata. */
function line(ctx: Ctx, r: Request): string {
  ctx.n += 1;
  ctx.ms += 1 + (ctx.n % 3);
  const base = r.ref.apiGroup ? `/apis/${r.ref.apiGroup}/v1` : "/api/v1";
  return JSON.stringify({
    kind: "Event", apiVersion: "audit.k8s.io/v1", level: "Metadata", auditID: uuid(ctx.n), stage: "ResponseComplete",
    requestURI: `${base}/namespaces/${r.ref.namespace}/${r.ref.resource}/${r.ref.name}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict`,
    verb: r.verb, user: { username: r.user, uid: `uid-${r.user.length}`, groups: r.groups }, sourceIPs: ["10.0.12.34"],
    userAgent: "kube-controller-manager/v1.37.2 (linux/amd64) kubernetes/0cda7b1/system:serviceaccount:kube-system:replicaset-controller",
    objectRef: { resource: r.ref.resource, namespace: r.ref.namespace, name: r.ref.name, ...(r.ref.apiGroup ? { apiGroup: r.ref.apiGroup } : {}), apiVersion: "v1" },
    responseStatus: { metadata: {}, ...(r.message ? { status: "Failure", message: r.message, reason: "Invalid" } : {}), code: r.code },
    requestReceivedTimestamp: timestamp(ctx.ms - 1, ctx.n * 7), stageTimestamp: timestamp(ctx.ms, ctx.n * 13),
    annotations: { "authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": `RBAC: allowed by ClusterRoleBinding "system:controller" of ClusterRole "system:controller" to User "${r.user}"`, ...r.annotations },
  });
}

function background(ctx: Ctx): string {
  const i = ctx.n;
  const verb = VERBS[i % VERBS.length] ?? "get";
  const resource = RESOURCES[i % RESOURCES.length] ?? { resource: "pods", apiGroup: "" };
  // Controllers' optimistic-concurrency conflicts: 4xx writes that are nobody's transaction.
  const code = verb === "update" && i % 17 === 0 ? 409 : 200;
  const annotations: Record<string, string> = verb === "patch" && i % 4 === 0 ? { "validate.kubetx.io/decision": "pass" } : {};
  return line(ctx, { user: USERS[i % USERS.length] ?? "", groups: ["system:authenticated"], verb, ref: { ...resource, namespace: `team-${i % 40}`, name: `object-${i % 5000}` }, code, annotations });
}

function transaction(ctx: Ctx): string[] {
  ctx.transactions += 1;
  const id = `t-${(0x10000000 + ctx.transactions).toString(16)}`;
  const user = ctx.transactions % 2 === 0 ? "alice" : "bob";
  const namespace = `shop-${ctx.transactions % 10}`;
  const member = (name: string): string => line(ctx, {
    user, groups: ["developers", "system:authenticated"], verb: "create", code: 201, ref: { resource: "configmaps", apiGroup: "", namespace, name },
    annotations: { "validate.kubetx.io/decision": "member", "validate.kubetx.io/lock": `lk-${id}-${name}`, "validate.kubetx.io/transaction": id },
  });
  const lines = [member("settings"), member("flags"), member("routes")];
  if (ctx.transactions % REJECTED_EVERY === 0) {
    ctx.rejected += 1;
    lines.push(line(ctx, {
      user, groups: ["developers", "system:authenticated"], verb: "create", code: 422, annotations: {}, ref: { resource: "configmaps", apiGroup: "", namespace, name: "bad" },
      message: 'ConfigMap "bad" is invalid: data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters',
    }));
  }
  return lines;
}

/** Writes about `bytes` of log to `file`, respecting the stream's backpressure. */
async function generate(file: string, bytes: number): Promise<Ctx> {
  const ctx: Ctx = { n: 0, ms: START, transactions: 0, rejected: 0 };
  const out = createWriteStream(file);
  let written = 0;
  while (written < bytes) {
    const lines = ctx.n % LINES_PER_TRANSACTION === 0 ? transaction(ctx) : [background(ctx)];
    const chunk = `${lines.join("\n")}\n`;
    written += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, "drain");
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return ctx;
}

function vmHwmMB(status: string): number {
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? "0");
  return kb / 1024;
}

/** The child: reads FILE as `kubectl tx audit` does and prints one JSON line. */
async function measure(file: string): Promise<void> {
  const baselineMB = process.memoryUsage.rss() / MB;
  let sampledPeak = baselineMB;
  const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss() / MB)), SAMPLE_MS);
  const started = performance.now();
  const collector = new AuditCollector();
  const stats = await readAuditLogs([file], (entry) => void collector.add(entry));
  const timelines = collector.timelines();
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  const rejected = timelines.reduce((sum, t) => sum + t.entries.filter((e) => e.rejectedBeforeKubetx).length, 0);
  // What the reader still holds (the collected transactions) once garbage is gone; RSS also counts V8's young generation, which grows with the allocation rate up to a fixed cap.
  (globalThis as { gc?: () => void }).gc?.();
  const retainedHeapMB = process.memoryUsage().heapUsed / MB;
  process.stdout.write(`${JSON.stringify({
    lines: stats.lines, events: stats.events, transactions: timelines.length, rejected, wallMs: Math.round(wallMs),
    eventsPerSecond: Math.round(stats.events / (wallMs / 1000)), baselineRssMB: round(baselineMB), sampledPeakRssMB: round(sampledPeak),
    peakRssMB: round(vmHwmMB(await readFile("/proc/self/status", "utf8"))), retainedHeapMB: round(retainedHeapMB),
  })}\n`);
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

interface Run {
  readonly name: string;
  readonly fileMB: number;
  readonly gzip: boolean;
  readonly expected: { transactions: number; rejected: number };
  readonly [field: string]: unknown;
}

async function child(file: string): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--measure", file], { maxBuffer: MB });
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function runOne(dir: string, sizeMB: number): Promise<Run[]> {
  const file = path.join(dir, `audit-${sizeMB}mb.log`);
  const ctx = await generate(file, sizeMB * MB);
  const expected = { transactions: ctx.transactions, rejected: ctx.rejected };
  const plain: Run = { name: `${sizeMB} MB`, fileMB: round((await stat(file)).size / MB), gzip: false, expected, ...(await child(file)) };
  report(plain);
  if (sizeMB !== Math.max(...SIZES_MB)) return [plain];
  const gz = `${file}.gz`;
  await pipeline(createReadStream(file), createGzip(), createWriteStream(gz));
  const zipped: Run = { name: `${sizeMB} MB gzipped`, fileMB: round((await stat(gz)).size / MB), gzip: true, expected, ...(await child(gz)) };
  report(zipped);
  return [plain, zipped];
}

function report(run: Run): void {
  const ok = run.transactions === run.expected.transactions && run.rejected === run.expected.rejected ? "ok" : "MISMATCH";
  process.stdout.write(
    `${run.name.padEnd(16)} file ${String(run.fileMB).padStart(6)} MB  ${String(run.events).padStart(8)} events  ${String(run.wallMs).padStart(6)} ms  ` +
      `${String(run.eventsPerSecond).padStart(7)} events/s  peak RSS ${String(run.peakRssMB).padStart(6)} MB (baseline ${String(run.baselineRssMB)} MB, ` +
      `heap after GC ${String(run.retainedHeapMB)} MB)  ` +
      `${String(run.transactions)} transactions, ${String(run.rejected)} rejected: ${ok}\n`,
  );
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "kubetx-bench-audit-"));
  try {
    const runs: Run[] = [];
    for (const size of SIZES_MB) runs.push(...(await runOne(dir, size)));
    const results = { benchmark: "audit-log", date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? "", runs };
    await mkdir(path.dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`written to ${path.relative(process.cwd(), RESULTS)}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const [flag, file] = process.argv.slice(2);
if (flag === "--measure" && file) await measure(file);
else await main();
