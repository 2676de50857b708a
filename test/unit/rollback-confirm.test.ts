/**
 * A rollback writes back only what the apiserver really started from: the
 * journalled pre-image must be the object as stored when kubetx locked it
 * (or, where that history is gone, the member's own audit event must say
 * the write succeeded). A forged review's invented oldObject never gets
 * written.
 */
import { describe, expect, it } from "vitest";
import type { StoredEntry } from "../../src/journal/journal.ts";
import type { RequestOptions } from "../../src/kube/client.ts";
import { Expired } from "../../src/kube/errors.ts";
import type { KubeObject, PatchOperation } from "../../src/kube/types.ts";
import type { LockRecord, Member } from "../../src/locks/record.ts";
import { restoreMember } from "../../src/rollback/apply.ts";
import { startedFrom, writeConfirmation } from "../../src/rollback/confirm.ts";
import type { Images, RestoreAction } from "../../src/rollback/plan.ts";
import { RefusingClient } from "../support/refusing-client.ts";

const REF = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" };
const PATCH: RestoreAction = { kind: "patch", path: "/api/v1/namespaces/shop/configmaps/settings", ops: [], conflicts: [] };
const RECREATE: RestoreAction = { kind: "create", collectionPath: "/api/v1/namespaces/shop/configmaps", body: {} };
const DELETE: RestoreAction = { kind: "delete", path: "/api/v1/namespaces/shop/configmaps/settings", uid: "u-new" };

function member(operation: Member["operation"], extra: Partial<Member> = {}): Member {
  return { transaction: "t-0a1b2c3d", ref: REF, kind: "ConfigMap", operation, user: "alice", requestUid: "r-1", admittedAt: 0, ...extra };
}

function configMap(data: Record<string, string>, meta: KubeObject["metadata"] = {}, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop", uid: "u-1", resourceVersion: "10", ...meta }, data, ...extra };
}

/** One write's images, as imagesOf gives them. */
function images(pre: KubeObject | null, post: KubeObject | null): Images {
  return { pre, post, posts: [post] };
}

describe("whether a member's write started where its journal says", () => {
  const real = configMap({ v: "old", other: "x" });
  const written = configMap({ v: "new", other: "x" }, { resourceVersion: "10" });

  it("confirms an update whose pre-image is the object as it was when kubetx locked it", () => {
    expect(startedFrom(member("UPDATE"), images(real, written), PATCH, real)).toEqual({ confirmed: true });
  });

  it("refuses a forged update whose oldObject was invented, naming the path", () => {
    const invented = configMap({ v: "attacker's value", other: "x" });
    const verdict = startedFrom(member("UPDATE"), images(invented, written), PATCH, real);
    expect(verdict).toEqual({ confirmed: false, detail: expect.stringContaining("(data.v)") as unknown });
  });

  it("still confirms when a controller changed only status between the apiserver's read and the lock", () => {
    const statusMoved = configMap({ v: "old", other: "x" }, { resourceVersion: "11", managedFields: [{ manager: "controller" }] }, { status: { ready: true } });
    expect(startedFrom(member("UPDATE"), images(real, written), PATCH, statusMoved)).toEqual({ confirmed: true });
  });

  it("checks only the paths a patch would put back", () => {
    const elsewhere = configMap({ v: "old", other: "changed by an exempt user" });
    expect(startedFrom(member("UPDATE"), images(real, written), PATCH, elsewhere)).toEqual({ confirmed: true });
  });

  it("refuses a pre-image of another object of the same name", () => {
    const verdict = startedFrom(member("UPDATE"), images(configMap({ v: "old" }, { uid: "u-other" }), written), PATCH, real);
    expect(verdict).toMatchObject({ confirmed: false, detail: expect.stringContaining("uid u-1") as unknown });
  });

  it("refuses an update of an object that did not exist when kubetx locked it", () => {
    expect(startedFrom(member("UPDATE"), images(real, written), PATCH, undefined)).toMatchObject({ confirmed: false });
  });

  it("compares the whole object before re-creating a deleted one", () => {
    expect(startedFrom(member("DELETE"), images(real, null), RECREATE, real)).toEqual({ confirmed: true });
    const relabelled = configMap({ v: "old", other: "x" }, { labels: { app: "other" } });
    expect(startedFrom(member("DELETE"), images(relabelled, null), RECREATE, real)).toMatchObject({ confirmed: false });
  });

  it("compares a deleted object with the list item the apiserver returns, which carries no apiVersion or kind", () => {
    const { apiVersion: _apiVersion, kind: _kind, ...listItem } = real;
    expect(startedFrom(member("DELETE"), images(real, null), RECREATE, listItem)).toEqual({ confirmed: true });
  });

  it("confirms a create whose object did not exist yet when kubetx locked it", () => {
    expect(startedFrom(member("CREATE", { createdUid: "u-new" }), images(null, configMap({}, { uid: "u-new" })), DELETE, undefined)).toEqual({ confirmed: true });
  });

  it("refuses a forged create naming the uid of an object that already existed, so kubetx never deletes it", () => {
    const existing = configMap({ v: "precious" }, { uid: "u-new" });
    const verdict = startedFrom(member("CREATE", { createdUid: "u-new" }), images(null, { metadata: { uid: "u-new" } }), DELETE, existing);
    expect(verdict).toMatchObject({ confirmed: false, detail: expect.stringContaining("already existed") as unknown });
  });
});

