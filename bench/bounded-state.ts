/**
 * Bounded state: many transactions through one kubetx (in this process),
 * sampling its memory and the time of a resolver pass and of a
 * garbage-collection pass every block of transactions. Flat columns mean
 * nothing grows with the number of transactions kubetx has seen.
 *
 *   npm run bench:bounded                              (10,000 transactions)
 *   npm run bench:bounded -- --transactions 2000       (a shorter run)
 *
 * Each transaction is explicit with one expected member (alice creates one
 * ConfigMap annotated with a new id), so it commits as soon as it lands;
 * every tenth is given two expected members and only one arrives, so it
 * rolls back at maxOpenSeconds. Writes go 8 at a time. Prints one line per
 * block and writes bench/results/bounded-state.json.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { ConfigInput } from "../src/config/config.ts";
import type { KubeObject } from "../src/kube/index.ts";
import { mapLimit } from "../src/resolver/concurrency.ts";
import { ANNOTATION_EXPECTED_MEMBERS, ANNOTATION_TRANSACTION } from "../src/transactions/model.ts";
import { Cleanup } from "./support/cleanup.ts";
import { REPO, startBenchCluster } from "./support/cluster.ts";
import { ENABLED } from "./support/context.ts";
import { startBenchEngine } from "./support/engine.ts";
import { median, round } from "./support/stats.ts";

const { values } = parseArgs({ options: { transactions: { type: "string" }, block: { type: "string" } } });
const TOTAL = Number(values.transactions ?? 10_000);
const BLOCK = Number(values.block ?? 1_000);
const CONCURRENCY = 8;
/** Production defaults but a short maxOpen, so the incomplete ones roll back within the run. */
const ENGINE_INPUT: ConfigInput = { policySource: "flags", identity: "bench-bounded", exemptUsers: ["admin"], maxOpenSeconds: 5 };
const RESULTS = path.join(REPO, "bench", "results", "bounded-state.json");

interface Sample {
  readonly transactions: number;
  readonly seconds: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
  readonly resolverPassMs: number;
  readonly gcPassMs: number;
  readonly remembered: number;
  readonly records: number;
}

const t0 = performance.now();
const progress = (line: string): void => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${line}`);
const mib = (bytes: number): number => round(bytes / 1024 / 1024, 1);

async function main(): Promise<void> {
  if (typeof globalThis.gc !== "function") throw new Error("run with node --expose-gc, so memory is measured after a collection");
  const cleanup = new Cleanup();
  process.once("SIGINT", () => void cleanup.run().then(() => process.exit(130)));
  try {
    const cluster = await startBenchCluster(cleanup, progress);
    const engine = await startBenchEngine(cluster, cleanup, ENGINE_INPUT, path.join(cluster.dir, "engine.log"));
    await engine.register();
    const ns = `bounded-${randomBytes(3).toString("hex")}`;
    await cluster.createNamespace(ns, ENABLED);
    const samples: Sample[] = [];
    const sample = async (done: number): Promise<void> => {
      const passes: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        const started = performance.now();
        await engine.server.resolver.tick();
        passes.push(performance.now() - started);
      }
      const gcStarted = performance.now();
      await engine.server.resolver.collectGarbage();
      const gcPassMs = performance.now() - gcStarted;
      globalThis.gc?.();
      const memory = process.memoryUsage();
      const records = await cluster.admin.get<{ items: unknown[] }>("/apis/kubetx.io/v1alpha1/transactions");
      const s: Sample = {
        transactions: done, seconds: round((performance.now() - t0) / 1000, 1), heapMiB: mib(memory.heapUsed), rssMiB: mib(memory.rss),
        resolverPassMs: round(median(passes), 1), gcPassMs: round(gcPassMs, 1), remembered: engine.server.resolver.remembered, records: records.items.length,
      };
      samples.push(s);
      progress(`${String(done).padStart(6)} transactions: heap ${s.heapMiB} MiB, rss ${s.rssMiB} MiB, resolver pass ${s.resolverPassMs} ms, gc pass ${s.gcPassMs} ms, remembered ${s.remembered}, records ${s.records}`);
    };
    await sample(0);
    for (let done = 0; done < TOTAL; done += BLOCK) {
      const ids = Array.from({ length: Math.min(BLOCK, TOTAL - done) }, (_, i) => done + i);
      await mapLimit(ids, CONCURRENCY, (n) => cluster.alice.create(`/api/v1/namespaces/${ns}/configmaps`, member(ns, n)));
      await sample(done + ids.length);
    }
    const first = samples[1] ?? samples[0];
    const last = samples.at(-1);
    const summary = first && last ? {
      heapGrowthMiB: round(last.heapMiB - first.heapMiB, 1),
      resolverPassRatio: round(last.resolverPassMs / Math.max(first.resolverPassMs, 0.1), 2),
      gcPassRatio: round(last.gcPassMs / Math.max(first.gcPassMs, 0.1), 2),
    } : {};
    progress(`summary (last block against the first): ${JSON.stringify(summary)}`);
    await writeFile(RESULTS, `${JSON.stringify({ at: new Date().toISOString(), transactions: TOTAL, block: BLOCK, concurrency: CONCURRENCY, summary, samples }, null, 2)}\n`);
    progress(`wrote ${path.relative(REPO, RESULTS)}`);
  } finally {
    await cleanup.run();
  }
}

/** The n-th transaction's only member; every tenth expects a second that never comes, so it rolls back. */
function member(ns: string, n: number): KubeObject {
  const id = `t-${randomBytes(4).toString("hex")}`;
  return {
    apiVersion: "v1", kind: "ConfigMap",
    metadata: { name: `cm-${n}`, namespace: ns, annotations: { [ANNOTATION_TRANSACTION]: id, [ANNOTATION_EXPECTED_MEMBERS]: n % 10 === 9 ? "2" : "1" } },
    data: { n: String(n) },
  };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
