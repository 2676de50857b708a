/**
 * The loop that keeps the `kubetx` webhook configurations in step with the
 * policies, against an in-memory apiserver that does what the real one does
 * with resourceVersions and watches.
 */
import { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { KubeObject, RequestOptions, WatchEvent } from "../../src/kube/index.ts";
import { Conflict, NotFound } from "../../src/kube/index.ts";
import { createLogger } from "../../src/telemetry/logger.ts";
import type { NamedPolicy } from "../../src/policy/combine.ts";
import { POLICY_DEFAULTS } from "../../src/policy/policy.ts";
import { CONFIGURATION_PATHS, urlClientConfig, webhookConfigurations } from "../../src/webhooks/configurations.ts";
import { NO_POLICY_CONDITION } from "../../src/webhooks/coverage.ts";
import type { WebhookSyncOptions } from "../../src/webhooks/sync.ts";
import { WebhookSync } from "../../src/webhooks/sync.ts";
import { RefusingClient } from "../support/refusing-client.ts";

const VALIDATING = `${CONFIGURATION_PATHS.ValidatingWebhookConfiguration}/kubetx`;
const MUTATING = `${CONFIGURATION_PATHS.MutatingWebhookConfiguration}/kubetx`;
/** Bound for waits on the running loop: far above its half-second pass gap. */
const WAIT = { timeout: 5_000, interval: 20 };

type Entry = {
  name: string; clientConfig: { url?: string; caBundle?: string }; failurePolicy?: string; namespaceSelector?: { matchLabels?: Record<string, string> };
  rules?: unknown[]; matchConditions?: { name: string; expression?: string }[];
};
type Configuration = KubeObject & { webhooks: Entry[] };

/** The two configurations by path, with resourceVersions and watchers, as the apiserver keeps them. */
class FakeApiserver extends RefusingClient {
  readonly objects = new Map<string, Configuration>();
  readonly writes: { path: string; query: RequestOptions["query"] }[] = [];
  /** Both configurations after each write, and when. */
  readonly snapshots: { at: number; validating: Entry[]; mutating: Entry[] }[] = [];
  /** Conflicts to answer the next replaces with, as if someone wrote in between. */
  conflicts = 0;
  private version = 1;
  private readonly watchers = new Set<(event: WatchEvent) => void>();

  install(caBundle = "Q0E="): void {
    for (const c of webhookConfigurations((p) => urlClientConfig("https://127.0.0.1:9443", p, caBundle))) this.put(c.kind === "ValidatingWebhookConfiguration" ? VALIDATING : MUTATING, c as Configuration);
  }

  /** A write from someone else (an admin's kubectl apply). */
  put(path: string, object: Configuration): void {
    const stored = structuredClone({ ...object, metadata: { ...object.metadata, resourceVersion: String((this.version += 1)) } });
    this.objects.set(path, stored);
    for (const watcher of this.watchers) watcher({ type: "MODIFIED", object: stored });
  }

  webhooks(path: string): Entry[] {
    return this.objects.get(path)?.webhooks ?? [];
  }

  override get<T>(path: string): Promise<T> {
    const object = this.objects.get(path);
    return object ? Promise.resolve(structuredClone(object) as T) : Promise.reject(new NotFound({ status: 404, reason: "NotFound", message: path, method: "GET", path }));
  }

  override replace<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    const object = body as Configuration;
    const conflict = this.conflicts > 0 || this.objects.get(path)?.metadata?.resourceVersion !== object.metadata?.resourceVersion;
    if (conflict) {
      this.conflicts = Math.max(0, this.conflicts - 1);
      return Promise.reject(new Conflict({ status: 409, reason: "Conflict", message: "changed", method: "PUT", path }));
    }
    this.writes.push({ path, query: options?.query });
    this.put(path, object);
    this.snapshots.push({ at: Date.now(), validating: structuredClone(this.webhooks(VALIDATING)), mutating: structuredClone(this.webhooks(MUTATING)) });
    return Promise.resolve(structuredClone(this.objects.get(path)) as T);
  }

  override watch(_path: string, _query: Record<string, string | undefined>, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    this.watchers.add(onEvent);
    return new Promise((resolve) => signal.addEventListener("abort", () => (this.watchers.delete(onEvent), resolve()), { once: true }));
  }
}

function policy(name: string, team: string, spec: Partial<typeof POLICY_DEFAULTS> = {}): NamedPolicy {
  return { name, spec: { ...POLICY_DEFAULTS, namespaceSelector: { matchLabels: { team } }, ...spec } };
}

