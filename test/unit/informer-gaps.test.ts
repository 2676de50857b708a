/**
 * A cache that cannot reach the apiserver marks a connection gap (the
 * resolver will not commit a plain apply across one); a 410 Gone, which is
 * the apiserver answering, does not.
 */
import { describe, expect, it } from "vitest";
import type { KubeClient, WatchEvent } from "../../src/kube/client.ts";
import { KubeError } from "../../src/kube/errors.ts";
import { ConnectionGaps } from "../../src/kube/gaps.ts";
import { Informer } from "../../src/kube/informer.ts";
import { FakeClock } from "../../src/telemetry/clock.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";

type Outcome = "refused" | "gone" | "initializing" | "unavailable" | "hold";

/** Answers every list at once; each watch as the script says, then holds until aborted. */
function scriptedClient(script: Outcome[], clock: FakeClock): { client: KubeClient; watches: () => number } {
  let watches = 0;
  const fake = {
    get: () => Promise.resolve({ metadata: { resourceVersion: "1" }, items: [] }),
    watch: (_path: string, _query: unknown, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> => {
      const outcome = script[watches] ?? "hold";
      watches += 1;
      clock.advance(1_000);
      if (outcome === "refused") return Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" }));
      if (outcome === "initializing" || outcome === "unavailable") {
        const [status, reason, message] = outcome === "initializing" ? [429, "TooManyRequests", "storage is (re)initializing"] : [503, "ServiceUnavailable", "the server is currently unable to handle the request"];
        return Promise.reject(new KubeError({ status, reason, message, method: "GET", path: "/api/v1/configmaps" }));
      }
      if (outcome === "gone") {
        onEvent({ type: "ERROR", object: { code: 410, message: "too old resource version" } });
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    },
  };
  return { client: fake as unknown as KubeClient, watches: () => watches };
}

async function runUntil(informer: Informer, watches: () => number, count: number): Promise<void> {
  const stop = new AbortController();
  const running = informer.run(stop.signal);
  while (watches() < count) await new Promise((resolve) => setTimeout(resolve, 5));
  stop.abort();
  await running;
}

describe("connection gaps seen by a cache", () => {
  it("marks a gap when the watch cannot connect, and marks it again when the list after it succeeds", async () => {
    const clock = new FakeClock();
    const gaps = new ConnectionGaps(clock);
    const { client, watches } = scriptedClient(["refused", "hold"], clock);
    const informer = new Informer({ client, logger: silentLogger(), what: "test", path: "/api/v1/configmaps", gaps });
    expect(gaps.latest).toBeUndefined();
    await runUntil(informer, watches, 2);
    expect(gaps.breaks).toBe(1);
    // Mended at the second watch's start: after the first watch failed, one clock advance later.
    expect(gaps.latest?.monotonic).toBe(1_000);
    expect(informer.ready).toBe(true);
  });

  it("does not mark a gap for a 410 Gone, which the apiserver answered", async () => {
    const clock = new FakeClock();
    const gaps = new ConnectionGaps(clock);
    const { client, watches } = scriptedClient(["gone", "hold"], clock);
    const informer = new Informer({ client, logger: silentLogger(), what: "test", path: "/api/v1/configmaps", gaps });
    await runUntil(informer, watches, 2);
    expect(gaps.breaks).toBe(0);
    expect(gaps.latest).toBeUndefined();
  });

  it("does not mark a gap for a 429 while a resource's storage starts (the apiserver answered), but does for a 503", async () => {
    const clock = new FakeClock();
    const gaps = new ConnectionGaps(clock);
    const { client, watches } = scriptedClient(["initializing", "hold"], clock);
    await runUntil(new Informer({ client, logger: silentLogger(), what: "test", path: "/api/v1/configmaps", gaps }), watches, 2);
    expect(gaps.breaks).toBe(0);

    const unavailable = scriptedClient(["unavailable", "hold"], clock);
    await runUntil(new Informer({ client: unavailable.client, logger: silentLogger(), what: "test", path: "/api/v1/configmaps", gaps }), unavailable.watches, 2);
    expect(gaps.breaks).toBe(1);
  });
});
