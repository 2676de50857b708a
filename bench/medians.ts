/**
 * Issue 12's targets as medians of several whole bench runs: reads the
 * newest whole runs of each kind in bench/results (fsync off and fsync on),
 * or the files named, prints each target's value per run, its median and
 * whether the median meets it, and writes bench/results/latest-medians.json
 * and a dated copy. Run `npm run bench` (and `-- --fsync`) that many times
 * first.
 *
 *   npm run bench:medians                 (the 3 newest whole runs of each kind)
 *   npm run bench:medians -- --runs=5
 *   npm run bench:medians -- FILE...      (these runs, as one group)
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { RunTargets, TargetMedian } from "./support/medians.ts";
import { DEFAULT_RUNS, newestWholeRuns, targetMedians } from "./support/medians.ts";
import type { Target } from "./support/report.ts";

const RESULTS_DIR = path.join(import.meta.dirname, "results");

interface Group {
  readonly kind: string;
  readonly files: readonly string[];
  readonly targets: readonly TargetMedian[];
}

async function readRun(file: string): Promise<RunTargets> {
  const parsed = JSON.parse(await readFile(file, "utf8")) as { targets?: Target[] };
  if (!Array.isArray(parsed.targets)) throw new Error(`${file} has no targets list: is it a bench results file?`);
  return { file: path.basename(file), targets: parsed.targets };
}

async function groups(args: readonly string[]): Promise<Group[]> {
  const files = args.filter((a) => !a.startsWith("--"));
  if (files.length > 0) return [{ kind: "the files named", files, targets: targetMedians(await Promise.all(files.map(readRun))) }];
  const runsArg = args.find((a) => a.startsWith("--runs="))?.slice("--runs=".length);
  const count = runsArg === undefined ? DEFAULT_RUNS : Number(runsArg);
  if (!Number.isInteger(count) || count < 1) throw new Error(`--runs= takes a whole number of runs, got "${runsArg ?? ""}"`);
  const newest = newestWholeRuns(await readdir(RESULTS_DIR), count);
  return Promise.all(Object.entries(newest).map(async ([kind, names]) => {
    const runs = await Promise.all(names.map((name) => readRun(path.join(RESULTS_DIR, name))));
    return { kind, files: names, targets: targetMedians(runs) };
  }));
}

function text(all: readonly Group[]): string {
  const lines: string[] = [];
  for (const group of all) {
    lines.push(`${group.kind}: ${group.files.length} run${group.files.length === 1 ? "" : "s"} (${group.files.join(", ") || "none found; run npm run bench first"})`);
    for (const t of group.targets) {
      lines.push(`   ${t.met ? "MET   " : "MISSED"} ${t.name}: median ${t.median} of ${t.values.join(", ")} (target ${t.limit})`);
    }
    lines.push("");
  }
  return lines.join("\n");
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const all = await groups(args);
  process.stdout.write(text(all));
  if (all.every((g) => g.files.length === 0)) return 1;
  const createdAt = new Date().toISOString();
  const stamp = createdAt.replace(/:/g, "-").replace(/\.\d{3}Z$/, "Z");
  const body = `${JSON.stringify({ createdAt, groups: all }, null, 2)}\n`;
  const written = [path.join(RESULTS_DIR, "latest-medians.json"), path.join(RESULTS_DIR, `medians-${stamp}.json`)];
  for (const file of written) await writeFile(file, body);
  process.stdout.write(`written: ${written.map((f) => path.relative(process.cwd(), f)).join(", ")}\n`);
  return 0;
}

main().then((code) => (process.exitCode = code), (error: unknown) => {
  process.stderr.write(`bench:medians: ${(error as Error).message}\n`);
  process.exitCode = 2;
});
