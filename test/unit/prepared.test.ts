/**
 * The pure parts of prepared transactions: the pulse that bounds how old a
 * replica's Lease cache is, how a create admitted from memory is verified,
 * undone and confirmed, the record guard, and kind-to-resource discovery.
 */
import { describe, expect, it } from "vitest";
import type { AdmissionRequest, UserInfo } from "../../src/admission/review.ts";
import { guardTransactionRecord } from "../../src/admission/transaction-records.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { Discovery } from "../../src/kube/discovery.ts";
import { NotFound } from "../../src/kube/errors.ts";
import type { KubeObject } from "../../src/kube/types.ts";
import { Pulse, pulseName } from "../../src/locks/pulse.ts";
import type { Member } from "../../src/locks/record.ts";
import { startedFrom } from "../../src/rollback/confirm.ts";
import { imagesOf, planRestore } from "../../src/rollback/plan.ts";
import { FakeClock } from "../../src/telemetry/clock.ts";
import type { TransactionSpec } from "../../src/transactions/model.ts";
import { newTransaction } from "../../src/transactions/model.ts";
import { persisted } from "../../src/transactions/verify.ts";
import type { AccessChecks } from "../../src/transactions/access.ts";
import { Coordinator } from "../../src/transactions/coordinator.ts";
import type { Transaction } from "../../src/transactions/model.ts";
import type { TransactionStore } from "../../src/transactions/store.ts";
import type { Journal } from "../../src/journal/journal.ts";
import type { LockRecord } from "../../src/locks/record.ts";
import type { LockStore } from "../../src/locks/store.ts";
import type { Limits } from "../../src/policy/policy.ts";
import { noMetrics } from "../../src/telemetry/metrics.ts";

const TX = "t-0a1b2c3d";
const REF = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" };
const PREPARED: Member = { transaction: TX, ref: REF, kind: "ConfigMap", operation: "CREATE", user: "alice", requestUid: `prepare/${TX}`, admittedAt: 0, prepared: true };

function configMap(meta: Record<string, unknown>): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop", ...meta }, data: { a: "1" } };
}
const OURS = configMap({ uid: "uid-ours", resourceVersion: "20", annotations: { "kubetx.io/transaction": TX } });
const THEIRS = configMap({ uid: "uid-theirs", resourceVersion: "21" });

describe("a create admitted from memory (no uid, no journal entry)", () => {
  it("counts as persisted when the object carries the transaction's annotation, and not otherwise", () => {
    expect(persisted(PREPARED, undefined, OURS)).toBe(true);
    expect(persisted(PREPARED, undefined, THEIRS)).toBe(false);
    expect(persisted(PREPARED, undefined, undefined)).toBe(false);
    expect(persisted(PREPARED, undefined, configMap({ uid: "u", annotations: { "kubetx.io/transaction": "t-99999999" } }))).toBe(false);
    expect(persisted(PREPARED, undefined, { ...OURS, metadata: { ...OURS.metadata, deletionTimestamp: "2026-12-02T00:00:00Z" } })).toBe(false);
  });

  it("is deleted by its rollback with the live uid as a precondition; another's object of that name is left alone", () => {
    expect(planRestore(PREPARED, undefined, OURS)).toMatchObject({ kind: "delete", uid: "uid-ours", resourceVersion: "20" });
    expect(planRestore(PREPARED, undefined, THEIRS)).toMatchObject({ kind: "none" });
    expect(planRestore(PREPARED, undefined, undefined)).toMatchObject({ kind: "none" });
  });

  it("an unprepared create without its uid deletes nothing, whatever the annotation says", () => {
    const { prepared: _prepared, ...unprepared } = PREPARED;
    expect(planRestore(unprepared, undefined, OURS)).toMatchObject({ kind: "none" });
  });

  it("confirms the delete only when the object did not exist, with that uid, when kubetx locked it", () => {
    const images = imagesOf(PREPARED, undefined);
    if (!images) throw new Error("a create has images");
    const action = planRestore(PREPARED, undefined, OURS);
    expect(startedFrom(PREPARED, images, action, undefined)).toEqual({ confirmed: true });
    expect(startedFrom(PREPARED, images, action, configMap({ uid: "uid-ours" }))).toMatchObject({ confirmed: false });
  });
});

