/**
 * A cache says when it reflects a revision: admission, having written a
 * lock, waits for its own write to arrive through the watch, and then reads
 * everything older from memory.
 */
import { describe, expect, it } from "vitest";
import type { KubeClient, WatchEvent } from "../../src/kube/client.ts";
import { Informer } from "../../src/kube/informer.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";

/** Lists at revision 10; the watch delivers whatever `emit` is given, until aborted. */
function pushedClient(): { client: KubeClient; emit: (event: WatchEvent) => void; watching: Promise<void> } {
  let emit: (event: WatchEvent) => void = () => undefined;
  let started: () => void = () => undefined;
  const watching = new Promise<void>((resolve) => (started = resolve));
  const fake = {
    get: () => Promise.resolve({ metadata: { resourceVersion: "10" }, items: [] }),
    watch: (_path: string, _query: unknown, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> => {
      emit = onEvent;
      started();
      return new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    },
  };
  return { client: fake as unknown as KubeClient, emit: (event) => emit(event), watching };
}

const lease = (name: string, resourceVersion: string): WatchEvent => ({ type: "ADDED", object: { metadata: { name, resourceVersion } } });

/** Runs `test` against an informer that has listed and is watching; stops it afterwards, pass or fail. */
async function withInformer(test: (informer: Informer, emit: (event: WatchEvent) => void) => Promise<void>): Promise<void> {
  const { client, emit, watching } = pushedClient();
  const informer = new Informer({ client, logger: silentLogger(), what: "test", path: "/leases" });
  const stop = new AbortController();
  const running = informer.run(stop.signal);
  await watching;
  try {
    await test(informer, emit);
  } finally {
    stop.abort();
    await running;
  }
}

describe("a cache reaching a revision", () => {
  it("answers at once for a revision it has, waits for a later one, and holds the object when it says so", () =>
    withInformer(async (informer, emit) => {
      expect(await informer.reached("9", 1_000)).toBe(true);
      const waiting = informer.reached("12", 5_000);
      emit(lease("older", "11"));
      emit(lease("mine", "12"));
      expect(await waiting).toBe(true);
      expect(informer.get("mine")).toBeDefined();
      expect(informer.get("older")).toBeDefined();
    }));

  it("moves on a bookmark, and gives up after its timeout when nothing comes", () =>
    withInformer(async (informer, emit) => {
      expect(await informer.reached("20", 30)).toBe(false);
      const waiting = informer.reached("20", 5_000);
      emit({ type: "BOOKMARK", object: { metadata: { resourceVersion: "25" } } });
      expect(await waiting).toBe(true);
      expect(await informer.reached("not-a-number", 30)).toBe(false);
    }));
});
