/**
 * Scenario 5: pass-through admissions per second, one replica, in-process
 * load. AdmissionReviews go straight to the engine's /validate as the
 * apiserver sends them (its client certificate, keep-alive connections),
 * C at a time for a fixed time, of writes kubetx lets by without a
 * transaction: an object opted out in a covered namespace (it still needs
 * the namespace's labels and the policy), and a namespace no policy covers.
 * Every answer must allow, and kubetx must make no apiserver call for them
 * (counted from the audit log over the load's window).
 */
import { readFile } from "node:fs/promises";
import https from "node:https";
import { performance } from "node:perf_hooks";
import { kubetxCalls } from "../support/audit.ts";
import type { Calls } from "../support/audit.ts";
import type { BenchContext } from "../support/context.ts";
import { ENABLED } from "../support/context.ts";
import type { Summary } from "../support/stats.ts";
import { round, summarize } from "../support/stats.ts";

export interface ThroughputOptions {
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
}

type Shape = "optedOut" | "uncovered";

export interface ShapeResult {
  readonly answered: number;
  readonly perSecond: number;
  /** Time from sending a review to its whole answer, in ms, as the load generator in the same process sees it. */
  readonly latency: Summary;
  /** Answers that did not allow (or were not 200): each one is a defect of the scenario or of kubetx. */
  readonly notAllowed: number;
  /** kubetx's own apiserver calls while this load ran. */
  readonly kubetxCalls: Calls;
}

export interface ThroughputResult {
  readonly options: ThroughputOptions;
  readonly shapes: Record<Shape, ShapeResult>;
}

export async function measureThroughput(ctx: BenchContext, options: ThroughputOptions): Promise<ThroughputResult> {
  const covered = `bench-pass-${ctx.run}`;
  const plain = `bench-plain-${ctx.run}`;
  await ctx.cluster.createNamespace(covered, ENABLED);
  await ctx.cluster.createNamespace(plain);
  const client = ctx.cluster.controlPlane.apiserverClientCertificate;
  const agent = new https.Agent({
    keepAlive: true, maxSockets: options.concurrency,
    ca: await readFile(ctx.cluster.controlPlane.ca.certFile), cert: await readFile(client.certFile), key: await readFile(client.keyFile),
  });
  try {
    const target = { port: ctx.engine.server.port, agent };
    const shapes = {
      optedOut: await load(ctx, target, review(covered, { "kubetx.io/transaction": "none" }), options),
      uncovered: await load(ctx, target, review(plain, {}), options),
    };
    return { options, shapes };
  } finally {
    agent.destroy();
  }
}

interface Target {
  readonly port: number;
  readonly agent: https.Agent;
}

async function load(ctx: BenchContext, target: Target, body: (uid: number) => string, options: ThroughputOptions): Promise<ShapeResult> {
  await run(target, body, { ...options, seconds: options.warmupSeconds });
  const start = Date.now();
  const measured = await run(target, body, options);
  const end = Date.now();
  // The audit backend writes its log a moment after each request completes.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const calls = await kubetxCalls(ctx.cluster.controlPlane.auditLog, [{ start, end }]);
  ctx.progress(`  ${measured.latencies.length} answers in ${options.seconds} s, ${measured.notAllowed} not allowed, ${calls.total} kubetx apiserver calls`);
  return {
    answered: measured.latencies.length,
    perSecond: round(measured.latencies.length / measured.seconds, 0),
    latency: summarize(measured.latencies),
    notAllowed: measured.notAllowed,
    kubetxCalls: calls,
  };
}

/** `concurrency` loops, each sending the next review when its last answer is complete, until the time is up. */
async function run(target: Target, body: (uid: number) => string, options: ThroughputOptions): Promise<{ latencies: number[]; notAllowed: number; seconds: number }> {
  const latencies: number[] = [];
  let notAllowed = 0;
  let next = 0;
  const began = performance.now();
  const until = began + options.seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < until) {
      const sent = performance.now();
      const allowed = await send(target, body((next += 1)));
      latencies.push(performance.now() - sent);
      if (!allowed) notAllowed += 1;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  return { latencies, notAllowed, seconds: (performance.now() - began) / 1000 };
}

function send(target: Target, text: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.request({
      host: "127.0.0.1", port: target.port, path: "/validate", method: "POST", agent: target.agent,
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(res.statusCode === 200 && allowedIn(Buffer.concat(chunks).toString("utf8"))));
      res.on("error", () => resolve(false));
    });
    req.on("error", () => resolve(false));
    req.end(text);
  });
}

function allowedIn(text: string): boolean {
  try {
    return (JSON.parse(text) as { response?: { allowed?: boolean } }).response?.allowed === true;
  } catch {
    return false;
  }
}

/** A ConfigMap CREATE by alice, as the apiserver words it; a fresh uid per request. */
function review(namespace: string, annotations: Record<string, string>): (uid: number) => string {
  return (uid) => {
    const name = `pass-${uid}`;
    return JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid: `00000000-0000-4000-8000-${String(uid).padStart(12, "0")}`,
        kind: { group: "", version: "v1", kind: "ConfigMap" },
        resource: { group: "", version: "v1", resource: "configmaps" },
        requestKind: { group: "", version: "v1", kind: "ConfigMap" },
        requestResource: { group: "", version: "v1", resource: "configmaps" },
        name, namespace, operation: "CREATE",
        userInfo: { username: "alice", groups: ["system:authenticated"] },
        object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace, annotations }, data: { v: String(uid) } },
        oldObject: null,
        dryRun: false,
        options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
      },
    });
  };
}