/** Answers the object's GET, its history list and records the writes a restore makes. */
class HistoryClient extends RefusingClient {
  readonly patches: PatchOperation[][] = [];
  readonly historyQueries: Record<string, string | undefined>[] = [];
  private readonly live: KubeObject;
  private readonly history: KubeObject | undefined | Error;

  constructor(live: KubeObject, history: KubeObject | undefined | Error) {
    super();
    this.live = live;
    this.history = history;
  }

  override get<T>(path: string, options?: RequestOptions): Promise<T> {
    if (path.endsWith("/configmaps/settings")) return Promise.resolve(this.live as T);
    this.historyQueries.push(options?.query ?? {});
    if (this.history instanceof Error) return Promise.reject(this.history);
    return Promise.resolve({ items: this.history ? [this.history] : [] } as T);
  }

  override jsonPatch<T>(_path: string, ops: PatchOperation[]): Promise<T> {
    this.patches.push(ops);
    return Promise.resolve({} as T);
  }
}

describe("a rollback's restore of an update", () => {
  const real = configMap({ v: "real" });
  const invented = configMap({ v: "invented" });
  /** The forger sends the live object as `object`, so the write looks persisted. */
  const live = configMap({ v: "real" }, { resourceVersion: "12" });
  const lock: LockRecord = { name: "lk-1", resourceVersion: "11", member: member("UPDATE") };
  const forged: StoredEntry = { pre: invented, post: configMap({ v: "real" }) };
  const expired = new Expired({ status: 410, reason: "Expired", message: "too old resource version", method: "GET", path: "/api/v1/namespaces/shop/configmaps" });

  it("writes the forged pre-image back without the check (what the issue found)", async () => {
    const client = new HistoryClient(live, real);
    expect((await restoreMember(client, lock.member, forged)).kind).toBe("restored");
    expect(client.patches).toHaveLength(1);
  });

  it("writes nothing for a forged review and says why; the transaction ends Failed", async () => {
    const client = new HistoryClient(live, real);
    const outcome = await restoreMember(client, lock.member, forged, { confirm: writeConfirmation(client, lock, forged, undefined) });
    expect(outcome).toMatchObject({ kind: "impossible", detail: expect.stringContaining("could not confirm that the apiserver made this write") as unknown });
    expect(client.patches).toEqual([]);
    expect(client.historyQueries).toEqual([{ fieldSelector: "metadata.name=settings", resourceVersion: "11", resourceVersionMatch: "Exact" }]);
  });

  it("restores a real write, confirmed by the object's history", async () => {
    const genuine: StoredEntry = { pre: configMap({ v: "before" }), post: configMap({ v: "real" }) };
    const client = new HistoryClient(live, configMap({ v: "before" }));
    const outcome = await restoreMember(client, lock.member, genuine, { confirm: writeConfirmation(client, lock, genuine, undefined) });
    expect(outcome.kind).toBe("restored");
    expect(client.patches).toHaveLength(1);
  });

  it("lets the audit sink's success code confirm a write whose history was compacted", async () => {
    const genuine: StoredEntry = { pre: configMap({ v: "before" }), post: configMap({ v: "real" }) };
    const client = new HistoryClient(live, expired);
    expect((await restoreMember(client, lock.member, genuine, { confirm: writeConfirmation(client, lock, genuine, 200) })).kind).toBe("restored");
  });

  it("writes nothing when the history is gone and no audit event confirms the write", async () => {
    const genuine: StoredEntry = { pre: configMap({ v: "before" }), post: configMap({ v: "real" }) };
    for (const code of [undefined, 422]) {
      const client = new HistoryClient(live, expired);
      const outcome = await restoreMember(client, lock.member, genuine, { confirm: writeConfirmation(client, lock, genuine, code) });
      expect(outcome).toMatchObject({ kind: "impossible", detail: expect.stringContaining("410 Expired") as unknown });
      expect(client.patches).toEqual([]);
    }
  });

  it("asks nothing when the restore writes nothing (the write never landed)", async () => {
    const client = new HistoryClient(configMap({ v: "before" }), real);
    const genuine: StoredEntry = { pre: configMap({ v: "before" }), post: configMap({ v: "real" }) };
    expect((await restoreMember(client, lock.member, genuine, { confirm: writeConfirmation(client, lock, genuine, undefined) })).kind).toBe("unchanged");
    expect(client.historyQueries).toEqual([]);
  });
});

