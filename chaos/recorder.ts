/**
 * Records every version of every object of a trial, in the apiserver's
 * order: a list, then a watch from the list's resourceVersion, resumed
 * from the last version seen whenever the stream ends (an apiserver
 * restart ends it). The campaign's apiserver keeps no watch cache for
 * ConfigMaps and Deployments (--watch-cache-sizes), so a resumed watch is
 * served by etcd from any recent revision and misses nothing; only if
 * etcd compacted past it (410 Gone) does the recorder list again and count
 * a gap. Independent of src/: it uses the checker's own HTTP client.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Kind, ObjectHistory, ObjectPlan, TrialPlan, Version } from "./history.ts";
import { CONFIGMAP_TOKEN_KEY, TEMPLATE_TOKEN_ANNOTATION, objectKey } from "./history.ts";
import type { Http, WatchEvent } from "./checker/http.ts";
import { HttpError } from "./checker/http.ts";

/** Pause before resuming a watch that ended or failed (an apiserver restart takes seconds). */
const RESUME_DELAY_MS = 200;
/** How long settle() waits for the watch to deliver what a final list shows. */
const SETTLE_TIMEOUT_MS = 5_000;
const SETTLE_POLL_MS = 100;

interface Collection {
  readonly kind: Kind;
  readonly namespace: string;
  readonly path: string;
  resourceVersion: string;
}

interface KubeItem {
  readonly metadata?: { name?: string; uid?: string; resourceVersion?: string };
  readonly data?: Record<string, string>;
  readonly spec?: { template?: { metadata?: { annotations?: Record<string, string> } } };
}

class Gone extends Error {}

export class Recorder {
  private readonly http: Http;
  private readonly planned: ReadonlyMap<string, ObjectPlan>;
  private readonly versions = new Map<string, Version[]>();
  private readonly gaps = new Map<string, number>();
  private readonly stop = new AbortController();
  private readonly loops: Promise<void>[] = [];

  private constructor(http: Http, plan: TrialPlan) {
    this.http = http;
    this.planned = new Map(plan.objects.map((o) => [o.key, o]));
    for (const key of this.planned.keys()) {
      this.versions.set(key, []);
      this.gaps.set(key, 0);
    }
  }

  /** Lists every collection of the plan (the initial versions) and starts watching. */
  static async start(http: Http, plan: TrialPlan): Promise<Recorder> {
    const recorder = new Recorder(http, plan);
    const collections = collectionsOf(plan);
    for (const c of collections) await recorder.list(c, false);
    for (const c of collections) recorder.loops.push(recorder.follow(c));
    return recorder;
  }