describe("the pulse", () => {
  function cacheOf(leases: Map<string, KubeObject>, ready = true): { ready: boolean; get: (name: string) => KubeObject | undefined } {
    return { ready, get: (name) => leases.get(name) };
  }

  /** A client whose patches land in `leases` at once, as a watch that delivers instantly would show them; `deliver` false holds them back. */
  function landing(leases: Map<string, KubeObject>, name: string): { client: KubeClient; deliver: { on: boolean } } {
    const deliver = { on: true };
    const store = (annotations: Record<string, string>): void => {
      if (deliver.on) leases.set(name, { metadata: { name, annotations } });
    };
    let version = 0;
    const client = {
      get: (_path: string) => (leases.has(name) ? Promise.resolve({ metadata: { name, resourceVersion: String(version) } }) : Promise.reject(new NotFound({ status: 404, reason: "NotFound", message: "not found", method: "GET", path: _path }))),
      replace: (_path: string, body: KubeObject) => {
        if (body.metadata?.resourceVersion !== String(version)) return Promise.reject(new Error(`409: resourceVersion ${body.metadata?.resourceVersion ?? "none"}, not ${version}`));
        version += 1;
        store(body.metadata.annotations ?? {});
        return Promise.resolve({ metadata: { resourceVersion: String(version) } });
      },
      create: (_path: string, body: KubeObject) => {
        version += 1;
        store(body.metadata?.annotations ?? {});
        return Promise.resolve({ metadata: { resourceVersion: String(version) } });
      },
    };
    return { client: client as unknown as KubeClient, deliver };
  }

  it("is fresh from the moment its own beat is in the cache, for as long as the beat is younger than the bound", async () => {
    const clock = new FakeClock();
    const leases = new Map<string, KubeObject>();
    const name = pulseName("replica-a");
    const { client, deliver } = landing(leases, name);
    const pulse = new Pulse({ client, namespace: "kubetx-system", identity: "replica-a", clock, cache: cacheOf(leases), periodMs: 1_000, logger: { warn: () => undefined } });
    expect(pulse.fresh(3_000)).toBe(false);
    const stop = new AbortController();
    const running = pulse.run(stop.signal);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pulse.fresh(3_000)).toBe(true);
    // Later beats update the Lease it created, at the version it last wrote: they land too.
    clock.advance(2_500);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(pulse.fresh(3_000)).toBe(true);
    clock.advance(2_500);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(pulse.fresh(3_000)).toBe(true);
    // The watch stops delivering (a broken stream, a paused replica): the last beat it holds grows old.
    deliver.on = false;
    clock.advance(2_999);
    expect(pulse.fresh(3_000)).toBe(true);
    clock.advance(1);
    expect(pulse.fresh(3_000)).toBe(false);
    stop.abort();
    await running;
  });

  it("never takes a beat of another process (a restarted replica of the same name) for its own, nor a cache that has not synced", () => {
    const clock = new FakeClock();
    const name = pulseName("replica-a");
    const leases = new Map<string, KubeObject>([[name, { metadata: { name, annotations: { "kubetx.io/beat": "deadbeef/1" } } }]]);
    const pulse = new Pulse({ client: {} as KubeClient, namespace: "kubetx-system", identity: "replica-a", clock, cache: cacheOf(leases) });
    expect(pulse.freshness()).toBe(-Infinity);
    const unsynced = new Pulse({ client: {} as KubeClient, namespace: "kubetx-system", identity: "replica-a", clock, cache: cacheOf(leases, false) });
    expect(unsynced.fresh()).toBe(false);
  });
});

