/**
 * The watched TransactionPolicies tell their listeners about every change,
 * so the webhook configurations follow without waiting for a period.
 */
import { describe, expect, it, vi } from "vitest";
import type { KubeObject, WatchEvent } from "../../src/kube/index.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { PolicyWatcher } from "../../src/policy/watch.ts";
import { RefusingClient } from "../support/refusing-client.ts";

/** Bound for waits on the running watcher. */
const WAIT = { timeout: 2_000, interval: 10 };

function policyObject(name: string, team: string): KubeObject {
  return { apiVersion: "kubetx.io/v1alpha1", kind: "TransactionPolicy", metadata: { name }, spec: { namespaceSelector: { matchLabels: { team } } } };
}

/** Lists one policy, then streams the events a test pushes until the watcher stops. */
class PolicyFeed extends RefusingClient {
  private emit: ((event: WatchEvent) => void) | undefined;

  override get<T>(): Promise<T> {
    return Promise.resolve({ metadata: { resourceVersion: "1" }, items: [policyObject("shop", "shop")] } as T);
  }

  override watch(_path: string, _query: Record<string, string | undefined>, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    this.emit = onEvent;
    return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }

  push(event: WatchEvent): void {
    this.emit?.(event);
  }

  get watching(): boolean {
    return this.emit !== undefined;
  }
}

describe("PolicyWatcher change notifications", () => {
  it("tells its listeners once the first list is in, and is ready by then", async () => {
    const watcher = new PolicyWatcher(new PolicyFeed(), silentLogger());
    const seen: string[][] = [];
    watcher.onChange(() => seen.push([String(watcher.ready), ...watcher.view().names]));
    const stop = new AbortController();
    void watcher.run(stop.signal);
    await vi.waitFor(() => expect(seen).toEqual([["true", "shop"]]), WAIT);
    stop.abort();
  });

  it("tells its listeners about a policy added later", async () => {
    const feed = new PolicyFeed();
    const watcher = new PolicyWatcher(feed, silentLogger());
    const changes = vi.fn();
    watcher.onChange(changes);
    const stop = new AbortController();
    void watcher.run(stop.signal);
    await vi.waitFor(() => expect(feed.watching).toBe(true), WAIT);
    feed.push({ type: "ADDED", object: policyObject("web", "web") });
    expect(changes).toHaveBeenCalledTimes(2);
    expect(watcher.view().names).toEqual(["shop", "web"]);
    stop.abort();
  });

  it("stops telling a listener that unsubscribed", async () => {
    const feed = new PolicyFeed();
    const watcher = new PolicyWatcher(feed, silentLogger());
    const changes = vi.fn();
    const unsubscribe = watcher.onChange(changes);
    const stop = new AbortController();
    void watcher.run(stop.signal);
    await vi.waitFor(() => expect(feed.watching).toBe(true), WAIT);
    unsubscribe();
    feed.push({ type: "DELETED", object: policyObject("shop", "shop") });
    expect(changes).toHaveBeenCalledTimes(1);
    stop.abort();
  });
});