  /**
   * Waits until the last recorded version of every object agrees with a
   * fresh list; an object that still disagrees gets the listed state
   * appended and a gap counted.
   */
  async settle(): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    for (;;) {
      const listed = await this.listAll();
      const behind = [...listed].filter(([key, state]) => !sameState(this.versions.get(key)?.at(-1), state));
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        for (const [key, state] of behind) this.append(key, state, true);
        return;
      }
      await sleep(SETTLE_POLL_MS);
    }
  }

  histories(): ObjectHistory[] {
    return [...this.versions].map(([key, versions]) => ({ key, versions: [...versions], gaps: this.gaps.get(key) ?? 0 }));
  }

  async close(): Promise<void> {
    this.stop.abort();
    await Promise.all(this.loops);
  }

  private async follow(c: Collection): Promise<void> {
    while (!this.stop.signal.aborted) {
      try {
        await this.http.watch(c.path, { resourceVersion: c.resourceVersion, allowWatchBookmarks: "true" }, (event) => this.onEvent(c, event), this.stop.signal);
      } catch (error) {
        if (this.stop.signal.aborted) return;
        if (error instanceof Gone || (error instanceof HttpError && error.status === 410)) await this.list(c, true).catch(() => undefined);
      }
      await sleep(RESUME_DELAY_MS, undefined, { signal: this.stop.signal }).catch(() => undefined);
    }
  }

  private onEvent(c: Collection, event: WatchEvent): void {
    if (event.type === "ERROR") {
      const code = (event.object as { code?: number }).code;
      if (code === 410) throw new Gone("watch too old");
      throw new Error(`watch error ${String(code)}`);
    }
    const item = event.object as KubeItem;
    if (item.metadata?.resourceVersion) c.resourceVersion = item.metadata.resourceVersion;
    if (event.type === "BOOKMARK") return;
    const key = objectKey(c.kind, c.namespace, item.metadata?.name ?? "");
    if (!this.planned.has(key)) return;
    this.append(key, stateOf(c.kind, item, event.type !== "DELETED"), false);
  }

  /** Lists a collection; after a 410 it records what changed unseen and counts a gap for each of its objects. */
  private async list(c: Collection, afterGap: boolean): Promise<void> {
    const list = await this.http.get<{ metadata: { resourceVersion: string }; items: KubeItem[] }>(c.path);
    c.resourceVersion = list.metadata.resourceVersion;
    const found = new Map(list.items.map((item) => [objectKey(c.kind, c.namespace, item.metadata?.name ?? ""), item]));
    for (const key of this.keysOf(c)) {
      const item = found.get(key);
      this.append(key, item ? stateOf(c.kind, item, true) : absent(list.metadata.resourceVersion), afterGap);
    }
  }

  private async listAll(): Promise<Map<string, Version>> {
    const states = new Map<string, Version>();
    for (const c of collectionsOf({ objects: [...this.planned.values()] })) {
      const list = await this.http.get<{ metadata: { resourceVersion: string }; items: KubeItem[] }>(c.path);
      const found = new Map(list.items.map((item) => [objectKey(c.kind, c.namespace, item.metadata?.name ?? ""), item]));
      for (const key of this.keysOf(c)) {
        const item = found.get(key);
        states.set(key, item ? stateOf(c.kind, item, true) : absent(list.metadata.resourceVersion));
      }
    }
    return states;
  }

  private keysOf(c: Collection): string[] {
    return [...this.planned.values()].filter((o) => o.kind === c.kind && o.namespace === c.namespace).map((o) => o.key);
  }

  private append(key: string, version: Version, gap: boolean): void {
    const list = this.versions.get(key);
    if (!list) return;
    if (gap && !sameState(list.at(-1), version)) this.gaps.set(key, (this.gaps.get(key) ?? 0) + 1);
    if (!gap || !sameState(list.at(-1), version)) list.push(version);
  }
}

function collectionsOf(plan: Pick<TrialPlan, "objects">): Collection[] {
  const seen = new Map<string, Collection>();
  for (const o of plan.objects) {
    const path = o.kind === "ConfigMap" ? `/api/v1/namespaces/${o.namespace}/configmaps` : `/apis/apps/v1/namespaces/${o.namespace}/deployments`;
    if (!seen.has(path)) seen.set(path, { kind: o.kind, namespace: o.namespace, path, resourceVersion: "" });
  }
  return [...seen.values()];
}

function stateOf(kind: Kind, item: KubeItem, exists: boolean): Version {
  const token = kind === "ConfigMap" ? item.data?.[CONFIGMAP_TOKEN_KEY] : item.spec?.template?.metadata?.annotations?.[TEMPLATE_TOKEN_ANNOTATION];
  return {
    rv: item.metadata?.resourceVersion ?? "",
    at: Date.now(),
    exists,
    ...(item.metadata?.uid ? { uid: item.metadata.uid } : {}),
    ...(token !== undefined ? { token } : {}),
  };
}

function absent(rv: string): Version {
  return { rv, at: Date.now(), exists: false };
}

function sameState(a: Version | undefined, b: Version): boolean {
  return a !== undefined && a.exists === b.exists && (!b.exists || (a.uid === b.uid && a.token === b.token));
}
