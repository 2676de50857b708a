/**
 * A fuzz campaign against a running kubetx: cases made from seeds (real
 * AdmissionReviews and audit EventLists), sent as the apiserver (its
 * client certificate) and as anyone else (none), every answer checked,
 * memory sampled after a GC between batches.
 */
import https from "node:https";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Answer, Target } from "./check.ts";
import { classify } from "./check.ts";
import type { FuzzCase, Json } from "./mutate.ts";
import { mutate, pick, prng } from "./mutate.ts";

export interface Seeds {
  /** Whole AdmissionReview bodies, as the apiserver sent them. */
  readonly admission: readonly Json[];
  /** Whole audit.k8s.io/v1 EventList bodies. */
  readonly audit: readonly Json[];
}

export interface CampaignOptions {
  readonly port: number;
  readonly count: number;
  readonly seed: number;
  readonly seeds: Seeds;
  /** The apiserver's client certificate and key, and the CA of kubetx's serving certificate. */
  readonly identity: { readonly cert: Buffer; readonly key: Buffer };
  readonly ca: Buffer;
  /** Share of cases sent without a client certificate. */
  readonly unauthenticatedShare: number;
  readonly concurrency: number;
  /** Cases between memory samples. */
  readonly sampleEvery: number;
  readonly onProgress?: (line: string) => void;
}

export interface Problem {
  readonly index: number;
  readonly target: string;
  readonly authenticated: boolean;
  readonly mutations: readonly string[];
  readonly problem: string;
}

export interface MemorySample {
  readonly cases: number;
  readonly heapUsedMiB: number;
  readonly rssMiB: number;
}

export interface CampaignResult {
  readonly count: number;
  readonly seed: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly bytesSent: number;
  /** `target authenticated|unauthenticated: category` to how many answers fell in it. */
  readonly categories: Record<string, number>;
  readonly mutations: Record<string, number>;
  /** Denials with code 500 (an error inside kubetx, caught and answered), by the shape of their message. */
  readonly internalErrors: Record<string, number>;
  readonly problemCount: number;
  /** The first problems, to reproduce with their index. */
  readonly problems: readonly Problem[];
  readonly memory: readonly MemorySample[];
  /** Requests sent again because the kept-alive socket they went out on had just been closed (see send). */
  readonly staleSocketRetries: number;
}

/** A request that takes longer than the apiserver would wait for a webhook (its maximum timeout is 30 s) is a problem. */
const REQUEST_TIMEOUT_MS = 30_000;
const KEPT_PROBLEMS = 20;
/** Audit batches are a third of the cases, admission reviews the rest; /observe gets a third of those. */
const AUDIT_SHARE = 1 / 3;
const OBSERVE_SHARE = 1 / 3;

interface PlannedCase {
  readonly index: number;
  readonly target: Target;
  readonly path: string;
  readonly authenticated: boolean;
  readonly fuzz: FuzzCase;
}

/** Keeps the dry run of a review as it was: a real, well-formed review from the apiserver is meant to write, a fuzzed one never is. */
function pinDryRun(value: Json): Json {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const request = value.request;
  if (request === null || typeof request !== "object" || Array.isArray(request) || request === undefined) return value;
  return { ...value, request: { ...request, dryRun: true } };
}

/** The case at `index` of a campaign: the same seed and index always give the same case. */
export function planCase(options: Pick<CampaignOptions, "seed" | "seeds" | "unauthenticatedShare">, index: number): PlannedCase {
  const random = prng((options.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const authenticated = random() >= options.unauthenticatedShare;
  const target: Target = random() < AUDIT_SHARE ? "audit" : "admission";
  if (target === "audit") return { index, target, path: "/audit", authenticated, fuzz: mutate(pick(random, options.seeds.audit), random) };
  const path = random() < OBSERVE_SHARE ? "/observe" : "/validate";
  return { index, target, path, authenticated, fuzz: mutate(pick(random, options.seeds.admission), random, pinDryRun) };
}

/**
 * An error from a request sent on a kept-alive socket the server closed
 * (its keep-alive timeout) just as the request went out: Node's documented
 * race (http `request.reusedSocket`), not an answer of kubetx's. Such a
 * request is sent again once, on a new socket, and counted.
 */
interface Stale {
  readonly stale: Error;
}

async function send(options: CampaignOptions, agents: { apiserver: https.Agent; anyone: https.Agent }, planned: PlannedCase, onRetry: () => void): Promise<Answer | Error> {
  const first = await sendOnce(options, agents, planned);
  if (!("stale" in first)) return first;
  onRetry();
  const again = await sendOnce(options, agents, planned);
  return "stale" in again ? again.stale : again;
}

function sendOnce(options: CampaignOptions, agents: { apiserver: https.Agent; anyone: https.Agent }, planned: PlannedCase): Promise<Answer | Error | Stale> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { "content-length": planned.fuzz.body.length };
    if (planned.fuzz.contentType) headers["content-type"] = planned.fuzz.contentType;
    const req = https.request({
      host: "127.0.0.1", port: options.port, path: planned.path, method: "POST", headers, ca: options.ca,
      agent: planned.authenticated ? agents.apiserver : agents.anyone, timeout: REQUEST_TIMEOUT_MS,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (error) => resolve(error));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on("error", (error: NodeJS.ErrnoException) => resolve(req.reusedSocket && error.code === "ECONNRESET" ? { stale: error } : error));
    req.end(planned.fuzz.body);
  });
}

