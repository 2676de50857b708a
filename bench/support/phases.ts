/**
 * Watches every Transaction record and notes when this process first saw
 * each phase, so phase timings need no polling (and carry only the watch's
 * delivery delay, a few milliseconds on loopback).
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient, ObjectList } from "../../src/kube/index.ts";
import type { Phase, Transaction } from "../../src/transactions/model.ts";
import { TERMINAL_PHASES, transactionPath } from "../../src/transactions/model.ts";
import type { Cleanup } from "./cleanup.ts";

/** Pause before re-listing when the watch ends or fails. */
const REWATCH_DELAY_MS = 200;

export interface Seen {
  readonly id: string;
  readonly mode: string;
  readonly user: string;
  /** performance.now() when the record was first seen. */
  readonly createdAt: number;
  /** performance.now() when each phase was first seen. */
  readonly phases: Map<Phase, number>;
  /** performance.now() when status.prepared was first seen (kubectl tx apply's prepare done). */
  preparedAt?: number;
  last?: Transaction;
}

export class PhaseRecorder {
  readonly seen = new Map<string, Seen>();
  private readonly waiters = new Set<() => void>();

  /** Starts the list+watch loop; stops on cleanup. */
  static async start(admin: KubeClient, cleanup: Cleanup): Promise<PhaseRecorder> {
    const recorder = new PhaseRecorder();
    const stop = new AbortController();
    const synced = recorder.loop(admin, stop.signal);
    cleanup.push("stop transaction watch", async () => {
      stop.abort();
      await synced.done;
    });
    await synced.first;
    return recorder;
  }

  private loop(admin: KubeClient, signal: AbortSignal): { first: Promise<void>; done: Promise<void> } {
    let listed: () => void = () => undefined;
    const first = new Promise<void>((resolve) => (listed = resolve));
    const done = (async (): Promise<void> => {
      while (!signal.aborted) {
        try {
          const list = await admin.get<ObjectList<Transaction>>(transactionPath());
          for (const tx of list.items) this.note(tx);
          listed();
          await admin.watch(transactionPath(), { resourceVersion: list.metadata?.resourceVersion }, (event) => {
            if (event.type === "ADDED" || event.type === "MODIFIED") this.note(event.object as Transaction);
          }, signal);
        } catch {
          // Re-listed below; a phase first seen on a re-list is timed less precisely, never missed.
        }
        if (!signal.aborted) await sleep(REWATCH_DELAY_MS);
      }
    })();
    return { first, done };
  }

  private note(tx: Transaction): void {
    const id = tx.metadata?.name ?? "";
    const now = performance.now();
    let entry = this.seen.get(id);
    if (!entry) {
      entry = { id, mode: tx.spec?.mode ?? "", user: tx.spec?.user ?? "", createdAt: now, phases: new Map() };
      this.seen.set(id, entry);
    }
    entry.last = tx;
    noteTimes(entry, tx, now);
    for (const wake of this.waiters) wake();
  }

  /** Resolves with the first value `check` returns that is not undefined; rejects after `timeoutMs`. */
  async until<T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> {
    const now = check();
    if (now !== undefined) return now;
    return new Promise<T>((resolve, reject) => {
      const wake = (): void => {
        const value = check();
        if (value === undefined) return;
        finish();
        resolve(value);
      };
      const timer = setTimeout(() => (finish(), reject(new Error(`bench: ${what} did not happen within ${timeoutMs} ms`))), timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      this.waiters.add(wake);
    });
  }

  /** When `id` first reached one of `phases`: [phase, performance.now() time]. */
  reached(id: string, phases: readonly Phase[], timeoutMs: number): Promise<[Phase, number]> {
    return this.until(`transaction ${id} reaching ${phases.join("/")}`, () => {
      const entry = this.seen.get(id);
      for (const phase of phases) {
        const at = entry?.phases.get(phase);
        if (at !== undefined) return [phase, at] as [Phase, number];
      }
      return undefined;
    }, timeoutMs);
  }

  /** Resolves once no transaction seen so far is unresolved. */
  allResolved(timeoutMs: number): Promise<true> {
    return this.until("every transaction resolving", () => (this.unresolved().length === 0 ? true : undefined), timeoutMs);
  }

  unresolved(): string[] {
    return [...this.seen.values()].filter((s) => !TERMINAL_PHASES.has(s.last?.status?.phase ?? "Open")).map((s) => s.id);
  }
}

/** When the entry's phases, and its prepare, were first seen. */
function noteTimes(entry: Seen, tx: Transaction, now: number): void {
  const phase = tx.status?.phase;
  if (phase && !entry.phases.has(phase)) entry.phases.set(phase, now);
  if (tx.status?.prepared && entry.preparedAt === undefined) entry.preparedAt = now;
}
