/**
 * Issue 12 states its targets as medians of at least three bench runs.
 * This folds the targets of several whole runs (their `targets` lists,
 * report.ts targetsOf) into one median per target, judged against the
 * same limit. Pure: bench/medians.ts reads the files and writes the result.
 */
import type { Target } from "./report.ts";
import { median, round } from "./stats.ts";

/** How many whole runs of each kind a median is taken over, unless told otherwise. */
export const DEFAULT_RUNS = 3;

export interface RunTargets {
  readonly file: string;
  readonly targets: readonly Target[];
}

export interface TargetMedian {
  readonly name: string;
  readonly limit: string;
  /** One value per run that measured it, in the order of the runs. */
  readonly values: readonly number[];
  readonly median: number;
  readonly met: boolean;
}

/** `<= 1.3x`, `>= 3000/s`: the comparison and the number a limit names. */
export function parseLimit(limit: string): { readonly atMost: boolean; readonly bound: number } | undefined {
  const found = /^(<=|>=)\s*(-?\d+(?:\.\d+)?)/.exec(limit.trim());
  if (!found) return undefined;
  return { atMost: found[1] === "<=", bound: Number(found[2]) };
}

/**
 * One median per target, over the runs that measured it, in the order the
 * targets first appear. A target whose limit cannot be read is left out:
 * a median judged against nothing would say nothing.
 */
export function targetMedians(runs: readonly RunTargets[]): TargetMedian[] {
  const byName = new Map<string, { limit: string; values: number[] }>();
  for (const run of runs) {
    for (const target of run.targets) {
      const seen = byName.get(target.name) ?? { limit: target.limit, values: [] };
      seen.values.push(target.value);
      byName.set(target.name, seen);
    }
  }
  return [...byName].flatMap(([name, { limit, values }]) => {
    const parsed = parseLimit(limit);
    if (!parsed) return [];
    const middle = round(median(values));
    return [{ name, limit, values, median: middle, met: parsed.atMost ? middle <= parsed.bound : middle >= parsed.bound }];
  });
}

/** A whole run's dated results file, fsync off (`2026-12-03T07-42-14Z.json`) or on (`…Z-fsync.json`); never latest, quick or partial runs. */
export function wholeRunKind(file: string): "fsync off" | "fsync on" | undefined {
  const found = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z(-fsync)?\.json$/.exec(file);
  if (!found) return undefined;
  return found[1] ? "fsync on" : "fsync off";
}

/** The `count` newest whole runs of each kind among `files` (names sort by their start time). */
export function newestWholeRuns(files: readonly string[], count: number): Record<"fsync off" | "fsync on", string[]> {
  const newest = (kind: "fsync off" | "fsync on"): string[] => files.filter((f) => wholeRunKind(f) === kind).sort().slice(-count);
  return { "fsync off": newest("fsync off"), "fsync on": newest("fsync on") };
}
