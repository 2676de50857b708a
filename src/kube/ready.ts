/**
 * Waits for the apiserver's /readyz. An apiserver that is still starting
 * answers lists with 429 "storage is (re)initializing" and 503s; kubetx's
 * resolver and watches wait for readiness instead of failing their first
 * rounds. The wait backs off (doubling, with jitter, up to a bound), so a
 * slow start costs a few requests, and it says once that it is waiting.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient } from "./client.ts";
import { KubeError } from "./errors.ts";

/** The first pause: an apiserver that is almost ready is caught within a fraction of a second. */
const FIRST_DELAY_MS = 200;
/** The longest pause: once the apiserver is ready, kubetx starts within this. */
const MAX_DELAY_MS = 5_000;

export interface ReadyWait {
  /**
   * Collections kubetx lists first (its own Transaction records): /readyz
   * says ok while a CustomResourceDefinition created a moment ago still
   * answers 429 "storage is (re)initializing", so each must list too.
   */
  readonly collections?: readonly string[];
  /** Called once, with why, when the first answer is not ready. */
  readonly onWaiting: (reason: string) => void;
  readonly signal?: AbortSignal;
  /** Injected by tests; a real pause otherwise. */
  readonly pause?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Resolves when /readyz answers `ok`, when kubetx may not ask (401, 403: it
 * then starts and its own requests say what is wrong), or when `signal`
 * aborts.
 */
export async function waitForApiserverReady(client: KubeClient, wait: ReadyWait): Promise<void> {
  const pause = wait.pause ?? ((ms: number, signal?: AbortSignal) => sleep(ms, undefined, { signal }).catch(() => undefined));
  let delay = FIRST_DELAY_MS;
  let told = false;
  while (!wait.signal?.aborted) {
    const reason = (await notReady(client)) ?? (await firstUnlistable(client, wait.collections ?? []));
    if (reason === undefined) return;
    if (!told) wait.onWaiting(reason);
    told = true;
    await pause(delay + Math.random() * delay, wait.signal);
    delay = Math.min(MAX_DELAY_MS, delay * 2);
  }
}

/** Why one of `collections` cannot be listed yet (429 or 503: still starting), or undefined. */
async function firstUnlistable(client: KubeClient, collections: readonly string[]): Promise<string | undefined> {
  for (const path of collections) {
    try {
      await client.get(path, { query: { limit: "1" } });
    } catch (error) {
      // Any other answer is not about starting: the watch that lists it will say what is wrong.
      if (error instanceof KubeError && (error.status === 429 || error.status === 503)) return error.message.split("\n")[0] ?? `${path} answered ${error.status}`;
    }
  }
  return undefined;
}

/** Why the apiserver is not ready, or undefined when it is (or kubetx cannot tell). */
async function notReady(client: KubeClient): Promise<string | undefined> {
  try {
    const answer = await client.get<string>("/readyz", { text: true });
    return answer.trim() === "ok" ? undefined : `/readyz answered ${answer.trim().slice(0, 200)}`;
  } catch (error) {
    if (!(error instanceof KubeError)) return error instanceof Error ? error.message : String(error);
    if (error.status === 401 || error.status === 403) return undefined;
    // The body lists every check, `[-]` marking those that failed.
    const failed = error.message.split("\n").filter((line) => line.startsWith("[-]")).map((line) => line.slice(3));
    return `/readyz answered ${error.status}${failed.length > 0 ? `: ${failed.join(", ")}` : ` (${error.message.split("\n")[0] ?? ""})`}`;
  }
}
