/** What every scenario gets: the cluster, the engine, the transaction watch and a progress printer. */
import type { BenchCluster } from "./cluster.ts";
import type { BenchEngine } from "./engine.ts";
import type { PhaseRecorder } from "./phases.ts";

export interface BenchContext {
  readonly cluster: BenchCluster;
  readonly engine: BenchEngine;
  readonly phases: PhaseRecorder;
  /** A short random suffix for names in this run. */
  readonly run: string;
  progress(line: string): void;
}

export const ENABLED = { "kubetx.io/enabled": "true" } as const;

/** Registers or unregisters the webhook, only when it is not already in that state. */
export async function webhook(ctx: BenchContext, want: "on" | "off"): Promise<void> {
  if (want === "on" && !ctx.engine.registered) await ctx.engine.register();
  if (want === "off" && ctx.engine.registered) await ctx.engine.unregister();
}