/**
 * A full garbage collection, so a sample measures what is still referenced:
 * node's own gc() when run with --expose-gc, else one the flag exposes
 * now (vitest's workers and a plain `node bench/fuzz.ts` run without it).
 */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

function sampleMemory(collect: () => void, cases: number): MemorySample {
  collect();
  const usage = process.memoryUsage();
  const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;
  return { cases, heapUsedMiB: mib(usage.heapUsed), rssMiB: mib(usage.rss) };
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const agents = {
    apiserver: new https.Agent({ keepAlive: true, maxSockets: options.concurrency, cert: options.identity.cert, key: options.identity.key }),
    anyone: new https.Agent({ keepAlive: true, maxSockets: options.concurrency }),
  };
  const categories: Record<string, number> = {};
  const mutations: Record<string, number> = {};
  const internalErrors: Record<string, number> = {};
  const problems: Problem[] = [];
  let problemCount = 0;
  let bytesSent = 0;
  let staleSocketRetries = 0;
  const collect = collector();
  const memory: MemorySample[] = [sampleMemory(collect, 0)];
  const started = performance.now();
  try {
    for (let batch = 0; batch < options.count; batch += options.sampleEvery) {
      const end = Math.min(options.count, batch + options.sampleEvery);
      let next = batch;
      const worker = async (): Promise<void> => {
        for (let index = next++; index < end; index = next++) {
          const planned = planCase(options, index);
          bytesSent += planned.fuzz.body.length;
          for (const name of planned.fuzz.mutations) bump(mutations, name);
          const answer = await send(options, agents, planned, () => (staleSocketRetries += 1));
          const verdict = answer instanceof Error ? { category: "connection error", problem: answer.message } : classify(planned.target, planned.authenticated, answer);
          bump(categories, `${planned.target} ${planned.authenticated ? "as the apiserver" : "unauthenticated"}: ${verdict.category}`);
          if ("internalError" in verdict && verdict.internalError !== undefined) bump(internalErrors, verdict.internalError);
          if (verdict.problem === undefined) continue;
          problemCount += 1;
          if (problems.length < KEPT_PROBLEMS) problems.push({ index, target: planned.path, authenticated: planned.authenticated, mutations: planned.fuzz.mutations, problem: verdict.problem });
        }
      };
      await Promise.all(Array.from({ length: options.concurrency }, worker));
      memory.push(sampleMemory(collect, end));
      options.onProgress?.(`fuzz: ${end}/${options.count} cases, ${problemCount} problems, heap ${memory.at(-1)?.heapUsedMiB ?? 0} MiB`);
    }
  } finally {
    agents.apiserver.destroy();
    agents.anyone.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  return { count: options.count, seed: options.seed, seconds, perSecond: options.count / seconds, bytesSent, categories, mutations, internalErrors, problemCount, problems, memory, staleSocketRetries };
}

/**
 * Whether memory stayed flat: the heap after GC at the end within `slackMiB`
 * of the first sample taken once the server had warmed up (a quarter in).
 */
export function memoryFlat(samples: readonly MemorySample[], slackMiB: number): { flat: boolean; warmMiB: number; endMiB: number; maxMiB: number } {
  const warm = samples[Math.floor(samples.length / 4)] ?? samples[0];
  const end = samples.at(-1);
  const warmMiB = warm?.heapUsedMiB ?? 0;
  const endMiB = end?.heapUsedMiB ?? 0;
  return { flat: endMiB <= warmMiB + slackMiB, warmMiB, endMiB, maxMiB: Math.max(...samples.map((s) => s.heapUsedMiB)) };
}
