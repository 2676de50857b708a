/**
 * kubetx waits for the apiserver's /readyz before its resolver and watches
 * start: with growing, bounded pauses, saying once why it waits.
 */
import { describe, expect, it } from "vitest";
import type { RequestOptions } from "../../src/kube/client.ts";
import { Forbidden, KubeError } from "../../src/kube/errors.ts";
import { waitForApiserverReady } from "../../src/kube/ready.ts";
import { RefusingClient } from "../support/refusing-client.ts";

const STARTING = "[+]ping ok\n[+]etcd ok\n[-]poststarthook/crd-informer-synced failed: reason withheld\n[-]informer-sync failed: reason withheld\nreadyz check failed";

/** An apiserver that answers /readyz with each of `answers` in turn, then ok. */
class StartingApiserver extends RefusingClient {
  readonly asked: (RequestOptions | undefined)[] = [];
  private readonly answers: (string | Error)[];

  constructor(answers: (string | Error)[]) {
    super();
    this.answers = answers;
  }

  override get<T>(path: string, options?: RequestOptions): Promise<T> {
    if (path !== "/readyz") return super.get(path, options);
    this.asked.push(options);
    const next = this.answers.shift() ?? "ok";
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next as T);
  }
}

const failing = (): KubeError => new KubeError({ status: 500, reason: "Unknown", message: STARTING, method: "GET", path: "/readyz" });

describe("waitForApiserverReady", () => {
  it("returns at once, saying nothing, when the apiserver is ready", async () => {
    const api = new StartingApiserver([]);
    const told: string[] = [];
    await waitForApiserverReady(api, { onWaiting: (reason) => told.push(reason), pause: () => Promise.reject(new Error("must not pause")) });
    expect(told).toEqual([]);
    expect(api.asked).toEqual([{ text: true }]);
  });

  it("waits through failed checks and refused connections, says once which checks failed, and backs off up to a bound", async () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" });
    const api = new StartingApiserver([failing(), refused, ...Array.from({ length: 8 }, failing)]);
    const told: string[] = [];
    const pauses: number[] = [];
    await waitForApiserverReady(api, { onWaiting: (reason) => told.push(reason), pause: (ms) => (pauses.push(ms), Promise.resolve()) });
    expect(told).toEqual(["/readyz answered 500: poststarthook/crd-informer-synced failed: reason withheld, informer-sync failed: reason withheld"]);
    expect(pauses).toHaveLength(10);
    // Each pause is the base delay plus up to as much again: 200 ms doubling, capped at 5 s.
    const bases = [200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000];
    pauses.forEach((ms, i) => {
      expect(ms).toBeGreaterThanOrEqual(bases[i] ?? 0);
      expect(ms).toBeLessThan(2 * (bases[i] ?? 0));
    });
  });

  it("does not wait when kubetx may not read /readyz: its own requests will say what is wrong", async () => {
    const api = new StartingApiserver([new Forbidden({ status: 403, reason: "Forbidden", message: "forbidden", method: "GET", path: "/readyz" })]);
    await waitForApiserverReady(api, { onWaiting: () => undefined, pause: () => Promise.reject(new Error("must not pause")) });
    expect(api.asked).toHaveLength(1);
  });

  it("stops waiting when it is told to stop", async () => {
    const api = new StartingApiserver(Array.from({ length: 100 }, failing));
    const stop = new AbortController();
    await waitForApiserverReady(api, { signal: stop.signal, onWaiting: () => undefined, pause: () => (stop.abort(), Promise.resolve()) });
    expect(api.asked).toHaveLength(1);
  });

  it("waits until each collection it will list answers, not only /readyz: a CRD's storage answers 429 for a moment after /readyz is ok", async () => {
    const initializing = (): KubeError => new KubeError({ status: 429, reason: "TooManyRequests", message: "storage is (re)initializing", method: "GET", path: "/apis/kubetx.io/v1alpha1/transactions" });
    const listed: string[] = [];
    let refusals = 2;
    const api = new (class extends StartingApiserver {
      override get<T>(path: string, options?: RequestOptions): Promise<T> {
        if (path === "/readyz") return super.get(path, options);
        listed.push(`${path}?limit=${options?.query?.limit ?? ""}`);
        if (path.endsWith("/transactions") && refusals-- > 0) return Promise.reject(initializing());
        // Not a starting apiserver's answer: the watch that lists it says what is wrong, so it is not waited for.
        if (path.endsWith("/leases")) return Promise.reject(new Forbidden({ status: 403, reason: "Forbidden", message: "forbidden", method: "GET", path }));
        return Promise.resolve({ items: [] } as T);
      }
    })([]);
    const told: string[] = [];
    const pauses: number[] = [];
    await waitForApiserverReady(api, {
      collections: ["/apis/kubetx.io/v1alpha1/transactions", "/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases"],
      onWaiting: (reason) => told.push(reason),
      pause: (ms) => (pauses.push(ms), Promise.resolve()),
    });
    expect(told).toEqual(["GET /apis/kubetx.io/v1alpha1/transactions: 429 TooManyRequests: storage is (re)initializing"]);
    expect(pauses).toHaveLength(2);
    expect(listed).toEqual([
      "/apis/kubetx.io/v1alpha1/transactions?limit=1",
      "/apis/kubetx.io/v1alpha1/transactions?limit=1",
      "/apis/kubetx.io/v1alpha1/transactions?limit=1",
      "/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases?limit=1",
    ]);
  });
});