describe("the record guard and spec.prepare", () => {
  const ALICE: UserInfo = { username: "alice", groups: ["system:authenticated", "devs"] };
  function request(operation: "CREATE" | "UPDATE", object: KubeObject, oldObject?: KubeObject): AdmissionRequest {
    return {
      uid: "req", kind: { group: "kubetx.io", version: "v1alpha1", kind: "Transaction" }, resource: { group: "kubetx.io", version: "v1alpha1", resource: "transactions" },
      name: TX, operation, userInfo: ALICE, object, oldObject: oldObject ?? null,
    };
  }
  const spec = (groups: string[], name = "settings"): TransactionSpec => ({
    user: "alice", mode: "plugin", prepare: { groups, members: [{ apiVersion: "v1", kind: "ConfigMap", namespace: "shop", name }] },
  });

  it("takes a record whose groups are exactly its creator's, in any order", async () => {
    expect((await guardTransactionRecord(request("CREATE", newTransaction(TX, spec(["devs", "system:authenticated"]))))).allowed).toBe(true);
  });

  it("refuses groups the creator is not in, or leaves out", async () => {
    const claimed = await guardTransactionRecord(request("CREATE", newTransaction(TX, spec(["devs", "system:authenticated", "system:masters"]))));
    expect(claimed.allowed).toBe(false);
    expect(claimed.status?.message).toContain("spec.prepare.groups must be your own groups");
    expect((await guardTransactionRecord(request("CREATE", newTransaction(TX, spec(["devs"]))))).allowed).toBe(false);
  });

  it("refuses a change of spec.prepare after the create", async () => {
    const before = newTransaction(TX, spec(["devs", "system:authenticated"]));
    const after = newTransaction(TX, spec(["devs", "system:authenticated"], "other"));
    const changed = await guardTransactionRecord(request("UPDATE", after, before));
    expect(changed.allowed).toBe(false);
    expect(changed.status?.message).toContain("spec.prepare of a transaction cannot change");
    expect((await guardTransactionRecord(request("UPDATE", { ...before, spec: { ...before.spec, clientHeartbeat: 1 } }, before))).allowed).toBe(true);
  });
});

describe("discovery", () => {
  function serving(documents: Record<string, unknown>): { client: KubeClient; asked: string[] } {
    const asked: string[] = [];
    const client = {
      get: (path: string) => {
        asked.push(path);
        const doc = documents[path];
        return doc ? Promise.resolve(doc) : Promise.reject(new NotFound({ status: 404, reason: "NotFound", message: "not found", method: "GET", path }));
      },
    };
    return { client: client as unknown as KubeClient, asked };
  }

  it("maps a kind to its resource and scope, skipping subresources, and reads each group version once a minute", async () => {
    const { client, asked } = serving({
      "/apis/apps/v1": { resources: [{ name: "deployments/scale", kind: "Scale", namespaced: true }, { name: "deployments", kind: "Deployment", namespaced: true }] },
      "/api/v1": { resources: [{ name: "namespaces", kind: "Namespace", namespaced: false }] },
    });
    let now = 0;
    const discovery = new Discovery(client, () => now);
    expect(await discovery.resourceOf("apps/v1", "Deployment")).toEqual({ group: "apps", version: "v1", resource: "deployments", namespaced: true });
    expect(await discovery.resourceOf("apps/v1", "Scale")).toBeUndefined();
    expect(await discovery.resourceOf("v1", "Namespace")).toEqual({ group: "", version: "v1", resource: "namespaces", namespaced: false });
    expect(asked).toEqual(["/apis/apps/v1", "/api/v1"]);
    now = 60_001;
    await discovery.resourceOf("apps/v1", "Deployment");
    expect(asked).toEqual(["/apis/apps/v1", "/api/v1", "/apis/apps/v1"]);
  });

  it("answers undefined for a group version the apiserver does not serve, and asks again about a missing kind only after a few seconds", async () => {
    const { client, asked } = serving({});
    let now = 0;
    const discovery = new Discovery(client, () => now);
    expect(await discovery.resourceOf("example.com/v1", "Widget")).toBeUndefined();
    expect(await discovery.resourceOf("example.com/v1", "Widget")).toBeUndefined();
    expect(asked).toHaveLength(1);
    now = 5_001;
    await discovery.resourceOf("example.com/v1", "Widget");
    expect(asked).toHaveLength(2);
  });
});