describe("a restore's fence (is this still the transaction's lock, led by this replica?)", () => {
  const genuine: StoredEntry = { pre: configMap({ v: "before" }), post: configMap({ v: "real" }) };
  const live = configMap({ v: "real" }, { resourceVersion: "12" });

  /** A client whose object read fails: the fenced attempt must not surface that failure. */
  class UnreadableClient extends HistoryClient {
    override get<T>(): Promise<T> {
      return Promise.reject(new Error("connection reset while reading the object"));
    }
  }

  it("writes nothing and says why when the lock moved on, though the object was read beside it", async () => {
    const client = new HistoryClient(live, configMap({ v: "before" }));
    const outcome = await restoreMember(client, member("UPDATE"), genuine, { fence: () => Promise.resolve("the lock lk-1 is no longer the transaction's") });
    expect(outcome).toEqual({ kind: "fenced", detail: "the lock lk-1 is no longer the transaction's" });
    expect(client.patches).toEqual([]);
  });

  it("answers fenced, not the read's error, when both happen in one attempt", async () => {
    const client = new UnreadableClient(live, undefined);
    const outcome = await restoreMember(client, member("UPDATE"), genuine, { fence: () => Promise.resolve("this replica no longer leads the transaction") });
    expect(outcome.kind).toBe("fenced");
  });

  // A connection's failure is tried again, then left for a later pass (rollback-transient.test.ts).
  const fastRetry = { attempts: 3, deadlineMs: 1_000, initialDelayMs: 1, maxDelayMs: 2 };

  it("leaves the member for a later pass on the read's error when the fence lets the attempt go on", async () => {
    const client = new UnreadableClient(live, undefined);
    const outcome = await restoreMember(client, member("UPDATE"), genuine, { fence: () => Promise.resolve(undefined), retry: fastRetry });
    expect(outcome).toEqual({ kind: "retry", detail: expect.stringContaining("connection reset") as unknown });
  });

  it("leaves the member for a later pass on the fence's own error, writing nothing", async () => {
    const client = new HistoryClient(live, configMap({ v: "before" }));
    const outcome = await restoreMember(client, member("UPDATE"), genuine, { fence: () => Promise.reject(new Error("lease read failed")), retry: fastRetry });
    expect(outcome).toEqual({ kind: "retry", detail: expect.stringContaining("lease read failed") as unknown });
    expect(client.patches).toEqual([]);
  });

  it("restores when the lock is still the transaction's", async () => {
    const client = new HistoryClient(live, configMap({ v: "before" }));
    expect((await restoreMember(client, member("UPDATE"), genuine, { fence: () => Promise.resolve(undefined) })).kind).toBe("restored");
    expect(client.patches).toHaveLength(1);
  });
});