let logs = "";
const running: AbortController[] = [];
afterEach(() => {
  for (const stop of running.splice(0)) stop.abort();
  logs = "";
});

function syncer(api: FakeApiserver, policies: () => readonly NamedPolicy[], extra: Partial<WebhookSyncOptions> = {}): WebhookSync {
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => ((logs += chunk.toString()), done()) });
  return new WebhookSync({ client: api, logger: createLogger({ level: "debug", destination: sink }), policies, ready: () => true, settleMs: 0, ...extra });
}

function start(sync: WebhookSync): Promise<void> {
  const stop = new AbortController();
  running.push(stop);
  return sync.run(stop.signal);
}

function selectors(api: FakeApiserver, path: string): (Record<string, string> | undefined)[] {
  return api.webhooks(path).map((w) => w.namespaceSelector?.matchLabels);
}

describe("a webhook sync pass", () => {
  it("changes nothing while kubetx is not installed", async () => {
    const api = new FakeApiserver();
    await syncer(api, () => [policy("shop", "shop")]).syncOnce();
    expect(api.objects.size).toBe(0);
  });

  it("gives both configurations one entry per policy", async () => {
    const api = new FakeApiserver();
    api.install();
    await syncer(api, () => [policy("shop", "shop"), policy("billing", "billing")]).syncOnce();
    expect(api.webhooks(VALIDATING).map((w) => w.name)).toEqual(["validate.kubetx.io", "shop.validate.kubetx.io", "records.kubetx.io"]);
    expect(api.webhooks(MUTATING).map((w) => w.name)).toEqual(["observe.kubetx.io", "shop.observe.kubetx.io"]);
    expect(selectors(api, MUTATING)).toEqual([{ team: "billing" }, { team: "shop" }]);
  });

  it("keeps the installer's client config, caBundle and failure policy on every entry", async () => {
    const api = new FakeApiserver();
    api.install("SU5TVEFMTEVE");
    const validating = api.objects.get(VALIDATING) as Configuration;
    api.put(VALIDATING, { ...validating, webhooks: validating.webhooks.map((w) => ({ ...w, failurePolicy: "Ignore" })) });
    await syncer(api, () => [policy("a", "a"), policy("b", "b")]).syncOnce();
    for (const entry of api.webhooks(VALIDATING)) {
      expect(entry.clientConfig).toEqual({ url: "https://127.0.0.1:9443/validate", caBundle: "SU5TVEFMTEVE" });
      expect(entry.failurePolicy).toBe("Ignore");
    }
  });

  it("makes the object entries call nothing when no policy exists, and keeps records.kubetx.io", async () => {
    const api = new FakeApiserver();
    api.install();
    await syncer(api, () => []).syncOnce();
    expect(api.webhooks(VALIDATING).map((w) => w.name)).toEqual(["validate.kubetx.io", "records.kubetx.io"]);
    expect(api.webhooks(VALIDATING)[0]?.matchConditions).toContainEqual(NO_POLICY_CONDITION);
    expect(api.webhooks(VALIDATING)[1]?.matchConditions?.map((c) => c.name)).toEqual(["not-kubetx-itself"]);
  });

  it("writes nothing when the configurations already match the policies", async () => {
    const api = new FakeApiserver();
    api.install();
    const sync = syncer(api, () => [policy("shop", "shop")]);
    await sync.syncOnce();
    const written = api.writes.length;
    await sync.syncOnce();
    expect(api.writes).toHaveLength(written);
  });

  it("writes nothing before the policies are known, which would look like no policy", async () => {
    const api = new FakeApiserver();
    api.install();
    await syncer(api, () => [], { ready: () => false }).syncOnce();
    expect(api.writes).toEqual([]);
  });

  it("writes with the resourceVersion it read and tries again on the next pass after a Conflict", async () => {
    const api = new FakeApiserver();
    api.install();
    api.conflicts = 1;
    const sync = syncer(api, () => [policy("shop", "shop")]);
    await sync.syncOnce();
    expect(api.writes).toEqual([]);
    await sync.syncOnce();
    expect(api.writes.map((w) => w.path)).toEqual([MUTATING, VALIDATING, MUTATING]);
  });

  it("writes as field manager kubetx", async () => {
    const api = new FakeApiserver();
    api.install();
    await syncer(api, () => [policy("shop", "shop")]).syncOnce();
    expect(api.writes[0]?.query).toEqual({ fieldManager: "kubetx" });
  });

  it("logs which entries it changed and for which policies", async () => {
    const api = new FakeApiserver();
    api.install();
    await syncer(api, () => [policy("a", "a"), policy("b", "b")]).syncOnce();
    const line = JSON.parse(logs.split("\n").find((l) => l.includes("now matches the policies") && l.includes("Validating")) ?? "{}") as { policies?: string[]; changes?: string[] };
    expect(line.policies).toEqual(["a", "b"]);
    expect(line.changes).toEqual(["validate.kubetx.io: namespaceSelector", "added b.validate.kubetx.io"]);
  });

  it("warns and changes nothing when the configuration has lost its object entries", async () => {
    const api = new FakeApiserver();
    api.install();
    const validating = api.objects.get(VALIDATING) as Configuration;
    api.put(VALIDATING, { ...validating, webhooks: validating.webhooks.filter((w) => w.name === "records.kubetx.io") });
    await syncer(api, () => [policy("shop", "shop")]).syncOnce();
    expect(api.webhooks(VALIDATING).map((w) => w.name)).toEqual(["records.kubetx.io"]);
    expect(logs).toContain("apply manifests/webhooks.yaml again");
  });
});

