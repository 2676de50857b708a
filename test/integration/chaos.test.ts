/**
 * A short fault campaign on every run (DESIGN.md section 4): its own
 * cluster, three kubetx replicas behind the Service, random faults, and
 * the independent checker's verdict. The recorded long campaign is in
 * bench/results/; this keeps every change honest against a few trials.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../support/cluster.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
/** A few trials from a fixed seed: a couple of minutes on two cores, cluster start included. */
const TRIALS = 3;
const SEED = 7;
/** Cluster start (about a minute) and the trials (well under a minute each), with room for a loaded machine. */
const CAMPAIGN_TIMEOUT_MS = 12 * 60_000;

describe("the randomized fault campaign", () => {
  it(`finds no violation in ${TRIALS} trials of seed ${SEED}`, async () => {
    const result = await run(path.join(REPO, "node_modules", ".bin", "node"), [path.join(REPO, "chaos", "run.ts"), "--trials", String(TRIALS), "--seed", String(SEED)]);
    const summary = /chaos: (\d+) trials, (\d+) violations/.exec(result.stdout);
    expect(summary, `${result.stdout}\n${result.stderr}`).not.toBeNull();
    expect(Number(summary?.[1])).toBe(TRIALS);
    expect(Number(summary?.[2]), result.stdout).toBe(0);
    expect(result.code, result.stderr).toBe(0);
  }, CAMPAIGN_TIMEOUT_MS);
});
