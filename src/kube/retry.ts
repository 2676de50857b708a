/**
 * One retry helper for every optimistic-concurrency loop: jittered
 * exponential backoff, bounded by a number of attempts and a deadline, so
 * contention settles without hammering the apiserver and nothing spins for
 * ever.
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface RetryOptions {
  readonly attempts: number;
  /** The whole loop gives up once this much time has passed. */
  readonly deadlineMs: number;
  /** The first pause; each next one grows by half, plus up to as much again at random. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/** Contention between a few replicas and admission settles within a few rounds of a few milliseconds. */
export const CONTENTION: RetryOptions = { attempts: 8, deadlineMs: 5_000, initialDelayMs: 5, maxDelayMs: 200 };

export type Attempt<T> = { readonly done: true; readonly value: T } | { readonly done: false; readonly why: string };

/** Runs `attempt` until it is done, or returns the last reason it gave when attempts or time run out. */
export async function retry<T>(options: RetryOptions, attempt: (n: number) => Promise<Attempt<T>>): Promise<Attempt<T>> {
  const started = performance.now();
  let delay = options.initialDelayMs;
  let last: Attempt<T> = { done: false, why: "no attempt was made" };
  for (let n = 0; n < options.attempts && performance.now() - started < options.deadlineMs; n += 1) {
    last = await attempt(n);
    if (last.done) return last;
    await sleep(delay + Math.random() * delay);
    delay = Math.min(options.maxDelayMs, delay * 1.5);
  }
  return last;
}