/**
 * Every `/observe` entry that calls kubetx covers no more than the
 * `/validate` entry of the same policy: same selector and rules (the
 * `/observe` entry adds a condition of its own).
 */
function observeWithinValidate(snapshot: { validating: Entry[]; mutating: Entry[] }): string[] {
  const key = (name: string, base: string): string => (name === base ? "" : name.slice(0, -(base.length + 1)));
  const validate = new Map(snapshot.validating.filter((e) => e.name.endsWith("validate.kubetx.io")).map((e) => [key(e.name, "validate.kubetx.io"), e]));
  const problems: string[] = [];
  for (const entry of snapshot.mutating) {
    if (entry.matchConditions?.some((c) => c.expression === "false")) continue;
    const twin = validate.get(key(entry.name, "observe.kubetx.io"));
    const same = twin !== undefined && JSON.stringify(twin.namespaceSelector) === JSON.stringify(entry.namespaceSelector) && JSON.stringify(twin.rules) === JSON.stringify(entry.rules)
      && !twin.matchConditions?.some((c) => c.expression === "false");
    if (!same) problems.push(`${entry.name} calls kubetx for ${JSON.stringify(entry.namespaceSelector)}, /validate's twin does not match it`);
  }
  return problems;
}

describe("a coverage change", () => {
  const SETTLE_MS = 60;
  const cases: [string, NamedPolicy[], NamedPolicy[]][] = [
    ["a policy added", [policy("shop", "shop")], [policy("shop", "shop"), policy("web", "web")]],
    ["a policy removed", [policy("shop", "shop"), policy("web", "web")], [policy("web", "web")]],
    ["a selector changed", [policy("shop", "shop")], [policy("shop", "shop-2")]],
    ["the first policy", [], [policy("shop", "shop")]],
    ["the last policy turned off", [policy("shop", "shop")], [policy("shop", "shop", { mode: "off" })]],
  ];

  it.each(cases)("(%s) never lets /observe call kubetx where /validate would not, and gives each step time to settle", async (_name, before, after) => {
    const api = new FakeApiserver();
    api.install();
    let policies = before;
    const sync = syncer(api, () => policies, { settleMs: SETTLE_MS });
    await sync.syncOnce();
    const from = api.snapshots.length;
    policies = after;
    await sync.syncOnce();
    const steps = api.snapshots.slice(from);
    expect(steps.length).toBeGreaterThanOrEqual(2);
    for (const step of steps) expect(observeWithinValidate(step)).toEqual([]);
    // Timers never fire early by more than a millisecond of rounding.
    for (let i = 1; i < steps.length; i++) expect((steps[i]?.at ?? 0) - (steps[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(SETTLE_MS - 2);
    // It ends where the policies want it: a pass after it writes nothing.
    const written = api.writes.length;
    await sync.syncOnce();
    expect(api.writes).toHaveLength(written);
    expect(api.webhooks(MUTATING).some((e) => e.matchConditions?.some((c) => c.name === "kubetx-settling"))).toBe(false);
  });

  it("keeps /observe within /validate when the policies change in the middle of a pass", async () => {
    const api = new FakeApiserver();
    api.install();
    await syncer(api, () => [], { settleMs: 0 }).syncOnce();
    const from = api.snapshots.length;
    // The policy arrives after the pass first asked: every later question gets the new answer.
    let asked = 0;
    const sync = syncer(api, () => (asked++ === 0 ? [] : [policy("shop", "shop")]), { settleMs: SETTLE_MS });
    await sync.syncOnce();
    await sync.syncOnce();
    const steps = api.snapshots.slice(from);
    for (const step of steps) expect(observeWithinValidate(step)).toEqual([]);
    expect(selectors(api, MUTATING)[0]).toEqual({ team: "shop" });
  });

  it("writes /observe a whole settle time after the last /validate write, when several replicas make the change at once", async () => {
    const api = new FakeApiserver();
    api.install();
    const replicas = [0, 1, 2].map(() => syncer(api, () => [policy("shop", "shop")], { settleMs: SETTLE_MS }));
    // Staggered a little, as replicas that hear of the policy a moment apart.
    await Promise.all(replicas.map(async (r, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * 15));
      await r.syncOnce();
    }));
    const at = (path: string): number[] => api.writes.flatMap((w, i) => (w.path === path ? [api.snapshots[i]?.at ?? 0] : []));
    const lastValidate = Math.max(...at(VALIDATING));
    const observeWrites = at(MUTATING).filter((t) => t > lastValidate);
    expect(observeWrites.length).toBeGreaterThan(0);
    for (const t of observeWrites) expect(t - lastValidate).toBeGreaterThanOrEqual(SETTLE_MS - 2);
    for (const step of api.snapshots) expect(observeWithinValidate(step)).toEqual([]);
    expect(selectors(api, MUTATING)[0]).toEqual({ team: "shop" });
  });

  it("waits for the settle time before rewriting /validate when another replica paused /observe a moment ago", async () => {
    const api = new FakeApiserver();
    api.install();
    const other = syncer(api, () => [policy("shop", "shop")], { settleMs: SETTLE_MS });
    await other.syncOnce();
    const mutating = api.objects.get(MUTATING) as Configuration;
    // The other replica's first step of a change to web, as it would write it.
    api.put(MUTATING, { ...mutating, webhooks: mutating.webhooks.map((w) => ({ ...w, matchConditions: [...(w.matchConditions ?? []), { name: "kubetx-settling", expression: "false" }] })) });
    const pausedAt = Date.now();
    await syncer(api, () => [policy("web", "web")], { settleMs: SETTLE_MS }).syncOnce();
    const validateWrite = api.snapshots.find((s) => s.validating[0]?.namespaceSelector?.matchLabels?.team === "web");
    expect(validateWrite).toBeDefined();
    expect((validateWrite?.at ?? 0) - pausedAt).toBeGreaterThanOrEqual(SETTLE_MS - 2);
  });
});

describe("the running webhook sync", () => {
  it("brings the configurations in step when it starts", async () => {
    const api = new FakeApiserver();
    api.install();
    void start(syncer(api, () => [policy("shop", "shop")]));
    await vi.waitFor(() => expect(selectors(api, VALIDATING)[0]).toEqual({ team: "shop" }), WAIT);
  });

  it("follows a policy change as soon as it is told of it", async () => {
    const api = new FakeApiserver();
    api.install();
    let policies = [policy("shop", "shop")];
    const sync = syncer(api, () => policies, { periodMs: 60_000 });
    void start(sync);
    await vi.waitFor(() => expect(selectors(api, VALIDATING)[0]).toEqual({ team: "shop" }), WAIT);
    policies = [policy("shop", "shop"), policy("web", "web")];
    sync.trigger();
    await vi.waitFor(() => expect(selectors(api, VALIDATING)).toEqual([{ team: "shop" }, { team: "web" }, undefined]), WAIT);
  });

  it("restores its entries soon after an admin applies the installed ones again", async () => {
    const api = new FakeApiserver();
    api.install();
    void start(syncer(api, () => [policy("shop", "shop")], { periodMs: 60_000 }));
    await vi.waitFor(() => expect(selectors(api, VALIDATING)[0]).toEqual({ team: "shop" }), WAIT);
    api.install();
    expect(selectors(api, VALIDATING)[0]).toEqual({ "kubetx.io/enabled": "true" });
    await vi.waitFor(() => expect(selectors(api, VALIDATING)[0]).toEqual({ team: "shop" }), WAIT);
  });

  it("stops when its signal aborts", async () => {
    const api = new FakeApiserver();
    const stop = new AbortController();
    const done = syncer(api, () => []).run(stop.signal);
    stop.abort();
    await expect(done).resolves.toBeUndefined();
  });
});