describe("Coordinator: a prepared create is admitted from memory only while everything says it may be", () => {
  const SLOW = "took the usual path";
  const lock = { name: "lk-1", resourceVersion: "50", member: PREPARED };
  const prepared = { ...newTransaction(TX, { user: "alice", mode: "plugin" }), status: { phase: "Open" as const, prepared: "2026-12-02T00:00:00Z", preparedMembers: 3 } };
  const intent = {
    requestUid: "req-9", operation: "CREATE" as const, ref: REF, kind: "ConfigMap", requester: { username: "alice" },
    object: configMap({ annotations: { "kubetx.io/transaction": TX } }), dryRun: false, transaction: TX, mode: "explicit" as const,
  };

  function coordinator(o: { fresh?: boolean; marked?: boolean; record?: Transaction; lock?: LockRecord | undefined } = {}): Coordinator {
    const slow = (): Promise<never> => Promise.reject(new Error(SLOW));
    const store = { cached: () => ("record" in o ? o.record : prepared), lookup: slow, get: slow } as unknown as TransactionStore;
    const locks = { cachedLockAndMark: () => ({ lock: "lock" in o ? o.lock : lock, marked: o.marked ?? false }), locksOf: slow } as unknown as LockStore;
    return new Coordinator({
      store, locks, journal: {} as Journal, clock: new FakeClock(), identity: "replica-a", limits: () => ({}) as Limits, quietMs: () => 1_000,
      metrics: noMetrics, access: {} as AccessChecks, pulse: { fresh: () => o.fresh ?? true },
    });
  }

  it("admits the create with no call when the lock, the record and a fresh cache all say so", async () => {
    expect(await coordinator().admit(intent)).toEqual({ kind: "member", transaction: TX, lock: "lk-1", members: 3, firstWrite: true, mode: "plugin" });
  });

  it("takes the usual path when the cache is stale, a closing mark is in it, or the record is not prepared and open", async () => {
    await expect(coordinator({ fresh: false }).admit(intent)).rejects.toThrow(SLOW);
    await expect(coordinator({ marked: true }).admit(intent)).rejects.toThrow(SLOW);
    await expect(coordinator({ record: { ...prepared, status: { phase: "Open" } } }).admit(intent)).rejects.toThrow(SLOW);
    await expect(coordinator({ record: { ...prepared, status: { ...prepared.status, failure: "a member failed" } } }).admit(intent)).rejects.toThrow(SLOW);
    await expect(coordinator({ record: { ...prepared, status: { ...prepared.status, phase: "Verifying" } } }).admit(intent)).rejects.toThrow(SLOW);
    await expect(coordinator({ record: undefined }).admit(intent)).rejects.toThrow(SLOW);
  });

  it("takes the usual path for a lock that is not this create's prepared one, another requester, or a write that is no create of its own", async () => {
    await expect(coordinator({ lock: undefined }).admit(intent)).rejects.toThrow(SLOW);
    await expect(coordinator({ lock: { ...lock, member: { ...PREPARED, prepared: false } } }).admit(intent)).rejects.toThrow(SLOW);
    await expect(coordinator({ lock: { ...lock, member: { ...PREPARED, transaction: "t-99999999" } } }).admit(intent)).rejects.toThrow(SLOW);
    await expect(coordinator().admit({ ...intent, requester: { username: "bob" } })).rejects.toThrow(SLOW);
    await expect(coordinator().admit({ ...intent, object: configMap({}) })).rejects.toThrow(SLOW);
    await expect(coordinator().admit({ ...intent, operation: "UPDATE", oldObject: OURS })).rejects.toThrow(SLOW);
  });
});
